"""Retries inside a run: backoff timers, new attempts, error filters and exhaustion."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, task
from stepwell.definition import retry
from stepwell.engine.events import StepFailed, TimerFired


def retried(**policy):
    return {"a": task(retry={"max_attempts": 3, "interval": "1s", **policy}), "b": task("a")}


def test_a_retryable_failure_waits_its_backoff_then_starts_a_new_attempt():
    run = EngineDriver(retried(jitter="none"))
    run.fail("a", "Flaky", message="try again")
    step = run.step("a")
    assert step.status == "retrying"
    assert step.waiting_for == "retry"
    assert step.due_at == T0 + timedelta(seconds=1)
    assert step.error == {"type": "Flaky", "message": "try again"}
    assert run.timers("a")[-1].due_at == T0 + timedelta(seconds=1)
    assert run.run.status == "running"  # a retry wait is activity, not a wait on the world
    [entry] = run.entries("step_retrying")
    assert entry.data == {"error": "Flaky", "delay_s": 1.0}
    run.fire("a")
    assert [(d.key, d.attempt) for d in run.dispatches()] == [("a", 1), ("a", 2)]
    tokens = {d.token for d in run.dispatches()}
    assert len(tokens) == 2
    run.succeed("a", "ok")
    assert run.status("a") == "succeeded"
    assert run.step("a").error is None
    assert run.status("b") == "running"


def test_the_engine_waits_the_delay_the_pure_retry_decision_gives():
    run = EngineDriver(retried(interval="10s"), run_id="run-xyz")
    run.fail("a", "Flaky")
    expected = retry.decide(run.definition.steps["a"].retry, 1, "Flaky", "run-xyz:a:1").delay
    assert run.step("a").due_at == T0 + expected
    assert timedelta(0) <= expected <= timedelta(seconds=10)


def test_backoff_doubles_and_is_capped():
    run = EngineDriver(
        {
            "a": task(
                retry={"max_attempts": 5, "interval": "1s", "max_interval": "3s", "jitter": "none"}
            )
        }
    )
    waits = []
    for _ in range(4):
        failed_at = run.now
        run.fail("a", "Flaky")
        waits.append((run.step("a").due_at - failed_at).total_seconds())
        run.fire("a")
    assert waits == [1, 2, 3, 3]
    assert run.step("a").attempt == 5


def test_exhausted_attempts_fail_the_step_and_the_run():
    run = EngineDriver(retried(jitter="none"))
    for attempt in (1, 2):
        run.fail("a", "Flaky")
        assert run.step("a").attempt == attempt
        run.fire("a")
    run.fail("a", "Flaky", message="third time")
    assert run.status("a") == "failed"
    assert run.step("a").attempt == 3
    assert run.run.status == "failed"
    assert run.run.error == {"type": "Flaky", "message": "third time", "step": "a"}
    assert len(run.dispatches("a")) == 3


def test_errors_outside_retry_on_fail_at_once():
    run = EngineDriver(retried(retry_on=["Throttled"]))
    run.fail("a", "ValueError")
    assert run.status("a") == "failed"
    assert len(run.dispatches("a")) == 1


def test_non_retryable_errors_fail_at_once():
    run = EngineDriver(retried(non_retryable=["InvalidOrder"]))
    run.fail("a", "InvalidOrder")
    assert run.status("a") == "failed"


def test_a_failure_marked_not_retryable_fails_at_once():
    run = EngineDriver(retried())
    run.send(StepFailed("a", 1, "Flaky", retryable=False))
    assert run.status("a") == "failed"


def test_without_a_policy_a_failure_is_final():
    run = EngineDriver({"a": task()})
    run.fail("a", "Flaky")
    assert run.status("a") == "failed"
    assert run.run.status == "failed"


def test_a_retry_timer_that_fires_early_is_ignored():
    run = EngineDriver(retried(interval="1m", jitter="none"))
    run.fail("a", "Flaky")
    due = run.step("a").due_at
    decision = run.send(TimerFired("a", due), at=due - timedelta(seconds=1))
    assert decision.empty
    assert run.status("a") == "retrying"
