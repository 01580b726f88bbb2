"""Rerun from a step: a new run that copies the outputs of the step's succeeded ancestors.

The step and everything not upstream of it run again. ``dry_run`` records dispatched steps
without invoking them, to preview what a rerun would do.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell.code.protocol import FAN_OUT_KINDS, WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine import codeflow, compensation, concurrency, core, dag
from stepwell.engine.decision import Decision, Work
from stepwell.engine.state import RunStart, RunState, State, StepState


class RerunError(ValueError):
    """The rerun cannot be made as asked (unknown step, ancestors that did not succeed)."""


def ancestors(definition: Workflow, step_id: str) -> set[str]:
    """Every step ``step_id`` depends on, directly or not."""
    found: set[str] = set()
    stack = list(definition.upstream[step_id])
    while stack:
        current = stack.pop()
        if current not in found:
            found.add(current)
            stack.extend(definition.upstream[current])
    return found


def rerun(
    definition: Workflow,
    original: RunState,
    original_steps: dict[str, StepState],
    new_run_id: str,
    from_step: str,
    now: datetime,
    input: Any = None,
    dry_run: bool = False,
    nonce: str = "",
) -> Decision:
    """Build the new run. ``definition`` must be the version ``original`` ran with."""
    if core.driver_of(definition) is codeflow:
        return _rerun_code(
            definition, original, original_steps, new_run_id, from_step, now, input, dry_run, nonce
        )
    if from_step not in definition.steps:
        known = ", ".join(definition.steps)
        raise RerunError(f"workflow {definition.name} has no step {from_step!r} (steps: {known})")
    upstream = ancestors(definition, from_step)
    for step_id in sorted(upstream):
        record = original_steps.get(step_id)
        handled = record is not None and record.status == "failed" and record.handled_by is not None
        if record is None or (record.status not in ("succeeded", "skipped") and not handled):
            status = record.status if record else "not started"
            raise RerunError(
                f"cannot rerun from {from_step!r}: its ancestor {step_id!r} is {status} in run "
                f"{original.id}; rerun from {step_id!r} instead"
            )
    _refuse_undone(definition, original, original_steps, from_step, upstream)
    work = _announced(definition, original, new_run_id, from_step, now, input, dry_run, nonce)
    work.touch_run().open_steps -= len(upstream & set(definition.sinks))
    for step_id in sorted(upstream):
        old = original_steps[step_id]
        work.steps[step_id] = StepState(
            key=step_id,
            status=old.status,
            output=old.output,
            error=old.error,
            handled_by=old.handled_by,
            input=old.input,
            started_at=old.started_at,
            ended_at=old.ended_at,
            pending_deps=0,
            items_total=old.items_total,
            copied_from=original.id,
        )
        work.note("step_copied", step_id, f"{old.status} in {original.id}")
    for step_id in definition.steps:
        if step_id in upstream:
            continue
        step = work.step_or_new(step_id)
        for dep in definition.upstream[step_id]:
            if dep in upstream:  # copied, so already ended: counted as its end was
                dag.count(definition, step, dag.notice(step_id, original_steps[dep]))
    if _queued(work, from_step):
        return work.decision(created=True)
    for step_id in definition.steps:
        waiting = work.steps.get(step_id)
        if waiting is not None and waiting.status == "pending" and waiting.pending_deps == 0:
            dag.ready(work, waiting)
    if work.run.open_steps == 0 and not work.run.terminal:
        dag.complete_run(work)
    return work.decision(created=True)


def undone_steps(original_steps: dict[str, StepState]) -> dict[str, StepState]:
    """The steps of a run whose compensation started (a saga's undo), by step: what they did
    was undone, or may be in part, so their outputs hold no more."""
    found: dict[str, StepState] = {}
    for key, record in original_steps.items():
        step_id = compensation.undone(key)
        if step_id is not None and record.started_at is not None:
            found[step_id] = record
    return found


def _refuse_undone(
    definition: Workflow,
    original: RunState,
    original_steps: dict[str, StepState],
    from_step: str,
    upstream: set[str],
) -> None:
    """A step its run undid must run again, never be copied as succeeded: refuse a rerun that
    would copy one, naming the step to rerun from (one that copies none)."""
    undos = undone_steps(original_steps)
    copied = [step_id for step_id in definition.steps if step_id in upstream and step_id in undos]
    if not copied:
        return
    first = copied[0]
    # Rerunning from an undone step none of whose ancestors was undone redoes every undone one.
    since = next(s for s in copied if not ancestors(definition, s) & set(undos))
    undo = undos[first]
    raise RerunError(
        f"cannot rerun from {from_step!r}: its ancestor {first!r} was undone when run "
        f"{original.id} compensated ({undo.key} {undo.status}), so its output cannot be "
        f"copied as succeeded; rerun from {since!r} instead"
    )


def _announced(
    definition: Workflow,
    original: RunState,
    new_run_id: str,
    from_step: str,
    now: datetime,
    input: Any,
    dry_run: bool,
    nonce: str,
) -> Work:
    """The new run, announced as a rerun of ``original`` (its steps are the caller's); a run
    of a keyed workflow is announced once it takes a slot."""
    start = RunStart(
        new_run_id,
        original.input if input is None else input,
        dry_run=dry_run,
        labels=original.labels,
        rerun_of=original.id,
    )
    run = core.new_run(definition, start, now, nonce)
    work = core.work_for(definition, State(run=run, complete=True), now)
    concurrency.assign(work, None)
    if work.run.slot is not None:
        return work  # announced as it takes a slot
    core.announce(
        work,
        f"rerun of {original.id} from {from_step}" + (" (dry run)" if dry_run else ""),
        rerun_of=original.id,
        from_step=from_step,
    )
    return work


def _rerun_code(
    definition: Workflow,
    original: RunState,
    original_steps: dict[str, StepState],
    new_run_id: str,
    from_step: str,
    now: datetime,
    input: Any,
    dry_run: bool,
    nonce: str,
) -> Decision:
    """A code-first rerun: the steps that succeeded in replays before the one that reached
    ``from_step`` keep their results (the replay returns them); ``from_step``, what was reached
    with it and everything after it run again."""
    target = original_steps.get(from_step)
    if target is None or target.created_seq is None or from_step == WORKFLOW_KEY:
        known = ", ".join(k for k in original_steps if k != WORKFLOW_KEY)
        raise RerunError(f"run {original.id} has no step {from_step!r} (steps: {known})")
    work = _announced(definition, original, new_run_id, from_step, now, input, dry_run, nonce)
    for key, old in sorted(original_steps.items()):
        if (
            key == WORKFLOW_KEY
            or old.status != "succeeded"
            # A fan-out's decision may count branches whose failures are not copied: the
            # rerun's replay decides it again over the steps it keeps.
            or (old.spec or {}).get("type") in FAN_OUT_KINDS
            or old.created_seq is None
            or old.created_seq >= target.created_seq
        ):
            continue
        work.steps[key] = StepState(
            key=key,
            status="succeeded",
            attempt=old.attempt,
            output=old.output,
            input=old.input,
            started_at=old.started_at,
            ended_at=old.ended_at,
            name=old.name,
            spec=old.spec,
            position=old.position,
            after=list(old.after),
            created_seq=old.created_seq,
            copied_from=original.id,
        )
        work.note("step_copied", key, f"succeeded in {original.id}")
    if not _queued(work, from_step):
        codeflow.start(work)
    return work.decision(created=True)


def _queued(work: Work, from_step: str) -> bool:
    """A rerun of a keyed workflow waits in its key's queue like a new start (its copied steps
    written now); it starts what they let start as it takes a slot (engine.core)."""
    run = work.run
    if run.slot is None:
        return False
    run.deadline = work.now + core.MAX_RUN_DURATION  # its timeout counts from its start
    run.slot = {**run.slot, "rerun": from_step}
    concurrency.queue(work)
    return True
