"""A callback opened first and awaited later (tests of ctx.create_callback)."""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow


@workflow(name="callback-later")
def callback_later(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    """Open the wait, hand its URL to the exporter (an event here), then wait for the answer."""
    job = ctx.create_callback("export_done", timeout="2h")
    ctx.notify("start_export", detail_type="export.requested", detail={"callback": job.url})
    return {"report": job.result(), "url": job.url}
