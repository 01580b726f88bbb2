"""A wait_for_condition of a code-first run: the replay runs its check; while the check is not
met, its one record waits for the time of the next check (each check updates it in place, so a
thousand checks are one record), and then wakes the replay to check again."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell.code.protocol import POLL, WORKFLOW_KEY, Checkpoint, Issue
from stepwell.definition.models import Step
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import FollowUp
from stepwell.engine.decision import Work
from stepwell.engine.events import DependencyEnded
from stepwell.engine.outcomes import data_summary
from stepwell.engine.state import StepState, error_text

waits = False
"""Counted as running, not waiting: the replay runs each check, so the run stays watched."""
inline = False


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Never called: the replay that reaches a check writes its record (:func:`reached`)."""
    raise TypeError(f"step {step.key!r}: a wait_for_condition is reached by a replay")


def reached(work: Work, issue: Issue, replay: int) -> None:
    """A wait_for_condition whose check is not met yet: its one record waits until the next
    check (each check updates it in place, so a thousand polls are one record)."""
    checks = int(issue.spec.get("checks", 1))
    known = work.peek(issue.key)
    if known is not None and (known.terminal or known.attempt >= checks):
        return  # a repeated answer, or a check already counted
    due = datetime.fromisoformat(str(issue.spec["next"]))
    step = work.step(issue.key)
    if step is None:
        step = StepState(
            key=issue.key,
            name=issue.name,
            spec={"type": POLL},
            position=issue.position,
            after=list(issue.after),
            started_at=work.now,
            created_seq=replay,
        )
        work.steps[issue.key] = step
    step.attempt = checks
    step.output = issue.input
    step.waiting_for = POLL
    step.timeout_at = due
    work.set_status(step, "waiting")
    set_timer(work, step, due)
    work.note(
        "condition_waiting",
        step,
        f"check {checks} not met; next at {due.isoformat()}",
        checks=checks,
    )


def ended(work: Work, checkpoint: Checkpoint) -> None:
    """A wait_for_condition's check was met (or its time ran out): its record ends."""
    step = work.step(checkpoint.key)
    assert step is not None
    step.output = checkpoint.output
    step.error = checkpoint.error
    step.waiting_for = None
    step.due_at = None
    step.timeout_at = None
    step.ended_at = work.now
    work.set_status(step, checkpoint.status)
    if checkpoint.status == "succeeded":
        work.note("step_completed", step, data_summary(checkpoint.output), inline=True)
    else:
        error = checkpoint.error or {}
        work.note("step_failed", step, error_text(error), error=error.get("type"), inline=True)


def on_timer(work: Work, step: StepState) -> None:
    """The time of the next check came: the replay checks again."""
    step.waiting_for = "poll_due"
    step.due_at = None
    work.emit(FollowUp(work.run.id, DependencyEnded(WORKFLOW_KEY, step.key)))
