"""Compensation (a saga): undoing, when a run fails, is cancelled or times out, what its steps
did.

A step names its compensation (``compensate: RefundChargeFunction``, or ``{function, input,
retry, timeout}``). When the run is about to end in failure, the steps that succeeded and have
one are undone one at a time, newest first (by the time each ended): the compensation of step
``charge`` is a task of its own, keyed ``charge:compensate``, dispatched, retried and timed out
like any task, on the timeline like any step. Its input defaults to ``{"input", "output"}`` of
the step it undoes; expressions see the run's input and every step, as the output does.

Meanwhile the run stays open (no step of its own starts again: what ran is cancelled first).
When the last compensation has ended, the run ends with the status it was headed for, its
error carrying ``compensation``: ``{"status": "succeeded" | "failed", "steps": {step: {status,
error}}}``. A compensation that fails after its retries does not stop the others. A cancel during
compensation ends the run at once, cancelling what still runs; a run that timed out still
undoes its steps (their own timeouts bound them).

What compensating costs is paid once, at the run's end: it reads every step of the run (as
cancelling what runs does) and writes the run item once per compensation.
"""

from __future__ import annotations

from typing import Any

from stepwell.definition.models import TaskStep, Workflow
from stepwell.engine.decision import Work
from stepwell.engine.state import RunStatus, StepState

SUFFIX = ":compensate"


def key_of(step_id: str) -> str:
    """The record key of ``step_id``'s compensation."""
    return step_id + SUFFIX


def undone(key: str) -> str | None:
    """The step a compensation key undoes (None: not a compensation's key)."""
    return key[: -len(SUFFIX)] if key.endswith(SUFFIX) else None


def keys(definition: Workflow) -> list[str]:
    """The keys of every compensation ``definition`` may run (in definition order)."""
    return [key_of(step_id) for step_id, step in definition.steps.items() if step.undo]


_SPECS: dict[tuple[str, str], TaskStep] = {}


def spec_of(definition: Workflow, key: str) -> TaskStep:
    """The task a compensation key runs."""
    cache_key = (definition.version, key)
    found = _SPECS.get(cache_key)
    if found is None:
        step_id = undone(key)
        undo = definition.steps[step_id].undo if step_id in definition.steps else None
        if step_id is None or undo is None:
            raise KeyError(f"workflow {definition.name} has no compensation {key!r}")
        found = TaskStep(
            function=undo.function,
            input=undo.input
            if undo.input is not None
            else {"input": f"${{steps.{step_id}.input}}", "output": f"${{steps.{step_id}.output}}"},
            retry=undo.retry,
            timeout=undo.timeout,
        )
        _SPECS[cache_key] = found
    return found


def compensating(work: Work) -> bool:
    """Whether the run is undoing its steps (no step of its own starts meanwhile)."""
    return work.run.compensation is not None and not work.run.terminal


def begin(work: Work, status: RunStatus, error: dict[str, Any] | None) -> bool:
    """The run is to end ``status``: when steps that succeeded have a compensation, cancel what
    runs and start undoing them (True: the run ends once they have)."""
    definition = work.definition
    if work.run.compensation is not None or definition.code is not None:
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
    from stepwell.engine import flow  # noqa: PLC0415 - the engine's circle, until the kind table

    flow.cancel_open_steps(work)
    _start_next(work)
    return True


def ended(work: Work, step: StepState) -> None:
    """A compensation ended: note its outcome, start the next, or end the run."""
    state = work.run.compensation
    step_id = undone(step.key)
    if state is None or work.run.terminal or step_id is None:
        return
    outcomes = {**state["outcomes"], step_id: {"status": step.status, "error": step.error}}
    queue = [s for s in state["queue"] if s != step_id]
    work.touch_run().compensation = {**state, "queue": queue, "outcomes": outcomes}
    _start_next(work)


def _start_next(work: Work) -> None:
    from stepwell.engine import flow  # noqa: PLC0415 - the engine's circle, until the kind table

    state = work.run.compensation
    assert state is not None
    if state["queue"]:
        step_id = state["queue"][0]
        step = work.step(key_of(step_id)) or work.new_step(key_of(step_id))
        if step.terminal or step.started_at is not None:
            return  # already under way (a repeated event)
        flow.begin(work, step, flow.expression_data(work, None, every=True))
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
    flow.end_run(work, state["status"], error)
