"""Step functions of the data-pipeline and publish-report examples."""

from __future__ import annotations

import hashlib
from typing import Any

from stepwell import StepContext, step_handler


@step_handler
def extract(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Pretend to read rows from the source: a few deterministic rows per source."""
    seed = int(hashlib.sha256(request["source"].encode()).hexdigest(), 16)
    rows = [{"id": i, "value": (seed >> i) % 100} for i in range(5)]
    return {"rows": rows}


@step_handler
def clean(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Drop rows whose value is zero."""
    rows = [row for row in request["rows"] if row["value"]]
    return {"rows": rows, "count": len(rows)}


@step_handler
def enrich(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Name the fields a report will show."""
    return {"fields": sorted({key for row in request["rows"] for key in row})}


@step_handler
def render_report(request: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
    """Render a report and return its id."""
    return {"report_id": "rep-" + hashlib.sha256(ctx.idempotency_key.encode()).hexdigest()[:8]}


HANDLERS = {
    "ExtractFunction": extract,
    "CleanFunction": clean,
    "EnrichFunction": enrich,
    "RenderReportFunction": render_report,
}
