"""A child block and a fan-out with completion rules (tests of ctx.child and batch results)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="blocks")
def blocks(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """Validate in a block of its own, then reserve the lines as a batch: two are enough."""

    def check(block: Context) -> Any:
        summary = block.task("validate", function="ValidateOrderFunction", input=order)
        block.notify("validated", detail_type="order.validated", detail=summary)
        return summary

    summary = ctx.child("checks", check)

    def reserve(item_ctx: Context, line: dict[str, Any]) -> Any:
        return item_ctx.task(
            "reserve",
            function="ReserveItemFunction",
            input={"order_id": order["order_id"], "sku": line["sku"], "qty": line["qty"]},
        )

    batch = ctx.map("reserve", order["items"], reserve, min_successful=2, batch=True)
    return {
        "total": summary["total"],
        "reason": batch.completion_reason,
        "statuses": [o.status for o in batch.items],
    }
