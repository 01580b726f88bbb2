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

This module names compensations (their keys and the task each runs); undoing them is
:mod:`stepwell.engine.undoing`'s. What compensating costs is paid once, at the run's end: it
reads every step of the run (as cancelling what runs does) and writes the run item once per
compensation.
"""

from __future__ import annotations

from stepwell.definition.models import TaskStep, Workflow
from stepwell.engine.state import RunState

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


def compensating(run: RunState) -> bool:
    """Whether the run is undoing its steps (no step of its own starts meanwhile)."""
    return run.compensation is not None and not run.terminal
