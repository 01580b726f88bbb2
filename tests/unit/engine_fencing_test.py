"""Fencing: only the current attempt's first result counts."""

from __future__ import annotations

from helpers import EngineDriver, task
from stepwell.engine.decision import attempt_token
from stepwell.engine.events import StepFailed, StepSucceeded


def retried():
    return {
        "a": task(retry={"max_attempts": 3, "interval": "1s", "jitter": "none"}),
        "b": task("a"),
    }


def test_a_result_of_an_earlier_attempt_is_stale():
    run = EngineDriver(retried())
    run.fail("a", "Flaky")
    run.fire("a")
    for late in (StepSucceeded("a", 1, "old"), StepFailed("a", 1, "Boom")):
        decision = run.send(late)
        [entry] = decision.timeline
        assert entry.type == "stale_result_ignored"
        assert entry.data == {"attempt": 1}
        assert "attempt 2 is current" in entry.message
        assert not decision.commands
    assert run.status("a") == "running"
    assert run.step("a").attempt == 2
    assert not run.dispatches("b")


def test_a_result_of_a_later_attempt_than_the_current_one_is_stale():
    run = EngineDriver(retried())
    decision = run.send(StepSucceeded("a", 2, "from the future"))
    assert [e.type for e in decision.timeline] == ["stale_result_ignored"]
    assert run.status("a") == "running"


def test_a_duplicate_result_is_ignored():
    run = EngineDriver(retried())
    run.succeed("a", "first")
    for duplicate in (StepSucceeded("a", 1, "second"), StepFailed("a", 1, "Boom")):
        decision = run.send(duplicate)
        [entry] = decision.timeline
        assert entry.type == "duplicate_ignored"
        assert "step is succeeded" in entry.message
    assert run.step("a").output == "first"
    assert len(run.dispatches("b")) == 1


def test_a_failure_while_waiting_to_retry_is_a_duplicate():
    run = EngineDriver(retried())
    run.fail("a", "Flaky")
    decision = run.fail("a", "Flaky", attempt=1)
    assert [e.type for e in decision.timeline] == ["duplicate_ignored"]
    assert run.status("a") == "retrying"
    assert len(run.timers("a")) == 1  # one retry timer, not two (the lease sends no timer)


def test_a_result_for_a_step_that_never_started_is_ignored():
    run = EngineDriver({"a": task(), "b": task("a")})
    decision = run.send(StepSucceeded("b", 1, "?"))
    assert [e.type for e in decision.timeline] == ["result_ignored"]
    assert run.status("b") is None
    decision = run.send(StepSucceeded("nope", 1, "?"))
    assert [e.type for e in decision.timeline] == ["result_ignored"]


def test_tokens_are_per_attempt_secret_and_reproducible():
    run = EngineDriver(retried(), nonce="s3cret")
    run.fail("a", "Flaky")
    run.fire("a")
    first, second = run.dispatches("a")
    assert first.token == attempt_token(run.run, "a", 1)
    assert second.token == attempt_token(run.run, "a", 2)
    assert first.token != second.token
    assert run.step("a").token == second.token
    other = EngineDriver(retried(), nonce="other")
    assert other.dispatches("a")[0].token != first.token


def test_a_result_with_a_wrong_token_is_refused():
    run = EngineDriver(retried(), nonce="s3cret")
    decision = run.send(StepSucceeded("a", 1, "forged", token="0" * 24))
    assert [e.type for e in decision.timeline] == ["result_refused"]
    assert run.status("a") == "running"
    decision = run.send(StepFailed("a", 1, "Boom", token="0" * 24))
    assert [e.type for e in decision.timeline] == ["result_refused"]
    run.send(StepSucceeded("a", 1, "real", token=run.step("a").token))
    assert run.step("a").output == "real"


def test_a_result_for_a_fanout_parent_is_ignored():
    run = EngineDriver({"each": task(for_each="${input}"), "after": task("each")}, [1, 2])
    decision = run.send(StepSucceeded("each", 0, "forged"))
    assert [e.type for e in decision.timeline] == ["result_ignored"]
    assert run.status("each") == "running"
