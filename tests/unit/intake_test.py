"""JSON as Stepwell takes it in: one depth limit, checked where a value enters, located."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import pytest

from stepwell import intake
from stepwell.catalog import Catalog
from stepwell.code.replay import to_json
from stepwell.definition.models import Workflow
from stepwell.intake import MAX_DEPTH, JsonTooDeep
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import wiring
from stepwell.runtime.envelope import StepEnvelope
from stepwell.runtime.publishing import Workflows
from stepwell.runtime.runner import run_attempt
from stepwell.runtime.triggers import TriggerError, start_from_trigger
from stepwell.runtime.wiring import Runtime
from stepwell.steps import step_handler


def nested(depth: int, leaf: Any = 1) -> Any:
    """``depth`` levels of arrays, then ``leaf``."""
    value = leaf
    for _ in range(depth):
        value = [value]
    return value


class TestDepth:
    def test_the_limit_itself_passes_and_one_more_does_not(self) -> None:
        assert intake.check(nested(MAX_DEPTH), "x") == nested(MAX_DEPTH)
        with pytest.raises(JsonTooDeep):
            intake.check(nested(MAX_DEPTH + 1), "x")

    def test_the_path_names_the_first_value_too_deep(self) -> None:
        value = {"a": [{"ok": 1}, {"b": nested(MAX_DEPTH)}]}
        # The object, "a"'s array and its second object are 3 levels; the arrays under "b"
        # begin at the 4th, so the 33rd level is 29 indexes below "b".
        path = intake.too_deep(value)
        assert path == ["a", 1, "b", *[0] * (MAX_DEPTH - 3)]
        with pytest.raises(JsonTooDeep, match=r"step 's' output nests deeper than 32 levels"):
            intake.check(value, "step 's' output")

    def test_scalars_and_empty_containers(self) -> None:
        assert intake.too_deep("text") is None
        assert intake.too_deep({}) is None
        assert intake.too_deep([], limit=0) == []

    def test_a_value_too_deep_for_pythons_recursion_is_still_measured(self) -> None:
        assert intake.too_deep(nested(100_000)) == [0] * MAX_DEPTH

    def test_parse_refuses_text_too_deep_for_the_parser_itself(self) -> None:
        with pytest.raises(JsonTooDeep):
            intake.parse("[" * 100_000 + "]" * 100_000)
        with pytest.raises(JsonTooDeep):
            intake.parse(json.dumps(nested(MAX_DEPTH + 1)))
        assert intake.parse(json.dumps(nested(MAX_DEPTH))) == nested(MAX_DEPTH)

    @pytest.mark.parametrize("text", ["NaN", "[Infinity]", '"\\ud800"', "{"])
    def test_parse_refuses_what_is_not_json_stepwell_keeps(self, text: str) -> None:
        with pytest.raises(ValueError):
            intake.parse(text)

    def test_code_first_values_are_checked_as_the_code_gives_them(self) -> None:
        with pytest.raises(JsonTooDeep, match="the result of step 'a'"):
            to_json(nested(MAX_DEPTH + 1), "the result of step 'a'")
        assert to_json(nested(MAX_DEPTH), "x") == nested(MAX_DEPTH)


# -- where values enter: step results, events --------------------------------------------------

DEEP = {"rows": nested(MAX_DEPTH)}  # 33 levels with its object


def deep_step(data: Any, ctx: Any) -> Any:
    return DEEP


FLOW = Workflow.model_validate(
    {
        "name": "deep",
        "triggers": {"events": [{"pattern": {"source": ["crm"]}}]},
        "steps": {
            "produce": {"function": "Produce"},
            "use": {"function": "Use", "depends_on": "produce"},
        },
    }
)


@pytest.fixture
def world() -> Iterator[InProcessWorld]:
    world = InProcessWorld({"deep": FLOW}, {})
    runtime = Runtime(
        world.orchestrator,
        world.store,
        world.clock,
        Workflows(world.store, world.clock),
        Catalog.of({"deep": FLOW}),
    )
    wiring.use(runtime)
    yield world
    wiring.use(None)


def first_attempt(world: InProcessWorld) -> dict[str, Any]:
    run_id = world.start("deep", {"n": 1})
    command = world.dispatched.popleft()
    assert command.key == "produce"
    return StepEnvelope.from_dispatch(command).to_dict() | {"run_id": run_id}


def test_a_step_function_returning_json_too_deep_fails_its_attempt(world: InProcessWorld) -> None:
    envelope = first_attempt(world)
    result = step_handler(deep_step)(envelope)
    assert result["status"] == "failed"
    assert (result["error_type"], result["retryable"]) == ("JsonTooDeep", False)
    [step] = world.store.steps(envelope["run_id"])
    assert (step.key, step.status) == ("produce", "failed")
    assert "step 'produce' output nests deeper than 32 levels" in step.error["message"]
    assert not world.dispatched  # "use" never got the value


def test_the_runner_checks_what_a_plain_lambda_returns(world: InProcessWorld) -> None:
    envelope = StepEnvelope.from_dict(first_attempt(world))
    runtime = wiring.current()
    runtime.invoke_plain = lambda function, payload: DEEP
    result = run_attempt(runtime, envelope.model_copy(update={"function": "arn:aws:lambda:f"}))
    assert (result.status, result.error_type) == ("failed", "JsonTooDeep")


def test_an_event_too_deep_starts_no_run(world: InProcessWorld) -> None:
    event = {"id": "e-1", "source": "crm", "detail": nested(MAX_DEPTH)}
    with pytest.raises(TriggerError, match=r"the event that would start a deep run nests deeper"):
        start_from_trigger(world.orchestrator, {"workflow": "deep", "event": event})
    assert not world.dispatched  # no run started
