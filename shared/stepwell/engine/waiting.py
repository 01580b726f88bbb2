"""What the waits (approval, delay, callback) share: opening the wait as a fenced attempt, and
reading the time an ``until`` gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.engine.decision import Work, attempt_token
from stepwell.engine.outcomes import fail_step
from stepwell.engine.state import StepState


def open_wait(work: Work, step: StepState) -> None:
    """Begin waiting, as a new attempt (a decision or signal names the attempt it answers)."""
    step.attempt += 1
    step.token = attempt_token(work.run, step.key, step.attempt)
    step.attempt_started_at = work.now
    work.set_status(step, "waiting")


def time_of(work: Work, step: StepState, until: Any, data: dict[str, Any]) -> datetime | None:
    """The time an ``until`` gives (an ISO 8601 time with a zone, or an expression giving
    one); None once the step failed because it gives none."""
    try:
        value = expressions.render(until, data, work.now)
        found = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if found.tzinfo is None:
            raise ValueError("no timezone")
    except (ValueError, expressions.ExpressionError) as exc:
        fail_step(
            work,
            step,
            "InvalidUntil",
            f"step '{step.key}': until must give an ISO 8601 time with a zone ({exc})",
        )
        return None
    return found
