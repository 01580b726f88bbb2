"""Cancelling a run and skipping a step on an operator's request."""

from __future__ import annotations

import pytest

from helpers import EngineDriver, counters_of, task
from stepwell.engine.commands import ContinueRun, EmitEvent
from stepwell.engine.decision import MAX_STEP_WRITES
from stepwell.engine.events import (
    ApprovalDecided,
    CallbackReceived,
    CancelRequested,
    Continue,
    SkipRequested,
    StepFailed,
    StepSucceeded,
)


def flow():
    return {
        "a": task(timeout="1m"),
        "ask": {"type": "approval"},
        "wait": {"type": "callback"},
        "b": task("a"),
        "c": task("b"),
    }


def test_cancel_ends_the_run_and_cancels_every_started_step():
    run = EngineDriver(flow())
    run.succeed("a")
    decision = run.send(CancelRequested("changed my mind", by="ops@x"))
    assert run.run.status == "cancelled"
    assert run.run.error == {"type": "Cancelled", "message": "changed my mind by ops@x"}
    assert [run.status(k) for k in ("a", "ask", "wait", "b")] == [
        "succeeded",
        "cancelled",
        "cancelled",
        "cancelled",
    ]
    assert run.status("c") is None
    assert all(run.step(k).due_at is None for k in ("ask", "wait", "b"))
    assert (counters_of(run.steps.values())[0], run.run.waiting_steps) == (0, 0)
    types = [e.type for e in decision.timeline]
    assert types[:2] == ["cancel_requested", "run_status"]
    assert types.count("step_cancelled") == 3
    [completed] = [c for c in decision.commands if isinstance(c, EmitEvent)]
    assert completed.detail_type == "run.completed"
    assert completed.detail["status"] == "cancelled"


@pytest.mark.parametrize(
    "event",
    [
        StepSucceeded("b", 1, "late"),
        StepFailed("b", 1, "Boom"),
        ApprovalDecided("ask", 1, True),
        CallbackReceived("wait", "success"),
    ],
)
def test_results_after_a_cancel_are_ignored_and_noted(event):
    run = EngineDriver(flow())
    run.succeed("a")
    run.send(CancelRequested())
    before = (run.run.status, {k: s.status for k, s in run.steps.items()})
    decision = run.send(event)
    assert len(decision.timeline) == 1
    assert decision.timeline[0].type.endswith("_ignored")
    assert not decision.commands
    assert (run.run.status, {k: s.status for k, s in run.steps.items()}) == before


def test_cancelling_an_ended_run_is_noted_as_ignored():
    run = EngineDriver({"a": task()})
    run.succeed("a")
    decision = run.send(CancelRequested())
    assert [(e.type, e.message) for e in decision.timeline] == [
        ("cancel_ignored", "the run is already succeeded")
    ]
    assert not decision.commands
    assert run.run.status == "succeeded"


def test_cancelling_many_open_steps_goes_on_through_continue():
    n = MAX_STEP_WRITES + 15
    run = EngineDriver({f"s{i}": task() for i in range(n)})
    decision = run.send(CancelRequested())
    assert len(decision.steps) <= MAX_STEP_WRITES
    assert ContinueRun("run-1", None) in decision.commands
    run.send(Continue(None))
    assert all(s.status == "cancelled" for s in run.steps.values())
    assert (counters_of(run.steps.values())[0], run.run.waiting_steps) == (0, 0)


def test_skipping_a_running_step_lets_its_dependents_go_on():
    run = EngineDriver(
        {
            "a": task(),
            "b": task("a", input="${steps.a.output}"),
            "c": task("a", trigger_rule="none_failed", input="${steps.a.output}"),
        }
    )
    run.send(SkipRequested("a", output={"manual": True}, by="ops@x"))
    # Skipped with an output: the step is done with it, and the steps after it run on it.
    assert run.status("a") == "succeeded"
    assert run.step("a").output == {"manual": True}
    assert run.entries("step_skipped")[0].message.startswith("skipped by ops@x, with an output")
    assert run.dispatches("b")[0].input == {"manual": True}
    assert run.dispatches("c")[0].input == {"manual": True}
    assert counters_of(run.steps.values())[0] == 2
    decision = run.succeed("a", "late", attempt=1)
    assert [e.type for e in decision.timeline] == ["duplicate_ignored"]
    assert run.step("a").output == {"manual": True}


def test_skipping_without_an_output_skips_the_steps_after_it():
    run = EngineDriver({"a": task(), "b": task("a"), "c": task("a", trigger_rule="none_failed")})
    run.send(SkipRequested("a", by="ops@x"))
    assert (
        run.status("a") == "skipped"
        and run.entries("step_skipped")[0].message == "skipped by ops@x"
    )
    assert run.status("b") == "skipped" and run.status("c") == "running"


def test_skipping_a_waiting_step_clears_its_timer():
    run = EngineDriver({"ask": {"type": "approval", "timeout": "1d"}, "b": task("ask")})
    run.send(SkipRequested("ask"))
    assert run.step("ask").due_at is None
    assert run.run.waiting_steps == 0
    assert run.status("b") == "skipped"
    assert run.run.status == "succeeded"


def test_skipping_an_ended_step_is_ignored():
    run = EngineDriver({"a": task(), "b": task("a")})
    run.succeed("a", 1)
    decision = run.send(SkipRequested("a"))
    assert [e.type for e in decision.timeline] == ["skip_ignored"]
    assert run.status("a") == "succeeded"


def test_skipping_a_pending_step_before_it_is_ready():
    run = EngineDriver({"a": task(), "b": task(), "c": task("a", "b"), "d": task("c")})
    run.succeed("a")
    assert run.status("c") == "pending"
    run.send(SkipRequested("c"))
    assert run.status("c") == "skipped"
    run.succeed("b")
    assert not run.dispatches("c")
    assert run.status("d") == "skipped"
    assert run.run.status == "succeeded"


def test_skipping_a_step_that_was_not_reached_yet():
    run = EngineDriver({"a": task(), "b": task("a"), "c": task("b")})
    run.send(SkipRequested("b"))
    assert run.status("b") == "skipped"
    run.succeed("a")
    assert not run.dispatches("b")
    assert run.status("c") == "skipped"


def test_skipping_a_for_each_item_lets_the_fanout_go_on():
    run = EngineDriver({"each": task(for_each="${input}"), "after": task("each")}, [1, 2, 3])
    run.send(SkipRequested("each[1]", output="manual"))
    assert run.status("each") == "running"
    run.succeed("each[0]", "A")
    run.succeed("each[2]", "C")
    assert run.status("each") == "succeeded"
    assert run.step("each").output[0] == "A"
    assert run.step("each").output[2] == "C"
