"""The dashboard in headless Chromium against the local stack: a person starts an order,
watches it, approves it from the run page and sees it finish; retries a failed step and sees
the run resume; and every page stays on 127.0.0.1 with no error in the console.

Page-load times are printed (``pytest tests/browser -s``). With ``STEPWELL_SCREENSHOTS=1`` the
runs list and a run page are saved to docs/ as PNG.
"""

from __future__ import annotations

import json
import time
from datetime import timedelta
from typing import Any

from browser_helpers import EXAMPLES, ORDER, Guard, node, screenshot

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

LOADS: dict[str, float] = {}


def timed(name: str, page: Any, url: str, ready: str) -> None:
    """Open ``url`` and wait until ``ready`` shows; note how long it took."""
    started = time.perf_counter()
    page.goto(url)
    page.wait_for_selector(ready)
    LOADS[name] = (time.perf_counter() - started) * 1000
    print(f"page load: {name}: {LOADS[name]:.0f} ms")


def test_start_an_order_watch_it_approve_it_and_see_it_finish(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    requests: list[str] = []
    browser_page.on("request", lambda request: requests.append(request.url))
    timed("runs list", browser_page, f"{stack.url}/", "table.runs")
    assert browser_page.url == f"{stack.url}/ui/"

    timed(
        "workflow",
        browser_page,
        f"{stack.url}/ui/#/workflows/order-fulfilment",
        "form.start textarea[name=input]",
    )
    # The browser checks the input against input_schema before anything is sent.
    bad = {"order_id": "o-1", "customer": "not-an-email", "items": []}
    browser_page.fill("textarea[name=input]", json.dumps(bad))
    browser_page.click("[data-action=start]")
    refused = browser_page.locator("#start-result")
    refused.wait_for()
    assert "/customer" in refused.inner_text() and "/items" in refused.inner_text()
    assert not any(url.endswith("/workflows/order-fulfilment/runs") for url in requests)

    browser_page.fill("textarea[name=input]", ORDER.read_text())
    browser_page.fill("input[name=labels]", "team=shop")
    browser_page.click("[data-action=start]")
    browser_page.wait_for_url("**/ui/#/runs/*")
    run_id = browser_page.url.rsplit("/", 1)[-1]

    # The graph turns green step by step; the run then waits for finance.
    browser_page.wait_for_selector(node("validate", "succeeded"))
    browser_page.wait_for_selector(node("reserve", "succeeded"))
    browser_page.wait_for_selector(node("approve", "waiting"))
    assert browser_page.locator(node("charge", "succeeded")).count() == 0
    progress = (
        browser_page.locator('g.node[data-step="reserve"] text.progress').text_content() or ""
    )
    assert progress.startswith("3/3 done")

    # The fan-out's children are read only when asked for, a page at a time.
    assert not any("/children" in url for url in requests)
    browser_page.click('g.node[data-step="reserve"]')
    browser_page.click('[data-more="reserve"]')
    browser_page.wait_for_selector('tr[data-child="reserve[2]"]')
    assert [u for u in requests if "/children" in u] == [
        f"{stack.url}/runs/{run_id}/steps/reserve/children?limit=50"
    ]

    started = time.perf_counter()
    browser_page.goto(f"{stack.url}/ui/#/runs")
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    browser_page.wait_for_selector('[data-panel="approve"] [data-action=approve]')
    LOADS["run page"] = (time.perf_counter() - started) * 1000
    print(f"page load: run page: {LOADS['run page']:.0f} ms")
    screenshot(browser_page, "dashboard-run-waiting.png")
    browser_page.fill('[data-panel="approve"] input[name=comment]', "fine by finance")
    browser_page.click('[data-panel="approve"] [data-action=approve]')
    browser_page.click('[data-panel="approve"] [data-confirm=approve]')
    notice = browser_page.locator("[data-notice]")
    notice.wait_for()
    assert "step approve approved" in notice.inner_text()

    browser_page.wait_for_selector('#run-status [data-status="succeeded"]')
    statuses = browser_page.locator("svg.graph g.node").evaluate_all(
        "nodes => nodes.map(n => n.dataset.status)"
    )
    assert statuses == ["succeeded"] * 7
    approved = browser_page.locator('tr[data-type="step_approved"]').inner_text()
    assert "(operator): fine by finance" in approved
    screenshot(browser_page, "dashboard-run.png")

    timed("runs list", browser_page, f"{stack.url}/ui/#/runs", f'tr[data-run="{run_id}"]')
    row = browser_page.locator(f'tr[data-run="{run_id}"]').inner_text()
    assert "order-fulfilment" in row and "succeeded" in row.lower() and "team=shop" in row
    screenshot(browser_page, "dashboard-runs.png")
    guard.check()


def test_retry_a_failed_step_and_see_the_run_resume(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("flaky-charge", json.loads(ORDER.read_text())).body["run_id"]
    assert stack.run_until(lambda: api.run(run_id)["run"]["status"] == "failed", 30)

    timed("runs list (failed)", browser_page, f"{stack.url}/ui/#/runs?status=failed", "table.runs")
    browser_page.click(f'tr[data-run="{run_id}"] a.mono')
    browser_page.wait_for_selector(node("charge", "failed"))
    assert browser_page.locator(node("receipt", "succeeded")).count() == 0

    # A rerun whose new input breaks the schema: the API's 422 shows beside the control.
    guard.expect(422)
    browser_page.fill('[data-panel="charge"] textarea[name=rerun-input]', '{"order_id": "x"}')
    browser_page.click('[data-panel="charge"] [data-action=rerun]')
    browser_page.click('[data-panel="charge"] [data-confirm=rerun]')
    refusal = browser_page.locator('[data-control="rerun"] .result.error')
    refusal.wait_for()
    assert refusal.inner_text().startswith("422: ") and "input_schema" in refusal.inner_text()

    browser_page.click('[data-panel="charge"] [data-action=retry]')
    browser_page.click('[data-panel="charge"] [data-confirm=retry]')
    browser_page.locator("[data-notice]").wait_for()
    assert "step charge retried" in browser_page.locator("[data-notice]").inner_text()
    browser_page.wait_for_selector('#run-status [data-status="succeeded"]')
    browser_page.wait_for_selector(node("charge", "succeeded"))
    browser_page.wait_for_selector(node("receipt", "succeeded"))
    charge = browser_page.locator('g.node[data-step="charge"]').text_content() or ""
    assert "attempt 2" in charge
    resumed = browser_page.locator('tr[data-type="run_status"]', has_text="retry of charge")
    assert resumed.count() == 1
    guard.check()


def test_the_start_form_begins_with_the_workflows_example_input(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    timed("workflow (form)", browser_page, f"{stack.url}/ui/#/workflows/checkout", "form.start")
    shown = browser_page.input_value("form.start textarea[name=input]")
    assert json.loads(shown) == json.loads((EXAMPLES / "checkout.json").read_text())
    # Started as it is, it is accepted: the example matches the workflow's input_schema.
    browser_page.click("[data-action=start]")
    browser_page.wait_for_url("**/ui/#/runs/*")
    run_id = browser_page.url.rsplit("/", 1)[-1]
    assert Client(stack.url).run(run_id)["run"]["input"]["card"] == "4242 4242 4242 4242"
    guard.check()


def test_a_run_started_later_from_the_form_waits_scheduled(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, _ = page
    api = Client(stack.url)
    with stack.hold():  # its time must not come while the page is looked at
        browser_page.goto(f"{stack.url}/ui/#/workflows/publish-report")
        browser_page.wait_for_selector("form.start input[name=start_at]")
        browser_page.fill("textarea[name=input]", (EXAMPLES / "publish-report.json").read_text())
        later = stack.clock.now() + timedelta(days=2)
        # The browser's zone is the machine's: give the field that zone's wall time.
        local = later.astimezone().strftime("%Y-%m-%dT%H:%M")
        browser_page.fill("input[name=start_at]", local)
        browser_page.click("[data-action=start]")
        browser_page.wait_for_url("**/ui/#/runs/*")
        run_id = browser_page.url.rsplit("/", 1)[-1]
        browser_page.wait_for_selector('#run-status [data-status="scheduled"]')
        assert api.run(run_id)["run"]["status"] == "scheduled"
        assert api.post(f"/runs/{run_id}/cancel", {}).ok


def test_the_start_form_sends_a_priority(stack: LocalStack, page: tuple[Any, Guard]) -> None:
    browser_page, guard = page
    browser_page.goto(f"{stack.url}/ui/#/workflows/publish-report")
    browser_page.wait_for_selector("form.start input[name=priority]")
    browser_page.fill("textarea[name=input]", (EXAMPLES / "publish-report.json").read_text())
    browser_page.fill("input[name=priority]", "7")
    with browser_page.expect_request(
        lambda r: r.method == "POST" and r.url.endswith("/workflows/publish-report/runs")
    ) as sent:
        browser_page.click("[data-action=start]")
    assert json.loads(sent.value.post_data or "{}")["priority"] == 7
    browser_page.wait_for_url("**/ui/#/runs/*")
    guard.check()
