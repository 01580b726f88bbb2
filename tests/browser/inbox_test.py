"""The operator's inbox in a real browser: every approval and form waiting for people across
runs, with its deadline and escalations, a form answered (a refused answer's problems shown,
nothing sent) and an approval approved from there, each noted on its run's timeline as the
operator's."""

from __future__ import annotations

from typing import Any

from browser_helpers import Guard

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def _waiting(stack: LocalStack, api: Client, run_id: str, key: str) -> None:
    def waits() -> bool:
        steps = {s["key"]: s for s in api.run(run_id)["steps"]}
        return steps.get(key, {}).get("status") == "waiting"

    assert stack.run_until(waits, 30), f"{key} of {run_id} is not waiting"


def test_a_form_and_an_approval_are_answered_from_the_inbox(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    with stack.hold():
        form_run = api.start_run("shipping-form", {"order_id": "IN-1"}).body["run_id"]
        pay_run = api.start_run("escalated-payment", {"amount": 75}).body["run_id"]
        _waiting(stack, api, form_run, "details")
        _waiting(stack, api, pay_run, "approve")

        browser_page.goto(f"{stack.url}/ui/#/inbox")
        form = browser_page.locator(f'[data-wait="{form_run}/details"]')
        approval = browser_page.locator(f'[data-wait="{pay_run}/approve"]')
        form.wait_for()
        assert "Shipping details for order IN-1" in form.inner_text()
        assert "ops@example.com" in form.inner_text()
        text = approval.inner_text()
        assert "Pay 75 EUR?" in text and "every 4h" in text and "cfo@example.com" in text
        assert approval.locator('li[data-done="false"]').count() == 2  # no escalation yet

        # A refused answer is shown with its problems and not sent.
        form.locator("textarea[name=answer]").fill('{"carrier": "fedex", "boxes": 0}')
        form.locator("[data-action=answer]").click()
        form.locator("[data-confirm=answer]").click()
        refused = form.locator(".result.error")
        refused.wait_for()
        assert "carrier" in refused.inner_text() and "boxes" in refused.inner_text()
        assert api.run(form_run)["run"]["status"] == "waiting"

        form.locator("textarea[name=answer]").fill('{"carrier": "dhl", "boxes": 3}')
        form.locator("[data-action=answer]").click()
        form.locator("[data-confirm=answer]").click()
        form.locator(".result.ok").wait_for()
        assert "step details answered" in form.inner_text()

        approval.locator("input[name=comment]").fill("paid by hand")
        approval.locator("[data-action=approve]").click()
        approval.locator("[data-confirm=approve]").click()
        approval.locator(".result.ok").wait_for()

    assert stack.run_until(
        lambda: (
            api.run(form_run)["run"]["status"] == "succeeded"
            and api.run(pay_run)["run"]["status"] == "succeeded"
        ),
        30,
    )
    details = next(s for s in api.run(form_run)["steps"] if s["key"] == "details")
    assert details["output"] == {"carrier": "dhl", "boxes": 3}
    answered = next(e for e in api.timeline(form_run) if e["type"] == "step_answered")
    approved = next(e for e in api.timeline(pay_run) if e["type"] == "step_approved")
    assert answered["data"]["operator"] is True and approved["data"]["operator"] is True
    assert "paid by hand" in approved["message"]
    # Both left the inbox with the writes that ended them.
    browser_page.wait_for_selector(f'[data-wait="{form_run}/details"]', state="detached")
    browser_page.wait_for_selector(f'[data-wait="{pay_run}/approve"]', state="detached")
    guard.check()
