"""Starting runs from trigger payloads: one run per event, however often it is delivered."""

from __future__ import annotations

import pytest

from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.triggers import TriggerError, start_from_trigger

WORKFLOW = Workflow.model_validate(
    {
        "name": "greet",
        "triggers": {
            "events": [{"pattern": {"source": ["crm"]}, "input": {"who": "${detail.name}"}}]
        },
        "steps": {"hello": {"function": "Echo"}},
    }
)


@pytest.fixture
def world() -> InProcessWorld:
    return InProcessWorld({"greet": WORKFLOW}, {"Echo": lambda data, ctx: data})


def test_an_event_starts_one_run_with_its_reshaped_input(world: InProcessWorld) -> None:
    payload = {
        "workflow": "greet",
        "event": {"id": "e-1", "source": "crm", "detail": {"name": "Ada"}},
    }
    first = start_from_trigger(world.orchestrator, payload)
    again = start_from_trigger(world.orchestrator, payload)
    assert first == again
    run = world.store.get_run(first)
    assert run is not None and run.input == {"who": "Ada"}
    assert run.labels == {"trigger": "event"}


def test_a_schedule_tick_without_identity_starts_a_fresh_run(world: InProcessWorld) -> None:
    one = start_from_trigger(world.orchestrator, {"workflow": "greet", "input": {"n": 1}})
    two = start_from_trigger(world.orchestrator, {"workflow": "greet", "input": {"n": 1}})
    assert one != two


def test_an_unknown_workflow_is_a_trigger_error(world: InProcessWorld) -> None:
    with pytest.raises(TriggerError, match="no workflow named 'nope'"):
        start_from_trigger(world.orchestrator, {"workflow": "nope", "input": {}})
