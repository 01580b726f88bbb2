"""What a skip skips besides its step: the steps after it that their trigger rules rule out."""

from __future__ import annotations

from typing import Any

from stepwell.definition.models import Workflow
from stepwell.engine.skips import skipped_with
from stepwell.engine.state import StepState


def _workflow(steps: dict[str, Any]) -> Workflow:
    return Workflow.model_validate({"name": "w", "steps": steps})


TASK = {"function": "F"}


def test_a_skip_skips_the_chain_after_it_until_a_rule_that_runs_anyway() -> None:
    workflow = _workflow(
        {
            "wait": {"type": "delay", "duration": "1h"},
            "announce": {**TASK, "depends_on": "wait"},
            "thank": {**TASK, "depends_on": "announce"},
            "tidy": {**TASK, "depends_on": "thank", "trigger_rule": "all_done"},
            "audit": {**TASK, "depends_on": ["wait", "tidy"], "trigger_rule": "none_failed"},
        }
    )
    assert skipped_with(workflow, "wait", {}) == ["announce", "thank"]
    assert skipped_with(workflow, "thank", {}) == []  # tidy runs after anything


def test_a_failure_handler_is_skipped_since_no_failure_happens() -> None:
    workflow = _workflow(
        {
            "pay": {**TASK, "catch": [{"errors": "Declined", "then": "alert"}]},
            "alert": {"type": "notify", "detail_type": "x", "detail": {}},
            "ship": {**TASK, "depends_on": "pay"},
        }
    )
    assert skipped_with(workflow, "pay", {}) == ["alert", "ship"]


def test_one_failed_is_skipped_unless_another_dependency_failed() -> None:
    workflow = _workflow(
        {
            "a": TASK,
            "b": TASK,
            "on_failure": {**TASK, "depends_on": ["a", "b"], "trigger_rule": "one_failed"},
        }
    )
    assert skipped_with(workflow, "a", {}) == ["on_failure"]
    failed = {"b": StepState(key="b", status="failed")}
    assert skipped_with(workflow, "a", failed) == []


def test_steps_that_began_and_children_are_not_listed() -> None:
    workflow = _workflow(
        {
            "each": {**TASK, "for_each": "${input.items}"},
            "after": {**TASK, "depends_on": "each"},
        }
    )
    assert skipped_with(workflow, "each[2]", {}) == []
    began = {"after": StepState(key="after", status="running")}
    assert skipped_with(workflow, "each", began) == []
    assert skipped_with(workflow, "each", {}) == ["after"]
