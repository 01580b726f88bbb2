"""Clean up when the run is cancelled (tests of RunCancelled)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, RunCancelled, workflow


@workflow(name="tidy-on-cancel")
def tidy_on_cancel(ctx: Context, _: Any) -> dict[str, Any]:
    """Wait a day; if cancelled meanwhile, say so on the bus before the run ends."""
    try:
        ctx.sleep("wait", "1d")
    except RunCancelled as cancelled:
        ctx.notify("tidy_up", detail_type="job.tidied", detail={"why": cancelled.reason})
        raise
    return {"waited": True}
