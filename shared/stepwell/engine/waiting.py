"""What the waits (approval, input, delay, callback) share: opening the wait as a fenced
attempt, whether a person's answer may be taken, and reading the time an ``until`` gives."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.engine.decision import Work, attempt_token
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.outcomes import fail_step
from stepwell.engine.state import StepState


def open_wait(work: Work, step: StepState) -> None:
    """Begin waiting, as a new attempt (a decision or signal names the attempt it answers)."""
    step.attempt += 1
    step.token = attempt_token(work.run, step.key, step.attempt)
    step.attempt_started_at = work.now
    work.set_status(step, "waiting")


LINK_USED = "this link has already been used"


def open_to(work: Work, event: ApprovalDecided, asked: str, verb: str) -> bool:
    """Whether the wait a person's ``event`` answers is open to it: the step waits for
    ``asked`` (approval, input) on the event's attempt and the event's link was not used.
    Else the reason is noted."""
    record = work.peek(event.key)
    if (
        record is None
        or record.waiting_for != asked
        or record.attempt != event.attempt
        or work.run.terminal
    ):
        what = "form" if asked == "input" else asked
        work.note(
            "decision_ignored",
            event.key,
            f"{verb} by {event.approver}: the {what} is not open",
            attempt=event.attempt,
        )
        return False
    if event.link is not None and any(d.get("link") == event.link for d in record.decisions):
        work.note("decision_ignored", event.key, LINK_USED, link=event.link)
        return False
    return True


def named(work: Work, event: ApprovalDecided, people: list[str], role: str) -> bool:
    """Whether the sender may answer: one of ``people``, none named, or an operator."""
    if people and event.approver not in people and not event.operator:
        work.note("decision_ignored", event.key, f"{event.approver} is not an {role}")
        return False
    return True


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
