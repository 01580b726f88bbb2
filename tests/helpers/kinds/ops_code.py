"""ops.yaml written as code: validate, approve, confirm by callback, cool off, charge."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="ops-code")
def ops_code(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """Validate, approve, confirm, cool off, charge (no retries)."""
    validated = ctx.task("validate", function="ValidateOrderFunction", input=order)
    decision = ctx.approval("approve", message=f"Charge {validated['total']:g}?", timeout="30d")
    if not decision.approved:
        raise OrderRejected(f"order {order['order_id']} was not approved")
    confirmation = ctx.wait_for_callback("confirm", timeout="30d")
    ctx.sleep("cool_off", "1h")
    charge = ctx.task(
        "charge",
        function="ChargeCardFunction",
        input={
            "order_id": order["order_id"],
            "customer": order["customer"],
            "amount": validated["total"],
        },
    )
    return {"charge_id": charge["charge_id"], "confirmation": confirmation}


class OrderRejected(Exception):
    """Nobody approved the charge."""
