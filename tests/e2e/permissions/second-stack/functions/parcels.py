"""The second stack's step function."""

from __future__ import annotations

from typing import Any

from stepwell import StepContext, step_handler


@step_handler
def weigh(parcel: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """A parcel's weight in grams."""
    return {"parcel": parcel["id"], "grams": 250 * int(parcel.get("items", 1))}
