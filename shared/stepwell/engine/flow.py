"""How a run moves: readiness, starting steps, step outcomes, and the run's end.

Every function takes the decision's :class:`Work` and changes only the records it touches: a
step, its dependents (through their readiness counters) and the run's counters.
"""

from __future__ import annotations

import json
from typing import Any

import jsonschema

from stepwell import expressions
from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition import retry
from stepwell.definition.models import TEMPLATE_FIELDS, Step, Workflow
from stepwell.engine import compensation
from stepwell.engine.commands import (
    CancelChildRun,
    ContinueRun,
    EmitEvent,
    FollowUp,
    NotifyParent,
)
from stepwell.engine.decision import MAX_STEP_WRITES, Work
from stepwell.engine.events import DependencyEnded
from stepwell.engine.state import RunStatus, StepState, Usage, parse_key

# -- expressions ---------------------------------------------------------------------------


def templates_of(step: Step) -> list[Any]:
    """Every templated field of a step (what its expressions may read)."""
    return [
        getattr(step, name) for name in TEMPLATE_FIELDS if getattr(step, name, None) is not None
    ]


_REFS: dict[tuple[str, str | None], frozenset[str] | None] = {}


def _refs(definition: Workflow, step_id: str | None) -> frozenset[str] | None:
    cache_key = (definition.version, step_id)
    if cache_key in _REFS:
        return _REFS[cache_key]
    _REFS[cache_key] = found = _compute_refs(definition, step_id)
    return found


def _compute_refs(definition: Workflow, step_id: str | None) -> frozenset[str] | None:
    values = [definition.output] if step_id is None else templates_of(definition.steps[step_id])
    found: set[str] = set()
    for value in values:
        refs = expressions.referenced_steps(value)
        if refs is None:
            return None
        found |= refs
    if step_id is None and definition.output is None:
        found |= set(definition.sinks)
    return frozenset(found & set(definition.steps))


def step_refs(definition: Workflow, step_id: str | None) -> frozenset[str] | None:
    """Steps whose records a step's expressions read (``None`` step: the run output).

    None means the expressions read ``steps`` as a whole, so every step is needed.
    """
    return _refs(definition, step_id)


def expression_data(
    work: Work, step_id: str | None, child: StepState | None = None, *, every: bool = False
) -> dict[str, Any]:
    """What expressions see: input, steps.<id>.input/output/status/error, context, item,
    index, run (``every``: every step, whatever the expressions read). A code-first run's
    steps see what :func:`codeflow.expression_data` gives them."""
    if work.definition.code is not None:
        from stepwell.engine import codeflow  # noqa: PLC0415 - the engine's circle, until the kind table

        return codeflow.expression_data(work, step_id, child)
    refs = None if every else step_refs(work.definition, step_id)
    if refs is None:
        work.state.require_all()
        refs = frozenset(work.definition.steps)
    work.state.require(set(refs))
    steps: dict[str, Any] = {}
    for ref in refs:
        record = work.peek(ref)
        if record is not None:
            steps[ref] = {
                "input": record.input,
                "output": record.output,
                "status": record.status,
                "error": record.error,
            }
    run = work.run
    data: dict[str, Any] = {
        "input": run.input,
        "steps": steps,
        "context": run.context,
        "run": {
            "id": run.id,
            "workflow": run.workflow,
            "started_at": run.started_at.isoformat() if run.started_at else None,
        },
    }
    if child is not None:
        data["item"] = child.item
        data["index"] = child.index
    return data


def schema_problem(schema: dict[str, Any] | None, value: Any) -> str | None:
    """The first JSON Schema violation of ``value``, as one line, or None."""
    if schema is None:
        return None
    error = jsonschema.exceptions.best_match(
        jsonschema.Draft202012Validator(schema).iter_errors(value)
    )
    if error is None:
        return None
    where = "/".join(str(p) for p in error.absolute_path)
    return f"{'at ' + where + ': ' if where else ''}{error.message}"


# -- readiness -----------------------------------------------------------------------------


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
        or compensation.compensating(work)
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
    if work.run.terminal or compensation.compensating(work):
        return
    spec = work.spec(step.key)
    reason = _not_triggered(step, spec.trigger_rule)
    if reason is not None:
        skip(work, step, reason)
        return
    try:
        data = expression_data(work, step.key)
        if spec.when is not None and not expressions.truthy(
            expressions.render(spec.when, data, work.now)
        ):
            skip(work, step, "'when' was false")
            return
        if spec.for_each is not None:
            from stepwell.engine import fanout  # noqa: PLC0415 - the engine's circle, until the kind table

            fanout.start(work, step, data)
            return
    except expressions.ExpressionError as exc:
        step.started_at = work.now
        fail_step(work, step, "ExpressionError", f"step '{step.key}': {exc}")
        return
    begin(work, step, data)


def begin(work: Work, step: StepState, data: dict[str, Any]) -> None:
    """Start a step (or a for_each child): render its input and hand it to its kind."""
    from stepwell.engine import attempts, waits  # noqa: PLC0415 - the engine's circle, until the kind table

    spec = work.spec(step.key)
    step.started_at = work.now
    try:
        if spec.input is not None:
            step.input = expressions.render(spec.input, data, work.now)
        elif step.index is not None:
            step.input = step.item
        else:
            step.input = work.run.input
        if spec.type == "condition":
            value = expressions.truthy(expressions.render(spec.condition, data, work.now))
            work.note(
                "condition_evaluated", step, f"condition is {str(value).lower()}", value=value
            )
            succeed(work, step, value)
            return
        params = attempts.parameters(spec, data, work.now)
        if params is not None:
            step.input = params
    except expressions.ExpressionError as exc:
        fail_step(work, step, "ExpressionError", f"step '{step.key}': {exc}")
        return
    problem = schema_problem(spec.input_schema, step.input)
    if problem:
        fail_step(work, step, "InputSchemaError", f"step '{step.key}' input: {problem}")
        return
    if work.run.dry_run:
        step.dry_run = True
        work.note("step_dry_run", step, f"dry run: {spec.type} step recorded, not run")
        succeed(work, step, None)
        return
    if spec.type in ("approval", "delay", "callback"):
        waits.open(work, step, spec, data)
    else:
        attempts.start(work, step, spec)


# -- outcomes ------------------------------------------------------------------------------


def succeed(work: Work, step: StepState, output: Any, usage: Usage | None = None) -> None:
    """The step succeeded with ``output``."""
    step.output = output
    step.error = None
    work.add_usage(step, usage)
    _finish(work, step, "succeeded")
    if not step.dry_run:
        work.note("step_completed", step, data_summary(output))
    _ended(work, step)


def skip(work: Work, step: StepState, reason: str, output: Any = None) -> None:
    """The step will not run; dependents see it as skipped."""
    step.output = output
    _finish(work, step, "skipped")
    work.note("step_skipped", step, reason)
    _ended(work, step)


def fail_step(work: Work, step: StepState, error_type: str, message: str, **details: Any) -> None:
    """The step failed for good (no retry left); ``details`` go on its error (the event on the
    bus carries the type and message alone)."""
    step.error = {"type": error_type, "message": message, **details}
    _finish(work, step, "failed")
    work.note("step_failed", step, f"{error_type}: {message}", error=error_type)
    work.emit(
        EmitEvent(
            "step.failed",
            {
                "run_id": work.run.id,
                "workflow": work.run.workflow,
                "step": step.key,
                "attempt": step.attempt,
                "error": {"type": error_type, "message": message},
            },
        )
    )
    _ended(work, step)


def attempt_failed(
    work: Work, step: StepState, error_type: str, message: str, retryable: bool = True
) -> None:
    """The current attempt failed: retry with backoff when the policy allows, else fail."""
    from stepwell.engine import attempts  # noqa: PLC0415 - the engine's circle, until the kind table

    spec = work.spec(step.key)
    seed = f"{work.run.id}:{step.key}:{step.attempt}"
    # Lost attempts were the platform's failures, not the step's: they do not use up retries.
    counted = step.attempt - step.lost_attempts - step.retry_base
    choice = retry.decide(spec.retry, counted, error_type, seed)
    if not (retryable and choice.retry):
        fail_step(work, step, error_type, message)
        return
    step.error = {"type": error_type, "message": message}
    work.note(
        "step_retrying",
        step,
        f"{error_type}: {message}; {choice.reason} in {choice.delay.total_seconds():.3g}s",
        error=error_type,
        delay_s=round(choice.delay.total_seconds(), 3),
    )
    if choice.delay.total_seconds() <= 0:
        attempts.start(work, step, spec)
        return
    work.set_status(step, "retrying")
    step.waiting_for = "retry"
    attempts.set_timer(work, step, work.now + choice.delay)


def _finish(work: Work, step: StepState, status: str) -> None:
    work.set_status(step, status)  # type: ignore[arg-type]
    step.ended_at = work.now
    step.due_at = None
    step.waiting_for = None
    step.heartbeat_due = None


def _ended(work: Work, step: StepState) -> None:
    """A step reached a terminal status: tell its parent or dependents, maybe end the run."""
    step_id, index = parse_key(step.key)
    if index is not None:
        from stepwell.engine import fanout  # noqa: PLC0415 - the engine's circle, until the kind table

        fanout.child_ended(work, step)  # a YAML for_each's child, or a ctx.for_each's
        return
    if work.definition.code is not None:
        from stepwell.engine import codeflow  # noqa: PLC0415 - the engine's circle, until the kind table

        codeflow.ended(work, step)
        return
    if compensation.undone(step.key) is not None:
        compensation.ended(work, step)
        return
    if work.run.terminal:
        return
    if step.status == "failed" and not _handled(work, step):
        end_run(
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


# -- the run's end -------------------------------------------------------------------------


def complete_run(work: Work) -> None:
    """Every step ended without failure: compute the output and end the run."""
    definition = work.definition
    try:
        data = expression_data(work, None)
        if definition.output is not None:
            output = expressions.render(definition.output, data, work.now)
        else:
            output = {sink: data["steps"].get(sink, {}).get("output") for sink in definition.sinks}
    except expressions.ExpressionError as exc:
        end_run(work, "failed", {"type": "ExpressionError", "message": f"workflow output: {exc}"})
        return
    problem = schema_problem(definition.output_schema, output)
    if problem:
        end_run(work, "failed", {"type": "OutputSchemaError", "message": f"run output: {problem}"})
        return
    work.touch_run().output = output
    end_run(work, "succeeded", None)


def end_run(work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
    """Write the run's terminal status once, announce it, and cancel what is still open. A run
    that ends in failure first undoes the steps that have a compensation (which then ends it)."""
    run = work.touch_run()
    if run.terminal:
        return
    if status != "succeeded" and compensation.begin(work, status, error):
        return
    run.status = status
    run.error = error
    run.ended_at = work.now
    run.due_at = None
    run.watch_at = None
    message = status if error is None else f"{status}: {error.get('type')}: {error.get('message')}"
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


def cancel_open_steps(work: Work) -> None:
    """Cancel the started steps of an ended run that have not ended, a bounded number per call
    (a ContinueRun goes on with the rest; see :func:`open_steps_kept`).

    Steps that never started stay pending: they were never run, and writing them would cost a
    write per step for nothing. A run that is undoing its steps keeps its compensations, and a
    code-first run being cancelled keeps its replay (which tells the code).
    """
    run = work.run
    keep = open_steps_kept(work)
    if run.status == "succeeded" and work.definition.code is None:
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


def data_summary(value: Any, limit: int = 120) -> str:
    """A short, one-line rendering of a value for timeline messages."""
    if value is None:
        return ""
    text = json.dumps(value, separators=(",", ":"), default=str)
    return text if len(text) <= limit else text[: limit - 1] + "…"
