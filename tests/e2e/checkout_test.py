"""The checkout example, as YAML and as code, through the local stack: a declined card is
caught, the reservations are released and the customer told; a good card is confirmed."""

from __future__ import annotations

from typing import Any

import pytest
from e2e_helpers import finished, steps_of, timeline_types

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

ORDER = {
    "customer": "ada@example.com",
    "card": "4242 4242 4242 4242",
    "items": [
        {"sku": "KEYBOARD", "qty": 1, "price": 120.0},
        {"sku": "CABLE", "qty": 3, "price": 9.5},
    ],
}
DECLINED = "4000 0000 0000 0002"


def events_of(stack: LocalStack, detail_type: str, order_id: str) -> list[dict[str, Any]]:
    return [e for e in stack.events(detail_type) if e["detail"]["order_id"] == order_id]


@pytest.mark.parametrize("workflow", ["checkout", "checkout-code"])
def test_a_declined_card_releases_the_stock_and_tells_the_customer(
    stack: LocalStack, api: Client, workflow: str
) -> None:
    order = {**ORDER, "order_id": f"{workflow}-declined", "card": DECLINED}
    started = api.start_run(workflow, order)
    assert started.status == 201, started.text
    detail = finished(stack, api, started.body["run_id"])
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run  # the failure was handled: the run went on
    assert run["output"]["paid"] is False and run["output"]["error"] == "CardDeclined"
    assert run["output"]["released"] == 2
    assert steps["charge"]["status"] == "failed" and steps["charge"]["attempt"] == 1
    released = events_of(stack, "warehouse.release_requested", order["order_id"])
    assert len(released) == 2
    (told,) = events_of(stack, "order.payment_failed", order["order_id"])
    assert "declined" in told["detail"]["reason"]
    assert not events_of(stack, "order.confirmed", order["order_id"])
    if workflow == "checkout":
        assert "failure_handled" in timeline_types(api, run["id"])
        assert steps["confirm"]["status"] == "skipped"


@pytest.mark.parametrize("workflow", ["checkout", "checkout-code"])
def test_a_good_card_is_charged_and_confirmed_without_compensation(
    stack: LocalStack, api: Client, workflow: str
) -> None:
    order = {**ORDER, "order_id": f"{workflow}-paid"}
    detail = finished(stack, api, api.start_run(workflow, order).body["run_id"])
    run = detail["run"]
    assert run["status"] == "succeeded", run
    assert run["output"]["paid"] is True and run["output"]["charge_id"].startswith("ch-")
    assert run["output"]["released"] == 0
    assert len(events_of(stack, "order.confirmed", order["order_id"])) == 1
    assert not events_of(stack, "warehouse.release_requested", order["order_id"])
