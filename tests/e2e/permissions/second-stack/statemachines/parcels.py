"""A code-first workflow of the second stack: its Workflows function replays it."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="second-stack-parcels")
def parcels(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Weigh every parcel of a shipment."""
    weights = [
        ctx.task(f"weigh-{parcel['id']}", function="WeighParcelFunction", input=parcel)
        for parcel in input["parcels"]
    ]
    return {"grams": sum(w["grams"] for w in weights)}
