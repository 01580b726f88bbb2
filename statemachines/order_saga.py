"""The order saga written as code: the twin of order-saga.yaml.

Reserve, charge, ship. Each step that succeeds adds its undo to the saga; should a later step
fail, ``ctx.saga()`` runs the undos newest first (refund, then release) and the failure goes on:
the run fails with it.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="order-saga-code")
def order_saga(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """Reserve, charge, ship; undo what succeeded when a step fails."""

    def reserve(item_ctx: Context, line: dict[str, Any]) -> Any:
        return item_ctx.task(
            "reserve",
            function="ReserveItemFunction",
            input={"order_id": order["order_id"], "sku": line["sku"], "qty": line["qty"]},
        )

    with ctx.saga() as saga:
        reservations = ctx.map("reserve", order["items"], reserve)
        saga.add(
            "release_stock",
            function="ReleaseStockFunction",
            input={"order_id": order["order_id"], "reservations": reservations},
        )
        charge = ctx.task(
            "charge",
            function="ChargeCardFunction",
            input={
                "order_id": order["order_id"],
                "customer": order["customer"],
                "card": order["card"],
                "amount": sum(line["qty"] * line["price"] for line in order["items"]),
            },
            retry={"max_attempts": 3, "interval": "1s", "retry_on": ["PaymentDeclinedTemporarily"]},
        )
        saga.add(
            "refund",
            function="RefundChargeFunction",
            input={"charge_id": charge["charge_id"], "amount": charge["amount"]},
            retry={"max_attempts": 5, "interval": "2s"},
        )
        shipment = ctx.task(
            "ship",
            function="ShipOrderFunction",
            input={"order_id": order["order_id"], "country": order["country"]},
        )
    return {
        "order_id": order["order_id"],
        "charge_id": charge["charge_id"],
        "tracking": shipment["tracking"],
    }
