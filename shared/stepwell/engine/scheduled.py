"""Runs started ahead of time (``start_at``): ``scheduled`` until then, with the run's one timer
at that time. Nothing of the run but its record exists meanwhile, so a cancel ends it at once
and its start is the run's first run-level commit, like a run started then."""

from __future__ import annotations

from datetime import datetime, timedelta

from stepwell.engine.commands import ScheduleTimer
from stepwell.engine.decision import RUN_WATCH, Work
from stepwell.engine.run import end_run, let_go_of_debounce


def schedule(work: Work, start_at: datetime) -> None:
    """Note why the new run waits, and set its timer for ``start_at``."""
    work.note("run_scheduled", None, f"scheduled to start at {start_at.isoformat()}")
    work.emit(ScheduleTimer(work.run.id, None, start_at))


def due(work: Work) -> bool:
    """A scheduled run whose time has come."""
    run = work.run
    return run.status == "scheduled" and run.due_at is not None and run.due_at <= work.now


def begin(work: Work, timeout: timedelta | None) -> None:
    """A run that waited (scheduled, or queued for a slot) as a run started now: its timeout
    counted from now, its watch set."""
    run = work.touch_run()
    let_go_of_debounce(work)
    run.status = "running"
    run.started_at = work.now
    run.due_at = work.now + timeout if timeout else None
    run.watch_at = work.now + RUN_WATCH


def cancel(work: Work, reason: str) -> None:
    """A run cancelled before it started (scheduled or queued) never starts: it ends with
    nothing open."""
    end_run(work, "cancelled", {"type": "Cancelled", "message": reason})
