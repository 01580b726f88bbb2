"""The run page a user misses, in headless Chromium against the local stack: the whole graph
with the path taken, a fan-out's children by status, why a step waits, a step's log lines,
a new run with this input, relative times, a timeline paged and filtered; and the glitches
that are gone (a stray null, a machine labelled code-first, a page that stays clickable after
leaving it, a waterfall in half its panel)."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from typing import Any

import pytest
from browser_helpers import ORDER, Guard, node

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

WIDE = 120
"""Lines of the wide order: its reserve step fans out to 120 children, 5 at a time."""


@pytest.fixture(scope="module")
def wide(stack: LocalStack) -> Iterator[str]:
    """A finished order-fulfilment run of 120 lines (no approval: it costs under 1,000)."""
    order = {
        **json.loads(ORDER.read_text()),
        "items": [{"sku": f"SKU-{i}", "qty": 1, "price": 1.0} for i in range(WIDE)],
    }
    api = Client(stack.url)
    run_id: str = api.start_run("order-fulfilment", order).body["run_id"]
    assert stack.run_until(lambda: api.run(run_id)["run"]["status"] == "succeeded", 240)
    yield run_id


def test_the_whole_graph_shows_the_path_taken_and_greys_what_was_not_reached(
    stack: LocalStack, page: tuple[Any, Guard], wide: str
) -> None:
    browser_page, guard = page
    browser_page.goto(f"{stack.url}/ui/#/runs/{wide}")
    browser_page.wait_for_selector(node("announce", "succeeded"))
    browser_page.wait_for_selector(node("approve", "skipped"))  # its 'when' was false
    edges = browser_page.locator("svg.graph path.edge").count()
    assert edges >= 6 and browser_page.locator("path.edge.taken").count() == edges

    # A saga's compensations are part of its graph, drawn apart from its dependencies.
    browser_page.goto(f"{stack.url}/ui/#/workflows/order-saga")
    compensate = browser_page.locator('path.edge[data-edge="charge->charge:compensate"]')
    compensate.wait_for()
    assert compensate.get_attribute("data-kind") == "compensate"
    assert "edge-compensate" in (compensate.get_attribute("class") or "")
    guard.check()


def test_children_are_listed_by_status_a_page_at_a_time_each_with_its_attempts(
    stack: LocalStack, page: tuple[Any, Guard], wide: str
) -> None:
    browser_page, guard = page
    requests: list[str] = []
    browser_page.on("request", lambda request: requests.append(request.url))
    browser_page.goto(f"{stack.url}/ui/#/runs/{wide}?step=reserve")
    browser_page.click('[data-more="reserve"]')
    browser_page.wait_for_selector('tr[data-child="reserve[49]"]')
    assert browser_page.locator("tr[data-child]").count() == 50
    browser_page.click('[data-more="reserve"]')
    browser_page.wait_for_selector('tr[data-child="reserve[99]"]')
    browser_page.click('[data-filter="failed"]')
    browser_page.wait_for_selector('[data-children="reserve"] p[role=status]:has-text("0 failed")')
    assert browser_page.locator("tr[data-child]").count() == 0
    browser_page.click('[data-filter="succeeded"]')
    browser_page.wait_for_selector('tr[data-child="reserve[0]"][data-status="succeeded"]')
    browser_page.click('tr[data-child="reserve[7]"]')
    detail = browser_page.locator(".child-detail")
    detail.locator('[data-payload="output"]').wait_for()
    assert '"sku": "SKU-7"' in detail.locator('[data-payload="input"]').inner_text()
    assert "attempt" in detail.inner_text() and "reservation_id" in detail.inner_text()
    children = [u for u in requests if "/children" in u]
    assert all("limit=50" in u for u in children) and len(children) == 4
    guard.check()


def test_why_a_step_waits_its_logs_and_a_new_run_with_its_input(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("flaky-charge", json.loads(ORDER.read_text())).body["run_id"]
    assert stack.run_until(lambda: api.run(run_id)["run"]["status"] == "failed", 30)
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    browser_page.wait_for_selector(node("charge", "failed"))
    # The step's log lines, as its function logged them in this stack.
    browser_page.click('[data-panel="charge"] [data-action=logs]')
    lines = browser_page.locator('[data-logs="charge"] pre.log')
    lines.wait_for()
    assert "step attempt" in lines.inner_text()
    assert "local stack's memory" in browser_page.inner_text('[data-logs="charge"]')
    # Relative times, the moment itself on hover.
    started = browser_page.locator("dl.facts.wide time").first
    text = started.inner_text()
    assert (text == "just now" or text.endswith(" ago")) and started.get_attribute("title")

    # A new run with this input, edited before it starts.
    browser_page.click("[data-again] summary")
    box = browser_page.locator("[data-again] textarea[name=input]")
    assert json.loads(box.input_value()) == json.loads(ORDER.read_text())
    box.fill(json.dumps({**json.loads(ORDER.read_text()), "order_id": "o-again"}))
    browser_page.click("[data-again] [data-action=start]")
    browser_page.wait_for_url(lambda url: "/runs/" in url and run_id not in url)
    again = browser_page.url.rsplit("/", 1)[-1]
    assert api.run(again)["run"]["input"]["order_id"] == "o-again"
    guard.check()


def test_a_waiting_step_says_what_it_waits_for_and_until_when(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = api.start_run("ops", json.loads(ORDER.read_text())).body["run_id"]
    assert stack.run_until(lambda: api.run(run_id)["steps"][-1]["key"] == "approve", 30)
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    why = browser_page.locator('[data-why="approve"]')
    why.wait_for()
    # Its 30 days, give or take the moments the page took (by the stack's clock).
    assert re.match(
        r"Attempt 1 waits for an approval; due in (29 d 23 h|30 d 0 h)\.$", why.inner_text()
    )
    guard.check()


def test_the_timeline_shows_a_page_of_rows_and_filters_them(
    stack: LocalStack, page: tuple[Any, Guard], wide: str
) -> None:
    browser_page, guard = page
    browser_page.goto(f"{stack.url}/ui/#/runs/{wide}")
    rows = browser_page.locator("table.timeline tbody tr")
    browser_page.wait_for_selector("table.timeline tbody tr[data-type=run_status]")
    where = browser_page.inner_text("[data-rows]")
    total = int(where.split(" of ")[1])
    assert total > 2 * WIDE and 0 < rows.count() <= 50  # the newest page, not every entry
    assert int(where.split("\u2013")[1].split()[0]) == total
    browser_page.click("[data-page=earlier]")
    browser_page.wait_for_selector("[data-page=later]:not([disabled])")
    assert rows.count() == 50
    browser_page.fill("input[name=timeline-filter]", "charge retrying")
    browser_page.wait_for_selector("[data-rows]:has-text('1\u20131 of 1')")
    assert browser_page.locator("table.timeline tbody tr").get_attribute("data-type") == (
        "step_retrying"
    )
    guard.check()


def test_the_waterfall_takes_its_whole_panel(
    stack: LocalStack, page: tuple[Any, Guard], wide: str
) -> None:
    browser_page, guard = page
    browser_page.goto(f"{stack.url}/ui/#/runs/{wide}")
    browser_page.wait_for_selector("svg.waterfall")
    panel = browser_page.locator(".waterfall-panel").bounding_box()
    drawn = browser_page.locator("svg.waterfall").bounding_box()
    assert panel and drawn and drawn["width"] >= 0.95 * panel["width"]
    guard.check()


def test_the_glitches_are_gone(stack: LocalStack, page: tuple[Any, Guard], wide: str) -> None:
    browser_page, guard = page
    browser_page.goto(f"{stack.url}/ui/#/workflows")
    browser_page.wait_for_selector('tr[data-workflow="order-machine"]')
    assert "null" not in browser_page.inner_text("main")
    kinds = browser_page.locator("td[data-kind]").evaluate_all(
        "cells => Object.fromEntries("
        "cells.map(c => [c.parentElement.dataset.workflow, c.innerText]))"
    )
    assert kinds["order-machine"] == "Step Functions"
    assert kinds["order-fulfilment-code"] == "code-first"
    assert kinds["order-fulfilment"] == "YAML · 7 steps"
    browser_page.goto(f"{stack.url}/ui/#/workflows/order-machine")
    browser_page.wait_for_selector('g.node[data-step="Large order?"]')
    assert "null" not in browser_page.inner_text("main")

    # Leaving a run's page for another: until the next one shows, the first no longer answers.
    browser_page.goto(f"{stack.url}/ui/#/runs/{wide}")
    browser_page.wait_for_selector(node("announce", "succeeded"))
    held: list[Any] = []
    browser_page.route("**/runs?*", lambda route: held.append(route))  # noqa: PLW0108
    browser_page.evaluate("location.hash = '#/runs'")
    browser_page.wait_for_selector(".view.leaving")
    assert browser_page.locator(".view.leaving").evaluate("view => view.inert") is True
    for route in held:
        route.continue_()
    browser_page.unroute_all()
    browser_page.wait_for_selector("table.runs")
    guard.check()
