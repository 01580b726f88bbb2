"""A step invocation that dies outside its step's code (here: the process exits while the step
records its result) is not run again by Lambda (``MaximumRetryAttempts: 0``, which would run
the step's code twice for one attempt). Lambda's on-failure destination reports it on the bus,
the scheduler fails the attempt at once with Lambda's error type, and the step's retry policy
sends a new attempt, instead of the attempt waiting out its 15-minute lease."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import pytest
from e2e_helpers import SMALL_ORDER, finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.runtime import results


def test_a_dead_invocation_fails_its_attempt_at_once_and_is_retried(
    stack: LocalStack, api: Client, monkeypatch: pytest.MonkeyPatch
) -> None:
    record = results.deliver
    died: list[str] = []

    def dies_once(orchestrator: Any, run_id: str, event: Any) -> bool:
        if event.key == "reserve[0]" and not died:
            died.append(run_id)
            raise SystemExit(1)  # the runtime process exits: Lambda reports Runtime.ExitError
        return record(orchestrator, run_id, event)

    monkeypatch.setattr(results, "deliver", dies_once)
    run_id = api.start_run("order-fulfilment", SMALL_ORDER).body["run_id"]
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert died == [run_id]
    failed = [
        e
        for e in api.timeline(run_id)
        if e["type"] == "step_retrying" and e["step"] == "reserve[0]"
    ]
    assert failed and "Runtime.ExitError" in failed[0]["message"], api.timeline(run_id)
    assert steps_of(detail)["reserve"]["status"] == "succeeded"
    # Found by Lambda's report at once, not by the attempt's 15-minute lease.
    began = datetime.fromisoformat(detail["run"]["started_at"])
    assert datetime.fromisoformat(failed[0]["at"]) - began < timedelta(minutes=1)
    assert stack.metrics.counts["StepInvocationsFailed"] == 1
