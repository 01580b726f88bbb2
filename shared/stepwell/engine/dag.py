"""A YAML run's DAG: readiness counters, the steps that become ready, what a step's end tells
its dependents, and the run's completion when its last sink ends.

Each function changes only the records it touches: a step, its dependents (through their
readiness counters, each in a write of its own) and the run's counters.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import Step, Workflow
from stepwell.engine import attempts, compensation, data, fanout, undoing
from stepwell.engine.commands import FollowUp
from stepwell.engine.data import schema_problem
from stepwell.engine.decision import Kind, Work, is_active
from stepwell.engine.events import DependencyEnded, Event, ItemReady, StepSucceeded
from stepwell.engine.outcomes import fail_step, skip
from stepwell.engine.run import end_run
from stepwell.engine.start import begin
from stepwell.engine.state import RunStatus, StepState, parse_key


def notice(dependent: str, record: StepState) -> DependencyEnded:
    """What ``dependent`` is told of ``record``'s end."""
    return DependencyEnded(
        dependent,
        record.key,
        record.status == "skipped",
        record.status == "failed",
        record.handled_by,
    )


def on_dependency_ended(work: Work, event: DependencyEnded) -> None:
    """One dependency of ``event.key`` ended: count it once, and start the step when every
    dependency has ended. Writes that step alone."""
    if (
        work.run.terminal
        or compensation.compensating(work.run)
        or event.key not in work.definition.steps
    ):
        return
    record = work.peek(event.key)
    if record is not None and (record.status != "pending" or event.dependency in record.deps_ended):
        return  # counted already (a repeated notice), or the step moved on (skipped ahead)
    step = work.step_or_new(event.key)
    count(work.definition, step, event)
    if step.pending_deps is not None and step.pending_deps <= 0:
        ready(work, step)


def count(definition: Workflow, step: StepState, event: DependencyEnded) -> None:
    """Count one dependency's end on ``step``'s readiness counters. A step that handles the
    dependency's failure (its catch rule names it) goes on only if that rule handled it."""
    assert step.pending_deps is not None
    step.deps_ended.append(event.dependency)
    step.pending_deps -= 1
    rule = definition.handlers.get(event.dependency, {}).get(step.key)
    if rule is not None:
        if not (event.failed and event.handled_by == rule):
            step.bypassed = True
        return
    step.skipped_deps += int(event.skipped)
    step.failed_deps += int(event.failed)


def _not_triggered(step: StepState, rule: str) -> str | None:
    """Why ``step`` is skipped by its dependencies' outcomes, or None when it may run."""
    if step.bypassed:
        return "the failure it handles did not happen (or another catch rule handled it)"
    if rule == "all_success" and step.failed_deps:
        return "a dependency failed (trigger_rule all_success)"
    if rule == "all_success" and step.skipped_deps:
        return "a dependency was skipped (trigger_rule all_success)"
    if rule == "none_failed" and step.failed_deps:
        return "a dependency failed (trigger_rule none_failed)"
    if rule == "one_failed" and not step.failed_deps:
        return "no dependency failed (trigger_rule one_failed)"
    return None


def ready(work: Work, step: StepState) -> None:
    """Every dependency ended: skip the step, fan it out, or begin it."""
    if work.run.terminal or compensation.compensating(work.run):
        return
    spec = work.spec(step.key)
    reason = _not_triggered(step, spec.trigger_rule)
    if reason is not None:
        skip(work, step, reason)
        return
    try:
        values = data.expression_data(work, step.key)
        if spec.when is not None and not expressions.truthy(
            expressions.render(spec.when, values, work.now)
        ):
            skip(work, step, "'when' was false")
            return
        if spec.for_each is not None:
            fanout.start(work, step, values)
            return
    except expressions.ExpressionError as exc:
        step.started_at = work.now
        fail_step(work, step, "ExpressionError", f"step '{step.key}': {exc}")
        return
    begin(work, step, values)


steps_outlive_success = False
"""Every sink ended, so every step did: a run that succeeded has nothing open."""

skips_ahead = True
"""A step nobody has touched yet can be skipped ahead of time; its dependents go on then."""


def knows(definition: Workflow, step_id: str) -> bool:
    """The workflow's steps are its definition's."""
    return step_id in definition.steps


def ahead(work: Work, key: str) -> StepState | None:
    """A top-level step's record, pending with its readiness counter (a for_each child's
    exists once its fan-out made it)."""
    return work.step_or_new(key) if parse_key(key)[1] is None else work.step(key)


def reads_for(definition: Workflow, event: Event, key: str, kinds: Mapping[str, Kind]) -> set[str]:
    """A child's decision reads the child alone (its end is counted on the parent later);
    starting it reads its parent and what its expressions read. A step's transition reads its
    dependents and what their expressions read."""
    keys: set[str] = set()
    step_id, index = parse_key(key)
    if index is not None:
        if isinstance(event, ItemReady):
            keys.add(step_id)
            keys |= data.step_refs(definition, step_id) or set()
        return keys
    if step_id not in definition.steps:
        return keys
    if _has_waits(definition, kinds):
        # While a wait is open, a step's transition reads the others to tell running from
        # waiting: the definition's steps, however wide the run.
        keys |= set(definition.steps)
    if isinstance(event, DependencyEnded):
        # The step counts the end and may start: what its expressions read.
        keys |= data.step_refs(definition, step_id) or set()
        return keys
    for dependent in definition.dependents[step_id]:
        keys.add(dependent)
        keys |= data.step_refs(definition, dependent) or set()
    keys |= data.step_refs(definition, step_id) or set()
    keys |= data.step_refs(definition, None) or set()
    return keys


_WAITS: dict[str, bool] = {}


def _has_waits(definition: Workflow, kinds: Mapping[str, Kind]) -> bool:
    """Whether a step of ``definition`` waits: found once per version, so an event's reads cost
    the same however many steps the workflow has."""
    found = _WAITS.get(definition.version)
    if found is None:
        found = _WAITS[definition.version] = any(
            kinds[step.type].waits for step in definition.steps.values()
        )
    return found


def reopens(step: StepState, failed_at: datetime | None) -> bool:
    """Every step the run's failure cancelled starts again."""
    return True


def restart(work: Work, step: StepState) -> None:
    """Begin the step again, its expressions read afresh."""
    child = step if step.index is not None else None
    begin(work, step, data.expression_data(work, step.step_id, child))


def redriven(work: Work, reopened: list[str]) -> None:
    """The steps started again carry the run on (its counters were never spent)."""


def start(work: Work) -> None:
    """A new run: its root steps."""
    for root in work.definition.roots:
        if work.run.terminal:
            break
        ready(work, work.step_or_new(root))


def resume(work: Work) -> None:
    """A rerun that waited for a slot: the steps whose dependencies all ended (were copied)."""
    work.state.require(set(work.definition.steps))
    for step_id in work.definition.steps:
        record = work.peek(step_id)
        if work.run.terminal:
            break
        if record is not None and record.status == "pending" and record.pending_deps == 0:
            step = work.step(step_id)
            assert step is not None
            ready(work, step)
    if work.run.open_steps == 0 and not work.run.terminal:
        complete_run(work)


def spec(work: Work, key: str) -> Step:
    """A compensation's task (the workflow's steps are its own)."""
    if key.endswith(compensation.SUFFIX):
        return compensation.spec_of(work.definition, key)
    raise KeyError(f"workflow {work.definition.name} has no step {key!r}")


def expression_data(
    work: Work, key: str | None, child: StepState | None = None, *, every: bool = False
) -> dict[str, Any]:
    """What a step's expressions see: the records they read."""
    return data.expression_data(work, key, child, every=every)


def active(work: Work) -> bool:
    """Whether a top-level step (or a fan-out) runs or waits to retry: the definition's steps."""
    work.state.require(set(work.definition.steps))
    for key in work.definition.steps:
        record = work.peek(key)
        if record is not None and is_active(record.status) and record.index is None:
            return True
    return False


def watch(work: Work) -> bool:
    """The run's watch finds what a DAG's dead invocation left undone from the records alone
    (engine.core): nothing of the driver's own to look at."""
    return False


def on_succeeded(work: Work, event: StepSucceeded) -> None:
    """An attempt returned."""
    attempts.on_succeeded(work, event)


def end(work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
    """End the run; one that fails undoes its steps first."""
    undoing.end(work, status, error)


def cancel(work: Work, reason: str) -> None:
    """Cancel the run (undoing its steps first)."""
    undoing.end(work, "cancelled", {"type": "Cancelled", "message": reason})


def ended(work: Work, step: StepState) -> None:
    """A top-level step ended: a compensation goes on to the next; another step tells its
    dependents, or ends the run (its failure was not handled, or it was the last sink)."""
    if compensation.undone(step.key) is not None:
        undoing.ended(work, step)
        return
    step_id, _ = parse_key(step.key)
    if work.run.terminal:
        return
    if step.status == "failed" and not _handled(work, step):
        undoing.end(
            work,
            "failed",
            {
                "type": step.error["type"] if step.error else "StepFailed",
                "message": (step.error or {}).get("message", ""),
                "step": step.key,
            },
        )
        return
    dependents = work.definition.dependents[step_id]
    for dependent in dependents:
        # Each dependent counts this end in a write of its own (no lock on the run); the
        # run's watch tells any a dead invocation did not.
        work.emit(FollowUp(work.run.id, notice(dependent, step)))
    if not dependents:
        run = work.touch_run()
        run.open_steps -= 1
        if run.open_steps == 0:
            complete_run(work)


def _handled(work: Work, step: StepState) -> bool:
    """Whether a catch rule of ``step`` handles its failure (noted on the step and the
    timeline): the run goes on, and the rule's ``then`` steps run."""
    error_type = (step.error or {}).get("type", "StepFailed")
    rules = work.spec(step.key).catch
    for index, rule in enumerate(rules):
        if rule.handles(error_type):
            step.handled_by = index
            then = ", ".join(rule.then) if rule.then else "no step of its own"
            work.note(
                "failure_handled",
                step,
                f"{error_type} handled by catch rule {index + 1}: runs {then}; the run goes on",
                rule=index,
                then=list(rule.then),
            )
            return True
    return False


def complete_run(work: Work) -> None:
    """Every step ended without failure: compute the output and end the run."""
    definition = work.definition
    try:
        values = data.expression_data(work, None)
        if definition.output is not None:
            output = expressions.render(definition.output, values, work.now)
        else:
            output = {
                sink: values["steps"].get(sink, {}).get("output") for sink in definition.sinks
            }
    except expressions.ExpressionError as exc:
        undoing.end(
            work, "failed", {"type": "ExpressionError", "message": f"workflow output: {exc}"}
        )
        return
    problem = schema_problem(definition.output_schema, output)
    if problem:
        undoing.end(
            work, "failed", {"type": "OutputSchemaError", "message": f"run output: {problem}"}
        )
        return
    work.touch_run().output = output
    end_run(work, "succeeded", None)
