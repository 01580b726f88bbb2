"""Wait for the order's payment, unless the order is cancelled (tests of cancel_on)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow

BY_ORDER = {"event": "detail.order_id", "equals": "${input.order_id}"}


@workflow(
    name="await-payment-code",
    cancel_on=[{"source": "orders", "detail_type": "order.cancelled", "correlate": BY_ORDER}],
)
def await_payment(ctx: Context, input: dict[str, Any]) -> Any:
    """The payment event of the order."""
    return ctx.wait_for_event(
        "settled",
        source="payments",
        detail_type="payment.settled",
        correlate=BY_ORDER,
        timeout="2d",
    )
