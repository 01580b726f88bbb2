"""Reserve every line of an order in one fan-out the engine counts (tests of ctx.for_each)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, MapFailed, workflow


@workflow(name="wide-reserve")
def wide_reserve(ctx: Context, order: dict[str, Any]) -> dict[str, Any]:
    """One ReserveItemFunction invocation per line; report the lines that could not be."""
    try:
        reservations = ctx.for_each(
            "reserve",
            function="ReserveItemFunction",
            items=order["lines"],
            max_concurrency=order.get("max_concurrency", 10),
            tolerated_failures=order.get("tolerated", 0),
        )
    except MapFailed as failed:
        lines = sorted(failed.errors)
        ctx.notify(
            "shortfall",
            detail_type="order.shortfall",
            detail={"order_id": order["order_id"], "lines": lines},
        )
        return {
            "reserved": False,
            "failed": lines,
            "errors": [failed.errors[i].error_type for i in lines],
            "done": sum(r is not None for r in failed.results),
        }
    return {"reserved": True, "reservations": reservations}
