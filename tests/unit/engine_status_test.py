"""Run statuses: running, waiting (only waits open), and the terminal ones."""

from __future__ import annotations

from helpers import EngineDriver, counters_of, task, workflow
from stepwell.engine.events import ApprovalDecided, CallbackReceived, CancelRequested
from stepwell.engine.state import RUN_TERMINAL


def test_a_run_is_running_while_an_attempt_runs():
    run = EngineDriver({"a": task(), "ask": {"type": "approval"}})
    assert run.run.status == "running"
    assert (counters_of(run.steps.values())[0], run.run.waiting_steps) == (1, 1)
    assert run.run.started_at == run.now


def test_a_run_is_waiting_while_only_waits_are_open():
    run = EngineDriver(
        {
            "a": task(),
            "ask": {"type": "approval"},
            "cb": {"type": "callback"},
            "d": {"type": "delay", "duration": "1h"},
            "b": task("ask"),
        }
    )
    assert run.run.status == "running"
    run.succeed("a")
    assert run.run.status == "waiting"
    assert run.run.waiting_steps == 3
    run.send(ApprovalDecided("ask", 1, True))
    assert run.run.status == "running"  # b is running
    run.succeed("b")
    assert run.run.status == "waiting"
    run.send(CallbackReceived("cb", "success"))
    assert run.run.status == "waiting"
    run.fire("d")
    assert run.run.status == "succeeded"


def test_a_run_waiting_to_retry_is_running():
    run = EngineDriver({"a": task(retry={"interval": "1h"}), "ask": {"type": "approval"}})
    run.fail("a", "Flaky")
    assert run.status("a") == "retrying"
    assert run.run.status == "running"


def test_a_run_that_starts_on_a_wait_is_waiting_at_once():
    run = EngineDriver({"ask": {"type": "approval"}})
    assert run.run.status == "waiting"


def test_terminal_statuses():
    ok = EngineDriver({"a": task()})
    ok.succeed("a")
    failed = EngineDriver({"a": task()})
    failed.fail("a")
    cancelled = EngineDriver({"a": task()})
    cancelled.send(CancelRequested())
    timed_out = EngineDriver(workflow({"a": task()}, timeout="1m"))
    timed_out.fire(None)
    statuses = [r.run.status for r in (ok, failed, cancelled, timed_out)]
    assert statuses == ["succeeded", "failed", "cancelled", "timed_out"]
    assert set(statuses) == RUN_TERMINAL
    for run in (ok, failed, cancelled, timed_out):
        assert run.run.terminal
        assert run.run.ended_at == run.now
        assert (counters_of(run.steps.values())[0], run.run.waiting_steps) == (0, 0)
        assert run.entries("run_status")[-1].data == {"status": run.run.status}


def test_a_run_whose_steps_are_all_skipped_succeeds_at_start():
    run = EngineDriver({"a": task(when=False), "b": task("a")})
    assert run.run.status == "succeeded"
    assert run.run.output == {"b": None}
