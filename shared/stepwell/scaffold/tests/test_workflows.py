"""The app's workflows, run end to end through the local stack: the app's template.yaml and the
Stepwell engine on moto, with virtual time (a 3-day approval timeout takes no time)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

PROJECT = Path(__file__).resolve().parents[1]
ENDED = ("succeeded", "failed", "cancelled", "timed_out")


@pytest.fixture(scope="module")
def stack() -> Iterator[LocalStack]:
    with LocalStack(PROJECT, virtual_time=True, hold_waits=True) as running:
        yield running


def run_to_end(
    stack: LocalStack, workflow: str, input: Any, approve: bool | None = None
) -> dict[str, Any]:
    """Start a run; approve (or reject) its approval when it asks; return the ended run, its
    steps by name."""
    api = Client(stack.url)
    run_id = api.start_run(workflow, input).body["run_id"]
    if approve is not None:
        event = stack.wait_for_event(
            lambda e: (
                e.get("detail-type") == "approval.requested" and e["detail"]["run_id"] == run_id
            )
        )
        assert event is not None, "no approval was requested"
        link = event["detail"]["links"][0]
        decision = "approve" if approve else "reject"
        assert api.decide(link[f"{decision}_url"], decision).ok
    assert stack.run_until(lambda: api.run(run_id)["run"]["status"] in ENDED)
    detail = api.run(run_id)
    return {**detail["run"], "steps": {step["key"]: step for step in detail["steps"]}}


def test_a_small_claim_needs_no_approval(stack: LocalStack) -> None:
    run = run_to_end(stack, "expense", {"employee": "ada", "amount": 42})
    assert run["status"] == "succeeded"
    assert run["steps"]["approve"]["status"] == "skipped"


def test_a_large_claim_waits_for_a_manager(stack: LocalStack) -> None:
    run = run_to_end(stack, "expense", {"employee": "ada", "amount": 250}, approve=True)
    assert run["status"] == "succeeded"
    assert run["steps"]["approve"]["status"] == "succeeded"


def test_an_invalid_claim_fails_without_retries(stack: LocalStack) -> None:
    run = run_to_end(stack, "expense", {"employee": " ", "amount": 10})
    assert run["status"] == "failed"
    assert run["steps"]["check"]["attempt"] == 1


def test_a_report_is_approved_as_a_whole(stack: LocalStack) -> None:
    claims = [{"employee": "ada", "amount": 30}, {"employee": "ada", "amount": 120}]
    run = run_to_end(stack, "expense-report", {"claims": claims}, approve=True)
    assert run["status"] == "succeeded"
    assert run["output"] == {"approved": True, "total": 150.0}
