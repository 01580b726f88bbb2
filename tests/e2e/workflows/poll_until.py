"""Poll an outside status until it holds (tests of ctx.wait_for_condition)."""

from __future__ import annotations

import itertools
from typing import Any

from stepwell import Context, workflow

_CHECKS = itertools.count(1)
"""Stands for an outside system whose job is done at its third look."""


def job_status() -> dict[str, Any]:
    seen = next(_CHECKS)
    return {"state": "DONE" if seen % 3 == 0 else "RUNNING", "looked": seen}


@workflow(name="poll-until")
def poll_until(ctx: Context, _: Any) -> dict[str, Any]:
    """Wait for the job, checking every 30 s then a little less often."""
    status = ctx.wait_for_condition(
        "job_done", job_status, done=lambda s: s["state"] == "DONE", interval="30s", backoff=2
    )
    ctx.notify("report", detail_type="job.finished", detail=status)
    return status
