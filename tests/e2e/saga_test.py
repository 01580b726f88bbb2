"""The order saga, as YAML (``compensate:``) and as code (``ctx.saga()``), through the local
stack: when shipping fails, the charge is refunded and then the stock released (newest
first), and the run fails with the failure; when it ships, nothing is undone."""

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


def undo_order(api: Client, run_id: str) -> list[str]:
    """The compensations that were dispatched, in order."""
    return [
        e["step"]
        for e in api.timeline(run_id)
        if e["type"] == "step_dispatched" and e["step"] in COMPENSATIONS
    ]


COMPENSATIONS = {"charge:compensate", "reserve:compensate", "refund", "release_stock"}


@pytest.mark.parametrize("workflow", ["order-saga", "order-saga-code"])
def test_a_failed_shipment_refunds_then_releases_and_fails_the_run(
    stack: LocalStack, api: Client, workflow: str
) -> None:
    order = {**ORDER, "order_id": f"{workflow}-aq", "country": "AQ"}
    detail = finished(stack, api, api.start_run(workflow, order).body["run_id"])
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "failed", run
    assert run["error"]["type"] == ("NoCarrier" if workflow == "order-saga" else "StepFailed")
    assert "no carrier delivers to AQ" in run["error"]["message"]
    undone = undo_order(api, run["id"])
    if workflow == "order-saga":
        assert undone == ["charge:compensate", "reserve:compensate"]  # newest first
        assert run["error"]["compensation"]["status"] == "succeeded"
        refund = steps["charge:compensate"]
        assert refund["status"] == "succeeded"
        assert refund["input"] == {
            "charge_id": steps["charge"]["output"]["charge_id"],
            "amount": 148.5,
        }
        release = steps["reserve:compensate"]["output"]
        assert len(release["released"]) == 2
        types = timeline_types(api, run["id"])
        assert types.index("run_compensating") < types.index("compensation_ended")
    else:
        assert undone == ["refund", "release_stock"]
        assert steps["refund"]["status"] == steps["release_stock"]["status"] == "succeeded"
    (completed,) = [e for e in stack.events("run.completed") if e["detail"]["run_id"] == run["id"]]
    assert completed["detail"]["status"] == "failed"  # told on the bus, after the undoing


@pytest.mark.parametrize("workflow", ["order-saga", "order-saga-code"])
def test_a_shipped_order_undoes_nothing(stack: LocalStack, api: Client, workflow: str) -> None:
    order: dict[str, Any] = {**ORDER, "order_id": f"{workflow}-pt", "country": "PT"}
    detail = finished(stack, api, api.start_run(workflow, order).body["run_id"])
    assert detail["run"]["status"] == "succeeded", detail["run"]
    assert detail["run"]["output"]["tracking"].startswith("trk-")
    assert undo_order(api, detail["run"]["id"]) == []
