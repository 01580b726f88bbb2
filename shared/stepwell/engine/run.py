"""The run's end: its terminal status written once, announced, and what is still open cancelled.

A run that fails with steps to undo is ended by :mod:`stepwell.engine.undoing` once they are
undone; this module only writes the end.
"""

from __future__ import annotations

from typing import Any

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.engine import compensation, slots
from stepwell.engine.commands import CancelChildRun, ContinueRun, EmitEvent, NotifyParent
from stepwell.engine.decision import MAX_STEP_WRITES, Work
from stepwell.engine.state import RunStatus, error_text


def end_run(work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
    """Write the run's terminal status once, announce it, and cancel what is still open."""
    run = work.touch_run()
    if run.terminal:
        return
    _free_slot(work)
    let_go_of_debounce(work)
    run.status = status
    run.error = error
    run.ended_at = work.now
    run.due_at = None
    run.watch_at = None
    message = status if error is None else f"{status}: {error_text(error)}"
    work.note("run_status", None, message, status=status)
    detail = {
        "run_id": run.id,
        "workflow": run.workflow,
        "status": status,
        "error": error,
        "output": run.output if status == "succeeded" else None,
    }
    work.emit(EmitEvent("run.completed", detail))
    if run.parent is not None:
        work.emit(
            NotifyParent(
                run.parent.run_id,
                run.parent.key,
                run.parent.attempt,
                run.id,
                status,
                run.output,
                error,
            )
        )
    cancel_open_steps(work)


def let_go_of_debounce(work: Work) -> None:
    """A debounced run that stops waiting (it starts, joins a queue, or ends) gives its key's
    hold back in the same commit: the key's next start makes a run of its own."""
    run = work.run
    if run.status == "scheduled" and run.debounce is not None:
        work.pending = slots.Pending("drop", run.debounce, run.id)


def _free_slot(work: Work) -> None:
    """Every end of a run of a workflow with ``concurrency`` passes here: a started run gives
    its slot back and offers it on; a queued one leaves the queue."""
    run = work.run
    if run.slot is None or "place" not in run.slot:
        return  # no concurrency, or a scheduled run that never joined the queue
    taking = work.slot is not None and work.slot.op == "take"
    if run.status == "queued" or taking:
        # A take and a release in one commit (a run that ended as it started) is a leave.
        work.slot = slots.change("leave", run.slot, run.id)
        if taking or "period" in run.slot:
            # A throttled queue's head keeps its key's only timer: the next run gets one.
            work.emit(slots.offer(run.slot))
        return
    if "period" in run.slot:
        return  # a throttled run holds nothing: its start counts in its key's window
    work.slot = slots.change("release", run.slot, run.id)
    work.emit(slots.offer(run.slot))


def cancel_open_steps(work: Work) -> None:
    """Cancel the started steps of an ended run that have not ended, a bounded number per call
    (a ContinueRun goes on with the rest; see :func:`open_steps_kept`).

    Steps that never started stay pending: they were never run, and writing them would cost a
    write per step for nothing. A run that is undoing its steps keeps its compensations, and a
    code-first run being cancelled keeps its replay (which tells the code).
    """
    run = work.run
    keep = open_steps_kept(work)
    if run.status == "succeeded" and not work.driver.steps_outlive_success:
        return  # every sink ended, so every step did: nothing is open
    work.state.require_all()
    for key in sorted(set(work.state.steps) | set(work.steps)):
        record = work.peek(key)
        if record is None or record.terminal or record.started_at is None or key in keep:
            continue
        if len(work.steps) >= MAX_STEP_WRITES and key not in work.steps:
            work.emit(ContinueRun(run.id, None))
            return
        step = work.step(key)
        assert step is not None
        if step.child_run_id and step.waiting_for == "child_run":
            work.emit(CancelChildRun(step.child_run_id))
        work.set_status(step, "cancelled")
        step.due_at = None
        step.waiting_for = None
        step.ended_at = work.now
        work.note("step_cancelled", step, _why_cancelled(work))
        work.ended(step)


def open_steps_kept(work: Work) -> frozenset[str]:
    """The open steps :func:`cancel_open_steps` leaves running."""
    if work.run.terminal:
        return frozenset()
    if work.run.cancelling is not None:
        return frozenset({WORKFLOW_KEY})
    return frozenset(compensation.keys(work.definition))


def _why_cancelled(work: Work) -> str:
    run = work.run
    if run.terminal:
        return f"run {run.status}"
    return "the run is cancelling" if run.cancelling is not None else "the run is undoing its steps"
