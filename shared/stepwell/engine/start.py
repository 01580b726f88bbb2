"""Starting a step (a YAML step, a for_each child, a compensation, a retried step): its input
rendered and checked, then handed to its kind (the table the core gives ``work.kind``)."""

from __future__ import annotations

from typing import Any

from stepwell import expressions
from stepwell.engine.data import schema_problem
from stepwell.engine.decision import Work
from stepwell.engine.outcomes import dry_run, fail_step
from stepwell.engine.state import StepState


def begin(work: Work, step: StepState, data: dict[str, Any]) -> None:
    """Start a step (or a for_each child): render its input and hand it to its kind."""
    spec = work.spec(step.key)
    kind = work.kind(spec.type)
    step.started_at = work.now
    try:
        if spec.input is not None:
            step.input = expressions.render(spec.input, data, work.now)
        elif step.index is not None:
            step.input = step.item
        else:
            step.input = work.run.input
        if kind.inline:
            kind.start(work, step, spec, data)
            return
        params = kind.parameters(spec, data, work.now)
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
        dry_run(work, step, spec.type)
        return
    kind.start(work, step, spec, data)
