"""The checkout written as code: the twin of checkout.yaml.

Reserve the order's lines, then charge the card. When the charge fails (after its retries), give
the stock back and tell the customer: the compensation is an ``except`` around the step. When it
succeeds, confirm the order.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, StepFailed, workflow


@workflow(name="checkout-code")
def checkout(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """Reserve, charge; on a failed charge release the reservations and tell the customer."""

    def reserve(item_ctx: Context, line: dict[str, Any]) -> Any:
        return item_ctx.task(
            "reserve",
            function="ReserveItemFunction",
            input={"order_id": order["order_id"], "sku": line["sku"], "qty": line["qty"]},
        )

    reservations = ctx.map("reserve", order["items"], reserve)
    try:
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
    except StepFailed as failed:

        def release(item_ctx: Context, reservation: dict[str, Any]) -> Any:
            return item_ctx.notify(
                "release",
                detail_type="warehouse.release_requested",
                detail={
                    "order_id": order["order_id"],
                    "reservation_id": reservation["reservation_id"],
                },
            )

        released = ctx.map("release", reservations, release)
        ctx.notify(
            "tell_customer",
            detail_type="order.payment_failed",
            detail={
                "order_id": order["order_id"],
                "customer": order["customer"],
                "reason": failed.message,
            },
        )
        return {
            "order_id": order["order_id"],
            "paid": False,
            "charge_id": None,
            "error": failed.error_type,
            "released": len(released),
        }
    ctx.notify(
        "confirm",
        detail_type="order.confirmed",
        detail={"order_id": order["order_id"], "charge_id": charge["charge_id"]},
    )
    return {
        "order_id": order["order_id"],
        "paid": True,
        "charge_id": charge["charge_id"],
        "error": None,
        "released": 0,
    }
