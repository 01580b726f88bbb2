"""Attempt leases (step timeouts) and the run's own timeout."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, counters_of, task, workflow
from stepwell.engine.attempts import DEFAULT_LEASE, MAX_LOST_ATTEMPTS
from stepwell.engine.commands import ScheduleTimer
from stepwell.engine.events import StepSucceeded, TimerFired


def test_an_attempt_has_a_lease_of_its_timeout():
    run = EngineDriver({"a": task(timeout="30s"), "b": task()})
    a, b = run.dispatches()
    assert a.deadline == T0 + timedelta(seconds=30)
    assert run.step("a").due_at == T0 + timedelta(seconds=30)
    assert b.deadline is None  # no timeout: the code runs without a deadline...
    # ...but the attempt is presumed lost after DEFAULT_LEASE: the run's watch finds it from
    # its start time (no due time, no index entry per attempt).
    assert run.step("b").due_at is None
    assert run.step("b").attempt_started_at == T0
    assert run.run.watch_at is not None


def test_a_timed_out_attempt_without_retry_fails_the_step():
    run = EngineDriver({"a": task(timeout="30s")})
    run.fire("a")
    assert run.status("a") == "failed"
    assert run.step("a").error["type"] == "StepTimedOut"
    assert "30s" in run.step("a").error["message"]
    assert run.run.status == "failed"


def test_a_timed_out_attempt_is_retried_and_its_late_result_is_stale():
    run = EngineDriver(
        {"a": task(timeout="30s", retry={"max_attempts": 2, "interval": "1s", "jitter": "none"})}
    )
    run.fire("a")
    assert run.status("a") == "retrying"
    assert run.step("a").error["type"] == "StepTimedOut"
    run.fire("a")
    assert run.step("a").attempt == 2
    decision = run.send(StepSucceeded("a", 1, "late"))
    [entry] = decision.timeline
    assert entry.type == "stale_result_ignored"
    assert run.status("a") == "running"
    run.succeed("a", "on time")
    assert run.step("a").output == "on time"


def test_a_lease_timer_of_an_ended_attempt_changes_nothing():
    run = EngineDriver({"a": task(timeout="30s"), "b": task("a", timeout="1h")})
    lease = run.step("a").due_at
    run.succeed("a")
    decision = run.send(TimerFired("a", lease), at=lease)
    assert not decision.timeline
    assert run.status("a") == "succeeded"
    assert run.status("b") == "running"


def test_an_early_lease_timer_is_ignored():
    run = EngineDriver({"a": task(timeout="30s")})
    decision = run.send(TimerFired("a", T0 + timedelta(seconds=30)), at=T0 + timedelta(seconds=5))
    assert decision.empty
    assert run.status("a") == "running"


def run_timeout_flow():
    return workflow(
        {
            "a": task(),
            "ask": {"type": "approval"},
            "b": task("a"),
            "c": task("b"),
        },
        timeout="1h",
    )


def test_the_run_timer_is_scheduled_at_start():
    run = EngineDriver(run_timeout_flow())
    assert run.run.due_at == T0 + timedelta(hours=1)
    assert ScheduleTimer("run-1", None, T0 + timedelta(hours=1)) in run.commands


def test_the_run_timeout_ends_the_run_and_cancels_its_open_steps():
    run = EngineDriver(run_timeout_flow())
    run.succeed("a")
    run.fire(None)
    assert run.run.status == "timed_out"
    assert run.run.error["type"] == "RunTimedOut"
    assert run.run.ended_at == T0 + timedelta(hours=1)
    assert run.run.due_at is None
    assert run.status("b") == "cancelled"
    assert run.status("ask") == "cancelled"
    assert run.status("c") is None  # never reached, never written
    assert all(s.due_at is None for s in run.steps.values() if s.status == "cancelled")
    assert (counters_of(run.steps.values())[0], run.run.waiting_steps) == (0, 0)
    run.succeed("b", attempt=1)
    assert run.status("b") == "cancelled"
    assert not run.dispatches("c")


def test_an_early_run_timer_is_ignored():
    run = EngineDriver(run_timeout_flow())
    decision = run.send(TimerFired(None, T0 + timedelta(hours=1)), at=T0 + timedelta(minutes=4))
    assert decision.empty
    assert run.run.status == "running"


def test_a_run_timer_after_the_run_ended_changes_nothing():
    run = EngineDriver(workflow({"a": task()}, timeout="1h"))
    run.succeed("a")
    assert run.run.status == "succeeded"
    decision = run.send(TimerFired(None, T0 + timedelta(hours=1)), at=T0 + timedelta(hours=2))
    assert decision.empty
    assert run.run.status == "succeeded"


def test_an_attempt_without_a_timeout_whose_lease_runs_out_is_lost_and_sent_again():
    run = EngineDriver({"a": task()})
    decision = run.expire("a")
    assert [e.type for e in decision.timeline] == ["attempt_lost", "step_dispatched"]
    assert [d.attempt for d in run.dispatches("a")] == [1, 2]
    step = run.step("a")
    assert (step.status, step.lost_attempts) == ("running", 1)
    assert step.attempt_started_at == T0 + DEFAULT_LEASE
    assert [e.type for e in run.succeed("a", "late", attempt=1).timeline] == [
        "stale_result_ignored"
    ]
    run.succeed("a", "ok")
    assert run.run.status == "succeeded"


def test_too_many_lost_attempts_fail_the_step_whatever_its_retry_policy():
    run = EngineDriver({"a": task(retry={"max_attempts": 10})})
    for _ in range(MAX_LOST_ATTEMPTS):
        run.expire("a")
    assert run.step("a").attempt == MAX_LOST_ATTEMPTS + 1
    run.expire("a")
    assert run.status("a") == "failed"
    assert run.step("a").error["type"] == "AttemptLost"
    assert run.run.status == "failed"


def test_lost_attempts_do_not_count_against_max_attempts():
    run = EngineDriver({"a": task(retry={"max_attempts": 2, "interval": "1s"})})
    run.expire("a")  # attempt 1 lost, attempt 2 sent
    run.fail("a", "Flaky")  # the step's first own failure: one retry is left
    assert run.status("a") == "retrying"


def test_the_run_s_watch_finds_a_lease_that_ran_out():
    run = EngineDriver({"a": task(), "b": task("a")})
    at = T0 + DEFAULT_LEASE + timedelta(minutes=1)
    run.send(TimerFired(None, at), at=at)  # the sweep fires the run's watch
    assert [d.attempt for d in run.dispatches("a")] == [1, 2]
    assert "attempt_lost" in run.types("a")
