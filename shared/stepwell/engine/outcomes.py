"""How a step ends: succeeded, skipped or failed for good.

An outcome records the end on the step (and the timeline, and the bus for a failure); what the
end means for the run (a fan-out's count, a compensation's next, the dependents, the replay, the
run's end) is settled in one place, the engine's core, through :meth:`Work.ended`.
"""

from __future__ import annotations

import json
from typing import Any

from stepwell.engine.commands import EmitEvent
from stepwell.engine.decision import Work
from stepwell.engine.state import StepState, Usage, error_text


def succeed(work: Work, step: StepState, output: Any, usage: Usage | None = None) -> None:
    """The step succeeded with ``output``."""
    step.output = output
    step.error = None
    work.add_usage(step, usage)
    _finish(work, step, "succeeded")
    if not step.dry_run:
        work.note("step_completed", step, data_summary(output))
    work.ended(step)


def dry_run(work: Work, step: StepState, kind: str) -> None:
    """A dry run's step: recorded as succeeded (no output), not run."""
    step.dry_run = True
    work.note("step_dry_run", step, f"dry run: {kind} step recorded, not run")
    succeed(work, step, None)


def skip(work: Work, step: StepState, reason: str, output: Any = None) -> None:
    """The step will not run; dependents see it as skipped."""
    step.output = output
    _finish(work, step, "skipped")
    work.note("step_skipped", step, reason)
    work.ended(step)


def fail_step(
    work: Work, step: StepState, error_type: str | None, message: str, **details: Any
) -> None:
    """The step failed for good (no retry left); ``details`` go on its error (the event on the
    bus carries the type and message alone). A failure may have no name (``error_type``
    None), as a Step Functions ``Fail`` state without ``Error`` ends its execution."""
    step.error = {"type": error_type, "message": message, **details}
    _finish(work, step, "failed")
    work.note("step_failed", step, error_text(step.error), error=error_type)
    work.emit(
        EmitEvent(
            "step.failed",
            {
                "run_id": work.run.id,
                "workflow": work.run.workflow,
                "step": step.key,
                "attempt": step.attempt,
                "error": {"type": error_type, "message": message},
            },
        )
    )
    work.ended(step)


def _finish(work: Work, step: StepState, status: str) -> None:
    work.set_status(step, status)  # type: ignore[arg-type]
    step.ended_at = work.now
    step.due_at = None
    step.waiting_for = None
    step.heartbeat_due = None


def data_summary(value: Any, limit: int = 120) -> str:
    """A short, one-line rendering of a value for timeline messages."""
    if value is None:
        return ""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
