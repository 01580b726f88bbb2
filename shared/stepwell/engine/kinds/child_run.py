"""A child run (``type: workflow``): the step starts a run of another workflow and waits for its
end (with ``wait: false``, only for its creation). Its attempts are fenced, timed out and
retried as a task's (engine.attempts)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell.definition.models import Step
from stepwell.engine import attempts
from stepwell.engine.decision import Work
from stepwell.engine.events import ChildRunEnded, ChildRunStarted
from stepwell.engine.state import StepState, error_text

waits = True
inline = False


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    attempts.start(work, step, spec)


def on_timer(work: Work, step: StepState) -> None:
    attempts.on_timer(work, step)


def on_ended(work: Work, event: ChildRunEnded) -> None:
    """The child run of a workflow step ended."""
    step = attempts.current(work, event.key, event.attempt, "child run result")
    if step is None or step.waiting_for != "child_run" or step.child_run_id != event.child_run_id:
        return
    if event.status == "succeeded":
        attempts.finish_with_output(work, step, event.output, event.usage)
        return
    work.add_usage(step, event.usage)
    ended = f"run {event.child_run_id} {event.status}"
    if event.error is not None:
        ended = f"{ended}: {error_text(event.error)}"
    attempts.attempt_failed(work, step, "ChildRunFailed", ended)


def on_started(work: Work, event: ChildRunStarted) -> None:
    """The run a ``wait: false`` step started exists: the step ends with its id and start."""
    step = attempts.current(work, event.key, event.attempt, "child run start")
    if step is None or step.waiting_for != "child_run" or step.child_run_id != event.child_run_id:
        return
    output = {"run_id": event.child_run_id, "started_at": event.started_at}
    attempts.finish_with_output(work, step, output)
