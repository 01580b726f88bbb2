"""Checks the models cannot make alone: the step graph, expressions, JSON Schemas.

Over 500 lines: one located check per field family, all sharing the expression scope rules.

:func:`validate` collects every problem (not only the first), each located through the
:class:`SourceMap` of the file the workflow came from.
"""

from __future__ import annotations

import difflib
import re
import zoneinfo
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import timedelta
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from stepwell.definition.errors import PathPart, Problem, SourceMap
from stepwell.definition.models import (
    TEMPLATE_FIELDS,
    EventPattern,
    EventStep,
    FlowControl,
    HttpStep,
    Step,
    Workflow,
    WorkflowStep,
)
from stepwell.expressions import (
    ExpressionError,
    check,
    compile_expression,
    expressions_in,
    split_template,
)

ONCE_FIELDS = frozenset({"when", "for_each"})
"""Evaluated once for the whole step, before a for_each has items: no ``item`` or ``index``."""

STEP_NAMES = ("input", "steps", "context", "run", "item", "index")
"""The names a step's expressions see (``item``/``index`` only in a for_each step)."""

OUTPUT_NAMES = ("input", "steps", "context", "run")
"""The names the workflow's ``output`` sees."""

_SECRET_FIELDS = frozenset({"url", "headers", "body"})
"""HTTP step fields that also see ``secrets``."""

_KEYWORDS = frozenset({"and", "or", "in", "true", "false", "null", "function"})
_STRING = re.compile(r"\"(?:\\.|[^\"\\])*\"|'(?:\\.|[^'\\])*'|/\*.*?\*/", re.DOTALL)
_ROOT_NAME = re.compile(r"(?<![\w$.`])([A-Za-z_][A-Za-z0-9_]*)")
_STEP_NAME = re.compile(r"(?<![\w$.`])steps\s*\.\s*(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)")
_SECRET_NAME = re.compile(r"(?<![\w$.`])secrets\s*\.\s*(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)")
_REGEX = re.compile(r"(?:(?<=[(,])|^)\s*/(?:\\.|[^/\\])+/[a-z]*")
"""A JSONata regex literal: a /.../ where an operand starts (a division follows an operand)."""
_CLOSING = {"[": "]", "{": "}", "(": ")"}
_JSON_TYPES = "array, boolean, integer, null, number, object, string"


def validate(workflow: Workflow, source: SourceMap | None = None) -> list[Problem]:
    """Every problem the models cannot see, in file order.

    ``source`` locates problems; without one (a workflow built in code) they are placed at 1:1.
    """
    source = source or SourceMap("<workflow>")
    problems = [
        *_depends_on(workflow, source),
        *_catches(workflow, source),
        *_cycles(workflow, source),
        *_step_expressions(workflow, source),
        *_workflow_expressions(workflow, source),
        *_schemas(workflow, source),
        *_child_workflows(workflow, source),
        *_timezones(workflow, source),
        *_event_waits(workflow, source),
        *_flow_control(workflow, source),
        *_step_concurrency(workflow, source),
        *_cancel_on(workflow, source),
    ]
    return sorted(problems, key=lambda p: (p.line, p.col))


def ancestors(workflow: Workflow) -> dict[str, frozenset[str]]:
    """Step id -> every step it depends on (or handles the failure of), directly or through
    others (unknown ids ignored)."""
    upstream = workflow.upstream
    out: dict[str, frozenset[str]] = {}
    for key in workflow.steps:
        seen: set[str] = set()
        todo = list(upstream[key])
        while todo:
            dep = todo.pop()
            if dep in seen or dep not in workflow.steps:
                continue
            seen.add(dep)
            todo.extend(upstream[dep])
        out[key] = frozenset(seen)
    return out


# -- the graph -----------------------------------------------------------------------------


def _depends_on(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    ids = list(workflow.steps)
    for key, step in workflow.steps.items():
        where = ("steps", key, "depends_on")
        seen: set[str] = set()
        for index, dep in enumerate(step.depends_on):
            at = (*where, index)
            if dep == key:
                message = f"a step cannot depend on itself: remove '{key}' from depends_on"
                yield source.at_step(where, message, at=at)
            elif dep not in workflow.steps:
                others = [i for i in ids if i != key]
                message = f"unknown step '{dep}' in depends_on{_suggest(dep, others, 'steps')}"
                yield source.at_step(where, message, at=at)
            elif dep in seen:
                yield source.at_step(where, f"'{dep}' is listed twice: remove one", at=at)
            seen.add(dep)


def _catches(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """Handlers that do not exist or handle their own step, and rules no error can reach."""
    ids = list(workflow.steps)
    for key, step in workflow.steps.items():
        caught: set[str] = set()
        named: dict[str, int] = {}
        for index, rule in enumerate(step.catch):
            where = ("steps", key, "catch", index)
            errors = set(rule.errors)
            if "*" in caught or (errors and errors <= caught):
                earlier = "catches every error" if "*" in caught else "catches these errors"
                yield source.at_step(
                    where,
                    f"catch rule {index + 1} of '{key}' is never reached: an earlier rule "
                    f"{earlier}; move it up or remove it",
                )
            if not errors:
                yield source.at_step(
                    (*where, "errors"), f"catch rule {index + 1} of '{key}' names no error"
                )
            caught |= errors
            for at, handler in enumerate(rule.then):
                spot = (*where, "then", at)
                if handler == key:
                    message = f"'{key}' cannot handle its own failure: name another step in then"
                elif handler not in workflow.steps:
                    others = [i for i in ids if i != key]
                    message = (
                        f"unknown step '{handler}' in then{_suggest(handler, others, 'steps')}"
                    )
                elif handler in named:
                    message = (
                        f"'{handler}' already handles catch rule {named[handler] + 1} of '{key}': "
                        "a step handles one rule of a step"
                    )
                else:
                    named[handler] = index
                    continue
                yield source.at_step((*where, "then"), message, at=spot)


def _cycles(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """One problem per cycle found by a depth-first walk of depends_on and catch handlers."""
    graph = {
        key: [d for d in workflow.upstream[key] if d in workflow.steps and d != key]
        for key in workflow.steps
    }
    order = {key: i for i, key in enumerate(workflow.steps)}
    done: set[str] = set()
    cycles: list[list[str]] = []
    for root in workflow.steps:
        if root in done:
            continue
        # An explicit stack: a long chain of steps must not hit Python's recursion limit.
        stack: list[tuple[str, Iterator[str]]] = [(root, iter(graph[root]))]
        on_stack = [root]
        while stack:
            node, deps = stack[-1]
            dep = next(deps, None)
            if dep is None:
                done.add(node)
                stack.pop()
                on_stack.pop()
            elif dep in on_stack:
                cycles.append(on_stack[on_stack.index(dep) :])
            elif dep not in done:
                stack.append((dep, iter(graph[dep])))
                on_stack.append(dep)
    for found in cycles:
        # Start at the step defined first, so the message is the same whatever the walk order.
        start = min(range(len(found)), key=lambda i: order[found[i]])
        cycle = found[start:] + found[:start]
        first, then = cycle[0], cycle[1 % len(cycle)]
        text = " -> ".join([*cycle, first])
        edges = zip(cycle, [*cycle[1:], cycle[0]], strict=True)
        through_catch = any(b not in workflow.steps[a].depends_on for a, b in edges)
        how = (
            "depends on the next, or handles its failure"
            if through_catch
            else "depends on the next"
        )
        message = f"cycle: {text} (each step {how}): remove one of these dependencies"
        if then in workflow.steps[first].depends_on:
            where: tuple[Any, ...] = ("steps", first, "depends_on")
            at: tuple[Any, ...] = (*where, workflow.steps[first].depends_on.index(then))
        else:  # ``first`` handles ``then``'s failure
            rule = workflow.handlers[then][first]
            where = ("steps", then, "catch", rule, "then")
            at = (*where, workflow.steps[then].catch[rule].then.index(first))
        yield source.at_step(where, message, at=at)


def _child_workflows(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    for key, step in workflow.steps.items():
        if isinstance(step, WorkflowStep) and step.workflow == workflow.name:
            yield source.at_step(
                ("steps", key, "workflow"),
                f"a workflow step cannot start its own workflow '{workflow.name}': "
                "each run would start another, without end",
            )


# -- expressions ---------------------------------------------------------------------------


@dataclass(frozen=True)
class _Scope:
    """What the expressions of one field may read."""

    workflow: Workflow
    source: SourceMap
    names: frozenset[str]
    step_id: str | None  # None: the workflow's output
    readable: frozenset[str]  # the steps whose outputs exist when the field is evaluated


def _step_expressions(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    every = ancestors(workflow)
    for key, step in workflow.steps.items():
        names = set(STEP_NAMES) if step.for_each is not None else set(OUTPUT_NAMES)
        for name in TEMPLATE_FIELDS:
            value = getattr(step, name, None)
            if value is None or isinstance(value, bool):
                continue
            seen = names - {"item", "index"} if name in ONCE_FIELDS else names
            if isinstance(step, HttpStep) and name in _SECRET_FIELDS:
                seen = seen | {"secrets"}
            scope = _Scope(workflow, source, frozenset(seen), key, every[key])
            for path, text in _strings(value, ("steps", key, name)):
                yield from _template(text, path, scope)
        yield from _step_shapes(key, step, source)


def _step_shapes(key: str, step: Step, source: SourceMap) -> Iterator[Problem]:
    """for_each, when and condition written as something other than an expression."""
    if step.for_each is not None:
        try:
            parts = split_template(step.for_each)
        except ExpressionError:
            parts = None  # already reported as an expression that does not compile
        if parts is not None and not (len(parts) == 1 and isinstance(parts[0], tuple)):
            yield source.at_step(
                ("steps", key, "for_each"),
                f"for_each must be one ${{...}} expression giving a list, not {step.for_each!r}: "
                "e.g. for_each: ${input.items}",
            )
    for name in ("when", "condition"):
        value = getattr(step, name, None)
        if isinstance(value, str) and "${" not in value:
            yield source.at_step(
                ("steps", key, name),
                f"{name} is the plain text {value!r}, which is always true: write an expression "
                "such as ${steps.check.output.ok}, or true/false",
            )
    if step.output_path is not None:
        # The engine evaluates output_path over the result alone, with or without ${...} around.
        body = step.output_path.strip().removeprefix("${").removesuffix("}")
        try:
            compile_expression(body)
        except ExpressionError as exc:
            yield source.at_step(("steps", key, "output_path"), _compile_message(exc))


def _workflow_expressions(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    if workflow.output is not None:
        every = frozenset(workflow.steps)
        scope = _Scope(workflow, source, frozenset(OUTPUT_NAMES), None, every)
        for path, text in _strings(workflow.output, ("output",)):
            yield from _template(text, path, scope)
    # Trigger inputs are evaluated over the event (or nothing): only whether they compile.
    triggers: list[tuple[str, list[Any]]] = [
        ("events", [t.input for t in workflow.triggers.events]),
        ("schedules", [t.input for t in workflow.triggers.schedules]),
    ]
    for kind, inputs in triggers:
        for index, value in enumerate(inputs):
            for path, text in _strings(value, ("triggers", kind, index, "input")):
                for error in check(text):
                    yield source.at_step(path, _compile_message(error))


def _template(text: str, path: tuple[PathPart, ...], scope: _Scope) -> Iterator[Problem]:
    """Problems of one templated string: compile errors, then what its expressions read."""
    source = scope.source
    errors = check(text)
    if errors:
        for error in errors:
            yield source.at_step(path, _compile_message(error))
        return
    for expression in expressions_in(text):
        shown = f"${{{expression}}}"
        bare = _STRING.sub('""', expression)
        for name in sorted(_root_names(bare) - scope.names):
            yield source.at_step(path, _unknown_name(shown, name, scope.names, path))
        for ref in _named(_STEP_NAME, bare) if "steps" in scope.names else ():
            message = _step_reference(shown, ref, scope)
            if message:
                yield source.at_step(path, message)
        if "secrets" in scope.names:
            step = scope.workflow.steps[str(scope.step_id)]
            assert isinstance(step, HttpStep)
            for secret in _named(_SECRET_NAME, bare):
                if secret not in step.secrets:
                    yield source.at_step(
                        path,
                        f"{shown} reads secrets.{secret}, but the step declares no secret "
                        f"'{secret}': add it, e.g. secrets: {{{secret}: my-app/{secret.lower()}}}",
                    )


def _compile_message(error: ExpressionError) -> str:
    if error.reason == "no closing '}'":
        # ExpressionError shows the expression closed; here the point is that it is not.
        return f"${{{error.expression} has no closing '}}'"
    return str(error)


def _step_reference(shown: str, ref: str, scope: _Scope) -> str | None:
    steps = scope.workflow.steps
    if ref not in steps:
        return f"{shown} reads steps.{ref}, but there is no step '{ref}'" + _suggest(
            ref, list(steps), "steps"
        )
    if ref == scope.step_id:
        return f"{shown} reads steps.{ref}, the step's own output, which does not exist yet"
    if ref not in scope.readable:
        return (
            f"{shown} reads steps.{ref}, but '{scope.step_id}' does not depend on '{ref}' "
            f"(directly or through other steps): add '{ref}' to depends_on"
        )
    return None


def _unknown_name(shown: str, name: str, names: frozenset[str], path: tuple[PathPart, ...]) -> str:
    if name in ("item", "index"):
        if path[2:3] == ("for_each",):
            return f"{shown} reads {name}: for_each gives the items, so it cannot read one"
        if len(path) > 2 and path[2] in ONCE_FIELDS:
            return (
                f"{shown} reads {name}, but {path[2]} is evaluated once for the whole step, "
                "before there are items"
            )
        return f"{shown} reads {name}, which only exists in a step with for_each"
    listed = ", ".join(n for n in (*STEP_NAMES, "secrets") if n in names)
    return f"{shown} reads '{name}', which is not defined (expressions see {listed})" + _suggest(
        name, sorted(names), None
    )


def _root_names(expression: str) -> set[str]:
    """Names an expression reads from the top of its data (``input`` in ``input.x + 1``).

    Inside ``[...]``, ``{...}`` and ``.(...)`` names are relative to the current value
    (``input.items[price > 10]``), so those parts are left out, as are regex literals.
    """
    text = _REGEX.sub(" ", expression)
    kept: list[str] = []
    closers: list[str] = []  # the brackets still open in a left-out part
    last = ""
    for ch in text:
        if closers:
            if ch in _CLOSING:
                closers.append(_CLOSING[ch])
            elif ch == closers[-1]:
                closers.pop()
            kept.append(" ")
        elif ch in "[{" or (ch == "(" and last in (".", "^")):
            closers.append(_CLOSING[ch])
            kept.append(" ")
        else:
            kept.append(ch)
        if not ch.isspace():
            last = ch
    return {m.group(1) for m in _ROOT_NAME.finditer("".join(kept))} - _KEYWORDS


def _named(pattern: re.Pattern[str], expression: str) -> list[str]:
    return sorted({m.group(1).strip("`") for m in pattern.finditer(expression)})


def _strings(value: Any, path: tuple[PathPart, ...]) -> Iterator[tuple[tuple[PathPart, ...], str]]:
    """Every string holding ``${`` in a template value (mapping keys included), with its path."""
    if isinstance(value, str):
        if "${" in value:
            yield path, value
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from _strings(key, (*path, key))
            yield from _strings(item, (*path, key))
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            yield from _strings(item, (*path, index))


def _suggest(name: str, candidates: list[str], plural: str | None) -> str:
    match = difflib.get_close_matches(name, candidates, n=1)
    if match:
        return f"; did you mean '{match[0]}'?"
    if plural and candidates:
        return f"; the {plural} are: {', '.join(candidates)}"
    return ""


# -- JSON Schemas and time zones -----------------------------------------------------------


def _schemas(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    owners: list[tuple[tuple[PathPart, ...], Any]] = [((), workflow)]
    owners += [(("steps", key), step) for key, step in workflow.steps.items()]
    for where, owner in owners:
        for name in ("input_schema", "output_schema", "form"):
            schema = getattr(owner, name, None)
            if schema is None:
                continue
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                inside = tuple(exc.path)
                message = exc.message
                if inside[-1:] == ("type",):
                    message = (
                        f"{exc.instance!r} is not a JSON Schema type: use one of {_JSON_TYPES}"
                    )
                yield source.at_step((*where, name, *inside), f"not a valid JSON Schema: {message}")


@cache
def _zones() -> frozenset[str]:
    return frozenset(zoneinfo.available_timezones())


def _timezones(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    if not _zones():  # no time zone database on this machine: nothing to check against
        return
    for index, schedule in enumerate(workflow.triggers.schedules):
        if schedule.timezone not in _zones() and schedule.timezone != "UTC":
            yield source.at_step(
                ("triggers", "schedules", index, "timezone"),
                f"unknown time zone {schedule.timezone!r}"
                + (
                    _suggest(schedule.timezone, sorted(_zones()), None)
                    or ": write an IANA name such as Europe/Paris"
                ),
            )


MAX_LOOKBACK = timedelta(days=7)
"""The longest an event is kept for a wait that opens after it."""


def _event_waits(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """An event wait's correlations (a value the run has when the step starts), filters
    (which also see ``event``), schemas and durations."""
    every = ancestors(workflow)
    for key, step in workflow.steps.items():
        if not isinstance(step, EventStep):
            continue
        names = frozenset(STEP_NAMES if step.for_each is not None else OUTPUT_NAMES)
        for index, pattern in enumerate(step.patterns):
            at: tuple[PathPart, ...] = (
                ("steps", key, "event")
                if step.event is not None
                else ("steps", key, "events", index)
            )
            yield from _event_pattern(workflow, source, key, pattern, at, names, every[key])
        if step.lookback > MAX_LOOKBACK:
            yield source.at_step(
                ("steps", key, "lookback"),
                f"lookback {step.lookback} is longer than events are kept "
                f"({MAX_LOOKBACK.days} days): shorten it",
            )
        if step.timeout is not None and step.timeout <= timedelta(0):
            yield source.at_step(
                ("steps", key, "timeout"), "timeout must be longer than 0s, e.g. timeout: 2d"
            )


def _event_pattern(
    workflow: Workflow,
    source: SourceMap,
    key: str | None,
    pattern: EventPattern,
    at: tuple[PathPart, ...],
    names: frozenset[str],
    readable: frozenset[str],
) -> Iterator[Problem]:
    starting = _Scope(workflow, source, names, key, readable)
    known = (
        "known when the step starts: use the run's input or an earlier step's output"
        if key is not None
        else "known when the run starts: use the run's input or context"
    )
    for path, text in _strings(pattern.correlate.equals, (*at, "correlate", "equals")):
        for expression in expressions_in(text):
            if "event" in _root_names(_STRING.sub('""', expression)):
                yield source.at_step(
                    path,
                    f"${{{expression}}} reads the event, but the value to wait for must be "
                    f"{known}, e.g. ${{input.order_id}}; filter on the event with 'where'",
                )
                break
        else:
            yield from _template(text, path, starting)
    if pattern.where is not None:
        scope = _Scope(workflow, source, names | {"event"}, key, readable)
        yield from _template(pattern.where, (*at, "where"), scope)
    if pattern.schema_ is not None:
        try:
            Draft202012Validator.check_schema(pattern.schema_)
        except SchemaError as exc:
            yield source.at_step(
                (*at, "schema", *exc.path), f"not a valid JSON Schema: {exc.message}"
            )


FLOW_CONTROLS = ("concurrency", "singleton", "throttle", "debounce")
"""A workflow's flow-control fields, each a FlowControl; one of the first three at most."""


def _flow_control(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """A concurrency key and a priority are decided as a run starts, from its input alone."""
    fields: list[tuple[tuple[PathPart, ...], Any]] = []
    for name in FLOW_CONTROLS:
        control: FlowControl | None = getattr(workflow, name)
        if control is not None:
            for field, message in control.problems():
                yield source.at_step((name, field), message)
            fields.append(((name, "key"), control.key))
    keyed = [name for name in FLOW_CONTROLS[:3] if getattr(workflow, name) is not None]
    if len(keyed) > 1:
        yield source.at_step(
            (keyed[1],),
            f"a workflow has one of concurrency, singleton and throttle, not {' and '.join(keyed)}:"
            " keep one of them",
        )
    fields.append((("priority",), workflow.priority))
    yield from _input_only(fields, source, "as a run starts, from its input alone")


def _input_only(
    fields: list[tuple[tuple[PathPart, ...], Any]], source: SourceMap, when: str
) -> Iterator[Problem]:
    """Expressions decided ``when``, from the run's input alone."""
    for path, text in fields:
        if not isinstance(text, str):
            continue
        errors = check(text)
        for error in errors:
            yield source.at_step(path, _compile_message(error))
        for expression in [] if errors else expressions_in(text):
            for name in sorted(_root_names(_STRING.sub('""', expression)) - {"input"}):
                yield source.at_step(
                    path,
                    f"${{{expression}}} reads '{name}', but it is decided {when}: "
                    "read input.<field>",
                )


ATTEMPT_TYPES = frozenset({"task", "http", "notify", "agent", "shell", "aws", "workflow"})
"""Step types that run as attempts: the ones a step-level ``concurrency`` can limit."""


def _step_concurrency(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """A step's concurrency limits its attempts; its key is decided from the run's input."""
    for key, step in workflow.steps.items():
        if step.concurrency is None:
            continue
        at: tuple[PathPart, ...] = ("steps", key, "concurrency")
        if step.type not in ATTEMPT_TYPES:
            yield source.at_step(
                at,
                f"a {step.type} step runs no attempts for concurrency to limit: remove it, or "
                "limit the runs with the workflow's concurrency",
            )
            continue
        why = "for each attempt, from the run's input alone"
        yield from _input_only([((*at, "key"), step.concurrency.key)], source, why)


CANCEL_ON_NAMES = frozenset({"input", "context"})
"""What a cancel_on's correlation sees: the run's values as it starts (and as it ends, when
the engine takes its watch out of the index), never a step's output."""


def _cancel_on(workflow: Workflow, source: SourceMap) -> Iterator[Problem]:
    """The workflow's cancel_on: correlations over the run's input and context, filters (which
    also see ``event``) and schemas, located like a step's."""
    for index, pattern in enumerate(workflow.cancel_on):
        at: tuple[PathPart, ...] = ("cancel_on", index)
        yield from _event_pattern(workflow, source, None, pattern, at, CANCEL_ON_NAMES, frozenset())
