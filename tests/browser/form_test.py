"""An input step's form link in a real browser: the form rendered from its JSON Schema, every
problem of a refused answer shown at once with nothing recorded, and the answer recorded as the
step's output (a second use of the link is the API tests' and the tamper suite's)."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from browser_helpers import Guard

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def _form_url(stack: LocalStack, run_id: str) -> str:
    found = stack.wait_for_event(
        lambda e: e["detail-type"] == "input.requested" and e["detail"]["run_id"] == run_id
    )
    assert found is not None, f"no form link for {run_id}: {stack.time_status()}"
    (link,) = found["detail"]["links"]
    assert link["assignee"] == "ops@example.com"
    return f"{stack.url}{urlsplit(link['form_url']).path}"


def _details(api: Client, run_id: str) -> dict[str, Any]:
    return next(s for s in api.run(run_id, payloads=True)["steps"] if s["key"] == "details")


def test_a_person_fills_in_the_form_and_its_answer_is_the_steps_output(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    guard.expect(422)
    api = Client(stack.url)
    run_id = api.start_run("shipping-form", {"order_id": "B-7"}).body["run_id"]
    url = _form_url(stack, run_id)

    browser_page.goto(url)
    assert "Shipping details for order B-7" in browser_page.inner_text("p.ask")
    assert browser_page.locator("select#f-carrier option").all_inner_texts() == [
        "(choose)",
        "ups",
        "dhl",
    ]
    assert browser_page.get_attribute("input#f-boxes", "type") == "number"
    assert browser_page.get_attribute("input#f-fragile", "type") == "checkbox"
    assert "For the driver" in browser_page.inner_text("form")
    # No carrier chosen and too few boxes: both problems come back at once.
    browser_page.fill("input#f-boxes", "0")
    browser_page.fill("input#f-note", "ring twice")
    browser_page.click("button[type=submit]")
    problems = browser_page.locator(".problems li").all_inner_texts()
    assert problems == [
        "/: 'carrier' is a required property",
        "/boxes: 0 is less than the minimum of 1",
    ]
    # What was sent is kept.
    assert browser_page.input_value("input#f-boxes") == "0"
    assert browser_page.input_value("input#f-note") == "ring twice"
    assert _details(api, run_id)["status"] == "waiting"

    browser_page.select_option("select#f-carrier", label="dhl")
    browser_page.fill("input#f-boxes", "3")
    browser_page.check("input#f-fragile")
    browser_page.click("button[type=submit]")
    assert "Thank you" in browser_page.inner_text("h1")
    assert stack.run_until(lambda: _details(api, run_id)["status"] == "succeeded", 30)
    output = _details(api, run_id)["output"]
    assert output == {"carrier": "dhl", "boxes": 3, "fragile": True, "note": "ring twice"}
    guard.check()
