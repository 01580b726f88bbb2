"""An operator in the dashboard on every kind of run: a code-first run and a Step Functions
machine are approved, answered and retried from the run page as a YAML run is (their steps are
the records their code reached; the replay's own record, $workflow, is no step to show); and a
skip says first which steps it skips, beside skipping with an output that runs them."""

from __future__ import annotations

import json
from typing import Any

from browser_helpers import ORDER, Guard, node, screenshot

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def _open_when(stack: LocalStack, api: Client, workflow: str, waits_at: str) -> str:
    run_id = api.start_run(workflow, json.loads(ORDER.read_text())).body["run_id"]
    _waiting(stack, api, run_id, waits_at)
    return run_id


def _waiting(stack: LocalStack, api: Client, run_id: str, key: str) -> None:
    _until(stack, api, run_id, key, lambda step: bool(step.get("waiting_for")))


def _until(stack: LocalStack, api: Client, run_id: str, key: str, holds: Any) -> None:
    """Wait until step ``key`` of the run ``holds``; else fail saying where the run is."""
    steps = lambda: {s["key"]: s for s in api.run(run_id)["steps"]}  # noqa: E731
    if stack.run_until(lambda: holds(steps().get(key, {})), 30):
        return
    seen = {k: (s["status"], s["waiting_for"]) for k, s in steps().items()}
    last = [(e["at"], e["type"], e["step"], e["message"][:60]) for e in api.timeline(run_id)[-8:]]
    raise AssertionError(
        f"{key} of run {run_id}: steps {seen}; timeline {last}; {stack.time_status()}"
    )


def _act(page: Any, step: str, action: str) -> None:
    panel = f'[data-panel="{step}"]'
    page.click(f"{panel} [data-action={action}]")
    page.click(f"{panel} [data-confirm={action}]")
    page.locator("[data-notice]").wait_for()


def test_a_code_first_run_is_approved_answered_and_retried_from_its_page(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = _open_when(stack, api, "ops-code", "approve")
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    browser_page.wait_for_selector(node("approve", "waiting"))
    assert browser_page.locator('g.node[data-step="$workflow"]').count() == 0
    assert "waits for an approval" in browser_page.inner_text('[data-why="approve"]')

    _act(browser_page, "approve", "approve")
    assert "step approve approved" in browser_page.inner_text("[data-notice]")
    _waiting(stack, api, run_id, "confirm")
    browser_page.wait_for_selector(node("confirm", "waiting"))
    browser_page.click('g.node[data-step="confirm"]')
    browser_page.fill('[data-panel="confirm"] textarea[name=output]', '{"by": "partner"}')
    _act(browser_page, "confirm", "callback-success")
    # The delay passes (virtual time); the charge's first attempt is declined and, with no
    # retries, fails the run: the operator retries the step.
    browser_page.wait_for_selector(node("charge", "failed"))
    browser_page.wait_for_selector('#run-status [data-status="failed"]')
    browser_page.click('g.node[data-step="charge"]')
    _act(browser_page, "charge", "retry")
    _until(stack, api, run_id, "charge", lambda step: step.get("status") == "succeeded")
    browser_page.wait_for_selector('#run-status [data-status="succeeded"]')
    charge = browser_page.locator('g.node[data-step="charge"]').text_content() or ""
    assert "attempt 2" in charge
    guard.check()


def test_a_machine_s_task_token_is_answered_and_its_state_retried_from_its_page(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = _open_when(stack, api, "ops-machine", "Confirm token")
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}")
    # The state is one node; the panel opens the record that waits, its task token's.
    browser_page.wait_for_selector(node("Confirm", "waiting"))
    browser_page.wait_for_selector('[data-panel="Confirm token"] [data-action=callback-success]')
    assert browser_page.locator('[data-panel="Confirm token"] [data-action=approve]').count() == 0
    _act(browser_page, "Confirm token", "callback-success")
    browser_page.wait_for_selector('#run-status [data-status="failed"]')
    browser_page.click('g.node[data-step="Charge"]')
    _act(browser_page, "Charge", "retry")
    _until(stack, api, run_id, "Charge", lambda step: step.get("status") == "succeeded")
    browser_page.wait_for_selector('#run-status [data-status="succeeded"]')
    for state in ("Validate", "Confirm", "Cool off", "Charge"):
        browser_page.wait_for_selector(node(state, "succeeded"))
    # The catch route the run did not take, to a state it never reached.
    browser_page.wait_for_selector(node("Declined", "unreached"))
    catch = browser_page.locator('path.edge[data-edge="Charge->Declined"]')
    assert catch.get_attribute("data-kind") == "catch"
    browser_page.click('g.node[data-step="Charge"]')
    browser_page.wait_for_selector('[data-panel="Charge"]')
    screenshot(browser_page, "dashboard-machine.png")
    guard.check()


def test_a_skip_says_which_steps_it_skips_and_skipping_with_an_output_runs_them(
    stack: LocalStack, page: tuple[Any, Guard]
) -> None:
    browser_page, guard = page
    api = Client(stack.url)
    run_id = _open_when(stack, api, "ops", "approve")
    api.post(f"/runs/{run_id}/steps/approve/decision", {"approved": True})
    _waiting(stack, api, run_id, "confirm")
    browser_page.goto(f"{stack.url}/ui/#/runs/{run_id}?step=confirm")
    panel = '[data-panel="confirm"]'
    try:
        browser_page.wait_for_selector(f"{panel} [data-action=skip]")
    except Exception:
        _waiting(stack, api, run_id, "confirm")  # says why, when the run moved on
        raise
    browser_page.click(f"{panel} [data-action=skip]")
    question = browser_page.locator('[data-question="skip"]')
    question.wait_for()
    assert question.inner_text() == (
        "Skipping confirm also skips cool_off, charge (give an output to run what follows)."
    )
    browser_page.click('[data-control="skip"] .confirm button:has-text("Cancel")')

    browser_page.fill(f"{panel} textarea[name=skip-output]", '{"confirmed": "by phone"}')
    browser_page.click(f"{panel} [data-action=skip-output]")
    asked = browser_page.locator('[data-question="skip-output"]')
    asked.wait_for()
    assert "with this output: it succeeds with it, and what follows runs" in asked.inner_text()
    browser_page.click(f"{panel} [data-confirm=skip-output]")
    _until(stack, api, run_id, "charge", lambda step: step.get("status") == "failed")
    browser_page.wait_for_selector(node("charge", "failed"))  # it ran (and was declined)
    assert api.run(run_id)["steps"][3]["status"] == "succeeded"  # cool_off ran too
    guard.check()
