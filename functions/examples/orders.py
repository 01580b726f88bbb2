"""Step functions of the order-fulfilment, checkout and order-saga examples.

Each takes the step's input and a StepContext and returns JSON; raising an exception fails the
attempt with the exception's type name (which ``retry_on`` matches).
"""

from __future__ import annotations

import hashlib
from typing import Any

from stepwell import StepContext, step_handler


class InvalidOrder(Exception):
    """The order cannot be fulfilled as placed (not retried)."""


class PaymentDeclinedTemporarily(Exception):
    """The card issuer asked us to try again later (retried with backoff)."""


class CardDeclined(Exception):
    """The card issuer refused the charge for good (not retried: the checkout compensates)."""


class NoCarrier(Exception):
    """No carrier delivers to the address (not retried: the order is undone)."""

    retryable = False


UNSERVED_COUNTRIES = frozenset({"AQ"})
"""Countries no carrier serves (Antarctica): an order shipped there fails, and is undone."""

DECLINED_CARD = "4000000000000002"
"""A test card number the issuer always declines."""


@step_handler
def validate_order(order: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Check the lines and compute the total."""
    items = order.get("items") or []
    if not items:
        raise InvalidOrder("an order needs at least one item")
    for line in items:
        if line["qty"] > 100:
            raise InvalidOrder(f"{line['sku']}: at most 100 per order")
    total = round(sum(line["qty"] * line["price"] for line in items), 2)
    return {"order_id": order["order_id"], "total": total, "lines": len(items)}


@step_handler
def reserve_item(line: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Reserve one line in the warehouse; the reservation id is stable per order line."""
    digest = hashlib.sha256(f"{line['order_id']}:{line['sku']}".encode()).hexdigest()[:10]
    return {"sku": line["sku"], "qty": line["qty"], "reservation_id": f"res-{digest}"}


@step_handler
def charge_card(charge: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Charge the customer. The issuer declines the first attempt of every order "for now",
    which shows a retry with backoff, and the test card ``4000 0000 0000 0002`` for good; the
    idempotency key makes a repeated delivery harmless."""
    if str(charge.get("card", "")).replace(" ", "") == DECLINED_CARD:
        raise CardDeclined(f"card ending {DECLINED_CARD[-4:]} was declined by its issuer")
    if ctx.attempt == 1:
        raise PaymentDeclinedTemporarily("issuer asked to retry in a moment")
    charge_id = "ch-" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:12]
    return {"charge_id": charge_id, "amount": charge["amount"], "attempt": ctx.attempt}


@step_handler
def ship_order(shipment: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Hand the parcel to a carrier; some countries have none."""
    country = str(shipment.get("country", "")).upper()
    if country in UNSERVED_COUNTRIES:
        raise NoCarrier(f"no carrier delivers to {country}")
    tracking = "trk-" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:10]
    return {"tracking": tracking, "country": country}


DELIVERED_AFTER_CHECKS = 2
"""The carrier reports a parcel delivered on its second tracking check."""


@step_handler
def track_parcel(shipment: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Ask the carrier where the parcel is: the shipment, with one more check counted and
    whether it has been delivered (on the second check)."""
    checks = int(shipment.get("checks", 0)) + 1
    return {**shipment, "checks": checks, "delivered": checks >= DELIVERED_AFTER_CHECKS}


@step_handler
def refund_charge(refund: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Give a charge back (the compensation of charge_card); idempotent per charge."""
    refund_id = "re-" + hashlib.sha256(str(refund["charge_id"]).encode()).hexdigest()[:12]
    return {"refund_id": refund_id, "charge_id": refund["charge_id"], "amount": refund["amount"]}


@step_handler
def release_stock(release: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Give reserved stock back (the compensation of reserve_item), every reservation."""
    released = [r["reservation_id"] for r in release.get("reservations") or [] if r]
    return {"order_id": release["order_id"], "released": released}


HANDLERS = {
    "ValidateOrderFunction": validate_order,
    "ReserveItemFunction": reserve_item,
    "ChargeCardFunction": charge_card,
    "TrackParcelFunction": track_parcel,
    "ShipOrderFunction": ship_order,
    "RefundChargeFunction": refund_charge,
    "ReleaseStockFunction": release_stock,
}
