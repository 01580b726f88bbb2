"""Undoing a run's steps when it fails, is cancelled or times out: their compensations, one at
a time, newest first (see :mod:`stepwell.engine.compensation`), then the run's end."""

from __future__ import annotations

from typing import Any

from stepwell.engine import compensation
from stepwell.engine.data import expression_data
from stepwell.engine.decision import Work
from stepwell.engine.run import cancel_open_steps, end_run
from stepwell.engine.start import begin
from stepwell.engine.state import RunStatus, StepState


def end(work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
    """End the run ``status``; a run that ends in failure first undoes the steps that have a
    compensation (which then ends it)."""
    if work.touch_run().terminal:
        return
    if status != "succeeded" and begin_undoing(work, status, error):
        return
    end_run(work, status, error)


def begin_undoing(work: Work, status: RunStatus, error: dict[str, Any] | None) -> bool:
    """The run is to end ``status``: when steps that succeeded have a compensation, cancel what
    runs and start undoing them (True: the run ends once they have)."""
    definition = work.definition
    if work.run.compensation is not None:
        return False
    compensated = [step_id for step_id, step in definition.steps.items() if step.undo]
    if not compensated:
        return False
    work.state.require_all()
    done: list[tuple[Any, int, str]] = []
    for position, step_id in enumerate(definition.steps):
        record = work.peek(step_id)
        if step_id not in compensated or record is None or record.status != "succeeded":
            continue
        if record.dry_run or record.copied_from:
            continue  # nothing was done here: a dry run, or an output copied by a rerun
        done.append((record.ended_at, position, step_id))
    if not done:
        return False
    queue = [step_id for _, _, step_id in sorted(done, reverse=True)]
    run = work.touch_run()
    run.compensation = {"status": status, "error": error, "queue": queue, "outcomes": {}}
    run.due_at = (
        None  # a run that timed out still undoes: its compensations' own timeouts bound them
    )
    work.note(
        "run_compensating",
        None,
        f"{status}: undoing {', '.join(queue)} (newest first) before the run ends",
        status=status,
        steps=queue,
    )
    cancel_open_steps(work)
    _start_next(work)
    return True


def ended(work: Work, step: StepState) -> None:
    """A compensation ended: note its outcome, start the next, or end the run."""
    state = work.run.compensation
    step_id = compensation.undone(step.key)
    if state is None or work.run.terminal or step_id is None:
        return
    outcomes = {**state["outcomes"], step_id: {"status": step.status, "error": step.error}}
    queue = [s for s in state["queue"] if s != step_id]
    work.touch_run().compensation = {**state, "queue": queue, "outcomes": outcomes}
    _start_next(work)


def _start_next(work: Work) -> None:
    state = work.run.compensation
    assert state is not None
    if state["queue"]:
        step_id = state["queue"][0]
        key = compensation.key_of(step_id)
        step = work.step(key) or work.new_step(key)
        if step.terminal or step.started_at is not None:
            return  # already under way (a repeated event)
        begin(work, step, expression_data(work, None, every=True))
        return
    outcomes = state["outcomes"]
    failed = sorted(s for s, o in outcomes.items() if o["status"] != "succeeded")
    summary = {"status": "failed" if failed else "succeeded", "steps": outcomes}
    work.note(
        "compensation_ended",
        None,
        f"compensation failed for {', '.join(failed)}" if failed else "every step was undone",
        status=summary["status"],
    )
    error = {**(state["error"] or {}), "compensation": summary}
    end_run(work, state["status"], error)
