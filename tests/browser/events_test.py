"""The dashboard and event waits: a waiting event step says what it waits for and until when,
the "send event" page puts one on the bus through POST /events, and the run page lists the
events its waits received."""

from __future__ import annotations

from typing import Any

from browser_helpers import Guard

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def test_a_person_sends_the_event_a_run_waits_for_from_the_dashboard(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("await-settlement", {"order_id": "o-77"}).body["run_id"]
    assert stack.run_until(
        lambda: any(s["status"] == "waiting" for s in api.run(run_id)["steps"]), 30
    )

    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}?step=settled")
    why = browser_page.locator('[data-why="settled"]')
    why.wait_for()
    text = why.inner_text()
    assert "payments payment.settled" in text and "detail.order_id = o-77" in text
    assert "deadline" in text
    assert browser_page.locator("[data-events-received]").is_hidden()

    browser_page.goto(f"{stack.url}/ui/#/events")
    form = {
        'input[name="source"]': "payments",
        'input[name="detail_type"]': "payment.settled",
        'textarea[name="detail"]': '{"order_id": "o-77", "amount": 12}',
        'input[name="id"]': "pay-o-77",
    }
    for field, value in form.items():
        browser_page.fill(field, value)
    browser_page.click('[data-action="send-event"]')
    browser_page.click('[data-confirm="send-event"]')
    sent = browser_page.locator('[data-control="send-event"] .result.ok')
    sent.wait_for()
    assert "id pay-o-77" in sent.inner_text()

    assert stack.run_until(lambda: api.run(run_id)["run"]["status"] == "succeeded", 30)
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    row = browser_page.locator('[data-events-received] tr[data-event="pay-o-77"]')
    row.wait_for()
    assert "settled" in row.inner_text()
    guard.check()
