"""The order workflow written as code: the twin of order-fulfilment.yaml.

Validate the order, reserve every line (five at a time), ask finance when the order is large,
charge the card with retries, wait a cool-off hour, then announce the order as fulfilled.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow

ORDER_SCHEMA = {
    "type": "object",
    "required": ["order_id", "customer", "items"],
    "properties": {
        "order_id": {"type": "string", "minLength": 1},
        "customer": {"type": "string", "format": "email"},
        "items": {
            "type": "array",
            "minItems": 1,
            "items": {
                "type": "object",
                "required": ["sku", "qty", "price"],
                "properties": {
                    "sku": {"type": "string"},
                    "qty": {"type": "integer", "minimum": 1},
                    "price": {"type": "number", "minimum": 0},
                },
            },
        },
    },
}


@workflow(name="order-fulfilment-code", input_schema=ORDER_SCHEMA, timeout="3d")
def order_fulfilment(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """Validate, reserve, approve large orders, charge, cool off, announce."""
    validated = ctx.task("validate", function="ValidateOrderFunction", input=order)

    def reserve(item_ctx: Context, line: dict[str, Any]) -> Any:
        return item_ctx.task(
            "reserve",
            function="ReserveItemFunction",
            input={"order_id": order["order_id"], "sku": line["sku"], "qty": line["qty"]},
            retry={"max_attempts": 3, "interval": "2s"},
        )

    reservations = ctx.map("reserve", order["items"], reserve, max_concurrency=5)

    if validated["total"] >= 1000:
        approval = ctx.approval(
            "approve",
            message=f"Order {order['order_id']} totals {validated['total']:g}; "
            "please approve the charge.",
            approvers=["finance@example.com"],
            timeout="2d",
            on_timeout="reject",
        )
        if not approval.approved:
            raise OrderRejected(f"finance did not approve order {order['order_id']}")

    charge = ctx.task(
        "charge",
        function="ChargeCardFunction",
        input={
            "order_id": order["order_id"],
            "customer": order["customer"],
            "amount": validated["total"],
        },
        retry={
            "max_attempts": 4,
            "interval": "1s",
            "backoff_rate": 2,
            "max_interval": "30s",
            "retry_on": ["PaymentDeclinedTemporarily", "StepTimedOut"],
        },
        timeout="30s",
    )
    ctx.sleep("cool_off", "1h")
    ctx.notify(
        "announce",
        detail_type="order.fulfilled",
        detail={
            "order_id": order["order_id"],
            "charge_id": charge["charge_id"],
            "reserved": len(reservations),
        },
    )
    return {
        "order_id": order["order_id"],
        "total": validated["total"],
        "charge_id": charge["charge_id"],
        "reservations": [r["reservation_id"] for r in reservations],
    }


class OrderRejected(Exception):
    """Finance rejected the charge (or let the approval expire)."""
