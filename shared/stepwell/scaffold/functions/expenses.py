"""The app's step functions: each takes a step's input and a StepContext and returns JSON.

Raising an exception fails the attempt with the exception's type name, which a step's
``retry`` (``retry_on``, ``non_retryable``) and ``catch`` rules match.
"""

from __future__ import annotations

from typing import Any

from stepwell import StepContext, step_handler

APPROVAL_FROM = 100.0
"""Claims of this amount or more need a manager's approval."""


class InvalidClaim(Exception):
    """The claim cannot be paid as filed (not retried)."""

    retryable = False


@step_handler
def check_expense(claim: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Check one expense claim and say whether it needs approval."""
    amount = float(claim.get("amount", -1))
    if amount < 0:
        raise InvalidClaim(f"amount must be 0 or more, not {claim.get('amount')!r}")
    employee = str(claim.get("employee") or "").strip()
    if not employee:
        raise InvalidClaim("a claim names the employee who filed it")
    return {"employee": employee, "amount": amount, "needs_approval": amount >= APPROVAL_FROM}
