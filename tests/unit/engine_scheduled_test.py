"""A run started with ``start_at``: scheduled until then, started by its own timer, cancelled
before it without ever starting."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, task, workflow
from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine.commands import EmitEvent
from stepwell.engine.events import CancelRequested, TimerFired

LATER = T0 + timedelta(days=2)


def flow():
    return {"a": task(), "b": task("a")}


def test_a_run_started_ahead_waits_scheduled_with_its_timer_at_that_time():
    run = EngineDriver(flow(), start_at=LATER)
    assert (run.run.status, run.run.started_at, run.run.due_at) == ("scheduled", None, LATER)
    assert run.run.watch_at is None and not run.steps and not run.dispatches()
    assert [t.due_at for t in run.timers()] == [LATER]
    [entry] = run.entries("run_scheduled")
    assert entry.message == f"scheduled to start at {LATER.isoformat()}"
    assert "run_started" not in run.types()


def test_its_timer_starts_it_then_as_a_run_started_at_that_time():
    run = EngineDriver(flow(), start_at=LATER)
    early = run.send(TimerFired(None, LATER), at=LATER - timedelta(hours=1))
    assert run.run.status == "scheduled" and not early.commands and not run.dispatches()
    run.fire(None)
    assert run.run.status == "running" and run.run.started_at == LATER
    assert [d.key for d in run.dispatches()] == ["a"]
    assert run.types().count("run_started") == 1
    started = [c for c in run.commands if isinstance(c, EmitEvent)]
    assert [c.detail_type for c in started] == ["run.started"]
    run.succeed("a")
    run.succeed("b")
    assert run.run.status == "succeeded"


def test_its_timeout_and_deadline_count_from_its_start():
    run = EngineDriver(workflow({"a": task()}, timeout="1h"), start_at=LATER)
    assert run.run.deadline == LATER + timedelta(hours=1)
    run.fire(None)
    assert run.run.due_at == LATER + timedelta(hours=1)
    run.fire(None)
    assert run.run.status == "timed_out"


def test_a_scheduled_run_cancelled_before_its_time_never_starts():
    run = EngineDriver(flow(), start_at=LATER)
    run.send(CancelRequested("not needed", by="ops@x"))
    assert run.run.status == "cancelled" and run.run.due_at is None
    assert run.run.error == {"type": "Cancelled", "message": "not needed by ops@x"}
    late = run.send(TimerFired(None, LATER), at=LATER)
    assert run.run.status == "cancelled" and not late.commands
    assert not run.steps and not run.dispatches()


def test_a_start_at_already_past_starts_the_run_now():
    run = EngineDriver(flow(), start_at=T0 - timedelta(minutes=1))
    assert run.run.status == "running" and run.run.started_at == T0
    assert [d.key for d in run.dispatches()] == ["a"]


CODE = Workflow(name="code-flow", steps={}, code="flow.py:flow", code_version="1")


def test_a_scheduled_code_first_run_starts_its_replay_then_or_never_when_cancelled():
    run = EngineDriver(CODE, start_at=LATER)
    assert run.run.status == "scheduled" and not run.dispatches()
    run.fire(None)
    assert [d.key for d in run.dispatches()] == [WORKFLOW_KEY]
    dropped = EngineDriver(CODE, start_at=LATER)
    dropped.send(CancelRequested("not needed"))
    assert dropped.run.status == "cancelled" and dropped.run.cancelling is None
    dropped.send(TimerFired(None, LATER), at=LATER)
    assert not dropped.steps and not dropped.dispatches()
