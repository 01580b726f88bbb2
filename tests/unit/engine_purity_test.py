"""The engine is pure: same input, same decision; and it never changes what it is given."""

from __future__ import annotations

import copy
from datetime import timedelta

import pytest

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine import core
from stepwell.engine.events import (
    ApprovalDecided,
    CallbackReceived,
    CancelRequested,
    ChildRunEnded,
    FanoutSettled,
    ItemReady,
    LeaseExpired,
    SkipRequested,
    StepFailed,
    StepSucceeded,
    TimerFired,
)
from stepwell.engine.state import RunStart, Usage

STEPS = {
    "a": task(retry={"max_attempts": 3, "interval": "5s"}),
    "each": task("a", for_each="${steps.a.output.items}", max_parallel=2, input={"i": "${item}"}),
    "ask": {"type": "approval", "depends_on": "a", "approvers": ["x@y", "z@y"], "quorum": 2},
    "cb": {"type": "callback", "depends_on": "a", "heartbeat": "1m"},
    "sub": {"type": "workflow", "depends_on": "a", "workflow": "other"},
    "end": task("each", "ask", "cb", "sub", input="${steps.each.output}"),
}


def started():
    run = EngineDriver(workflow(STEPS, timeout="1d"), {"n": 1})
    run.succeed("a", {"items": [{"k": 1}, {"k": 2}, {"k": 3}]})
    return run


def scenarios():
    yield "a fails and retries with jitter", EngineDriver(STEPS), StepFailed("a", 1, "Flaky")
    yield (
        "a succeeds into a fan-out",
        EngineDriver(STEPS),
        StepSucceeded("a", 1, {"items": [1, 2, 3]}, Usage(0.1, 5, 7)),
    )
    yield "a child succeeds", started(), StepSucceeded("each[1]", 1, {"out": [1, 2]})
    yield "an approval", started(), ApprovalDecided("ask", 1, True, "x@y", "fine")
    yield "a heartbeat", started(), CallbackReceived("cb", "heartbeat")
    yield "a callback", started(), CallbackReceived("cb", "success", {"deep": {"x": [1]}})
    yield "a child run", started(), ChildRunEnded("sub", 1, "run-1.sub.1", "succeeded", {"o": 1})
    yield "a lease", started(), LeaseExpired("each[0]", 1)
    yield "the run timeout", started(), TimerFired(None, T0 + timedelta(days=1))
    yield "a cancel", started(), CancelRequested("stop")
    yield "a skip", started(), SkipRequested("cb", {"manual": True})
    yield "a fan-out's watch", started(), TimerFired("each", T0 + timedelta(hours=1))
    yield "an item's slot", started(), ItemReady("each[2]")
    yield "a settled fan-out", started(), FanoutSettled("each", {"index": 1, "error": None})


@pytest.mark.parametrize(("name", "run", "event"), [pytest.param(*s, id=s[0]) for s in scenarios()])
def test_deciding_twice_gives_the_same_decision_and_leaves_the_state_alone(name, run, event):
    now = T0 + timedelta(days=1)
    state = run.snapshot()
    before = copy.deepcopy(state)
    first = core.decide(run.definition, state, event, now)
    assert state == before, name
    second = core.decide(run.definition, state, event, now)
    assert first == second, name
    assert state == before, name
    assert not first.empty, name


def test_the_decision_does_not_share_mutable_records_with_the_state():
    run = started()
    state = run.snapshot()
    decision = core.decide(run.definition, state, ApprovalDecided("ask", 1, True, "x@y"), T0)
    assert decision.steps["ask"] is not state.steps["ask"]
    assert decision.steps["ask"].decisions is not state.steps["ask"].decisions
    assert decision.run is not state.run
    assert decision.run.usage is not state.run.usage


def test_starting_a_run_is_deterministic():
    one = core.start_run(workflow(STEPS), RunStart("run-1", {"n": 1}), T0)
    two = core.start_run(workflow(STEPS), RunStart("run-1", {"n": 1}), T0)
    assert one == two


def test_the_same_events_give_the_same_run():
    def play():
        run = EngineDriver(STEPS, {"n": 1})
        run.fail("a", "Flaky")
        run.fire("a")
        run.succeed("a", {"items": [1, 2]})
        run.fail("each[0]", "Boom")
        return run

    one, two = play(), play()
    assert one.decisions == two.decisions
    assert one.steps == two.steps
