"""Pure retry decisions: exponential backoff, cap, full jitter, error filters, attempts."""

from __future__ import annotations

from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from stepwell.definition.models import Retry
from stepwell.definition.retry import backoff, decide


def policy(**fields):
    return Retry.model_validate(fields)


def seconds(delta: timedelta) -> float:
    return delta.total_seconds()


def test_backoff_grows_exponentially():
    p = policy(interval="1s", backoff_rate=2)
    assert [seconds(backoff(p, a)) for a in (1, 2, 3, 4)] == [1, 2, 4, 8]
    p = policy(interval="500ms", backoff_rate=3)
    assert [seconds(backoff(p, a)) for a in (1, 2, 3)] == [0.5, 1.5, 4.5]


def test_backoff_is_capped_by_max_interval():
    p = policy(interval="1s", backoff_rate=2, max_interval="5s")
    assert [seconds(backoff(p, a)) for a in (1, 2, 3, 4, 10)] == [1, 2, 4, 5, 5]


def test_no_jitter_waits_exactly_the_backoff():
    p = policy(max_attempts=5, interval="2s", backoff_rate=2, jitter="none")
    delays = [seconds(decide(p, a, "Boom", "seed").delay) for a in (1, 2, 3, 4)]
    assert delays == [2, 4, 8, 16]


def test_full_jitter_is_deterministic_for_a_seed():
    p = policy(max_attempts=5, interval="10s")
    first = decide(p, 2, "Boom", "run-1:step:2")
    assert first == decide(p, 2, "Boom", "run-1:step:2")
    assert first.retry
    others = {decide(p, 2, "Boom", f"run-{i}:step:2").delay for i in range(20)}
    assert len(others) > 10  # the seed matters


@settings(max_examples=200, deadline=None, derandomize=True)
@given(
    attempt=st.integers(1, 9),
    interval=st.floats(0.001, 100),
    rate=st.floats(1, 10),
    cap=st.none() | st.floats(0.5, 1000),
    seed=st.text(max_size=20),
)
def test_full_jitter_stays_within_zero_and_the_backoff(attempt, interval, rate, cap, seed):
    p = Retry(
        max_attempts=10,
        interval=timedelta(seconds=interval),
        backoff_rate=rate,
        max_interval=None if cap is None else timedelta(seconds=cap),
    )
    choice = decide(p, attempt, "Boom", seed)
    assert choice.retry
    limit = backoff(p, attempt)
    assert timedelta(0) <= choice.delay <= limit
    if cap is not None:
        assert limit <= timedelta(seconds=cap)


def test_no_policy_never_retries():
    choice = decide(None, 1, "Boom", "s")
    assert not choice.retry
    assert choice.reason == "no retry policy"


def test_max_attempts_counts_the_first_attempt():
    p = policy(max_attempts=3)
    assert decide(p, 1, "Boom", "s").retry
    assert decide(p, 2, "Boom", "s").retry
    last = decide(p, 3, "Boom", "s")
    assert not last.retry
    assert "all 3 attempts failed" in last.reason
    assert not decide(policy(max_attempts=1), 1, "Boom", "s").retry


def test_retry_on_lists_the_errors_retried():
    p = policy(retry_on=["Throttled", "TimeoutError"])
    assert decide(p, 1, "Throttled", "s").retry
    assert decide(p, 1, "TimeoutError", "s").retry
    refused = decide(p, 1, "ValueError", "s")
    assert not refused.retry
    assert "not in retry_on" in refused.reason


def test_star_retries_any_error_by_default():
    assert policy().retry_on == ["*"]
    assert decide(policy(), 1, "AnythingAtAll", "s").retry


def test_non_retryable_wins_over_star_and_retry_on():
    p = policy(retry_on=["*", "InvalidOrder"], non_retryable=["InvalidOrder"])
    refused = decide(p, 1, "InvalidOrder", "s")
    assert not refused.retry
    assert "non_retryable" in refused.reason
    assert decide(p, 1, "Other", "s").retry


def test_the_reason_names_the_next_attempt():
    assert decide(policy(max_attempts=4), 2, "Boom", "s").reason == "attempt 3 of 4"
