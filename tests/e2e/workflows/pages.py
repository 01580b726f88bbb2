"""A loop that goes on in a new run every few pages (tests of ctx.continue_as_new)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="pages")
def pages(ctx: Context, state: dict[str, Any]) -> dict[str, Any]:
    """Count pages; after two in one run, continue as new with the count so far."""
    count = int(state.get("count", 0))
    for _ in range(2):
        if count >= state["pages"]:
            return {"pages": count}
        ctx.notify("page", detail_type="page.read", detail={"page": count})
        count += 1
    ctx.continue_as_new({**state, "count": count})
