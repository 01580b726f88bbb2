"""What a step's expressions see (input, steps, context, item ...) and what its data must match.

A YAML step sees the records its expressions read (:func:`step_refs`); a code-first step sees the
run's input and context, and ``items``, its own input.
"""

from __future__ import annotations

from typing import Any

import jsonschema

from stepwell import expressions
from stepwell.definition.models import TEMPLATE_FIELDS, EventStep, Step, Workflow
from stepwell.engine.decision import Work
from stepwell.engine.state import StepState


def templates_of(step: Step) -> list[Any]:
    """Every templated field of a step (what its expressions may read)."""
    found = [
        getattr(step, name) for name in TEMPLATE_FIELDS if getattr(step, name, None) is not None
    ]
    if isinstance(step, EventStep):
        found += [value for value in step.templates if value is not None]
    return found


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
    index, run (``every``: every step, whatever the expressions read); a YAML run's steps."""
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


def code_expression_data(
    work: Work, key: str | None, child: StepState | None = None
) -> dict[str, Any]:
    """What the expressions of a code-first step see: the run's data as its waits see it, and
    ``items``, the step's own input (a ctx.for_each's ``for_each`` is ``${items}``: the items
    the code gave); a for_each child's ``item`` and ``index`` too."""
    record = work.peek(key) if key is not None else None
    data = {**code_run_data(work), "items": record.input if record is not None else None}
    if child is not None:
        data["item"] = child.item
        data["index"] = child.index
    return data


def code_run_data(work: Work) -> dict[str, Any]:
    """What the few templated fields of waits see in a code-first run (its input and context)."""
    run = work.run
    return {"input": run.input, "steps": {}, "context": run.context, "run": {"id": run.id}}


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
