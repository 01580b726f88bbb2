"""Retry decisions: pure functions of a policy, the attempt that failed and the error."""

from __future__ import annotations

import hashlib
import random
from dataclasses import dataclass
from datetime import timedelta

from stepwell.definition.models import Retry


@dataclass(frozen=True)
class RetryDecision:
    """Whether to try again, and after how long."""

    retry: bool
    delay: timedelta = timedelta(0)
    reason: str = ""


def backoff(policy: Retry, attempt: int) -> timedelta:
    """The capped exponential wait after ``attempt`` failed (before jitter)."""
    seconds = policy.interval.total_seconds() * policy.backoff_rate ** (attempt - 1)
    if policy.max_interval is not None:
        seconds = min(seconds, policy.max_interval.total_seconds())
    return timedelta(seconds=seconds)


def decide(policy: Retry | None, attempt: int, error_type: str, seed: str) -> RetryDecision:
    """Decide whether attempt ``attempt`` (1-based) that failed with ``error_type`` is retried.

    Full jitter draws the wait uniformly from [0, backoff] with a generator seeded by ``seed``
    (run, step and attempt), so deciding twice gives the same wait.
    """
    if policy is None:
        return RetryDecision(False, reason="no retry policy")
    if error_type in policy.non_retryable:
        return RetryDecision(False, reason=f"{error_type} is listed in non_retryable")
    if "*" not in policy.retry_on and error_type not in policy.retry_on:
        return RetryDecision(False, reason=f"{error_type} is not in retry_on")
    if attempt >= policy.max_attempts:
        return RetryDecision(False, reason=f"all {policy.max_attempts} attempts failed")
    wait = backoff(policy, attempt)
    if policy.jitter == "full":
        digest = hashlib.sha256(seed.encode()).digest()
        wait = timedelta(seconds=random.Random(digest).uniform(0, wait.total_seconds()))
    return RetryDecision(True, wait, reason=f"attempt {attempt + 1} of {policy.max_attempts}")
