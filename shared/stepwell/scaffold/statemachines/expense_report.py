"""A code-first workflow: plain Python over a durable Context (docs: code-first).

Every ``ctx`` call is a step whose result is stored; the function is replayed from the top
whenever a step ends, and finished steps return their stored results.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="expense-report", timeout="7d")
def expense_report(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Check every claim of a report; a manager approves the report when a claim needs it."""
    checked = [
        ctx.task(f"check-{index}", function="CheckExpenseFunction", input=claim)
        for index, claim in enumerate(input["claims"])
    ]
    total = round(sum(claim["amount"] for claim in checked), 2)
    if any(claim["needs_approval"] for claim in checked):
        decision = ctx.approval("approve", approvers=["manager@example.com"], timeout="3d")
        if not decision.approved:
            return {"approved": False, "total": total}
    return {"approved": True, "total": total}
