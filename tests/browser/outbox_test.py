"""The dashboard's outbox page: what the local stack would have sent people (first links,
reminders, an escalation), newest first, with links that open the approval page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from browser_helpers import Guard

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def _sent(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    return [e for e in stack.events("approval.requested") if e["detail"]["run_id"] == run_id]


def _sent_reaches(stack: LocalStack, run_id: str, count: int) -> bool:
    return stack.run_until(lambda: len(_sent(stack, run_id)) == count, 30)


def test_reminders_and_an_escalation_reach_the_outbox_page(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("escalated-payment", {"amount": 120}).body["run_id"]
    assert _sent_reaches(stack, run_id, 1)
    # A day, 4 h at a time: each reminder at its own time, the CFO's links with the sixth.
    for hours in range(1, 7):
        stack.advance(timedelta(hours=4, seconds=30))
        assert _sent_reaches(stack, run_id, 1 + hours + (1 if hours == 6 else 0)), hours
    reasons = [e["detail"]["reason"] for e in _sent(stack, run_id)]
    assert reasons == ["requested", *["reminder"] * 5, "escalation", "reminder"]

    browser_page.goto(f"{stack.url}/ui/#/outbox")
    browser_page.wait_for_selector("table[data-outbox]")
    rows = browser_page.locator(f'table[data-outbox] tr:has(a[href*="{run_id}"])')
    assert rows.count() == 3 + 5 * 3 + 1 + 3  # one row per person and notification
    assert rows.first.get_attribute("data-reason") == "reminder"  # newest first
    escalated = browser_page.locator('tr[data-reason="escalation"]', has_text="cfo@example.com")
    assert escalated.count() == 1
    href = escalated.locator('a[data-link="approve_url"]').get_attribute("href")
    assert href is not None and href.startswith("/approvals/")
    approval = browser_page.context.new_page()
    approval.goto(f"{stack.url}{href}")
    assert "cfo@example.com" in approval.inner_text("dl")
    approval.close()
    types = [e["type"] for e in api.timeline(run_id)]
    assert types.count("approval_reminded") == 6 and types.count("approval_escalated") == 1
    guard.check()
