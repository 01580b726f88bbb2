"""The dashboard's outbox page: what the local stack would have sent people (first links,
reminders, an escalation), newest first, with links that open the approval page."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from browser_helpers import Guard

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def test_reminders_and_an_escalation_reach_the_outbox_page(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("escalated-payment", {"amount": 120}).body["run_id"]
    mine = lambda: [  # noqa: E731
        e for e in stack.events("approval.requested") if e["detail"]["run_id"] == run_id
    ]
    assert stack.run_until(lambda: len(mine()) == 1, 30)
    stack.advance(timedelta(hours=24, minutes=1))
    # The first links, reminders at +4 h ... +24 h, and the CFO's links at +24 h.
    assert stack.run_until(lambda: len(mine()) == 1 + 6 + 1, 30), stack.time_status()
    reasons = [e["detail"]["reason"] for e in mine()]
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
