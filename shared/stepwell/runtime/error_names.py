"""The error names a step can fail with: what ``retry_on``, ``non_retryable`` and ``catch``
can match.

A failure is named by the engine (a timeout, a lost attempt, a rejected approval ...), by a
built-in step kind (``runtime.builtins.ERROR_NAMES``, and Bedrock's own errors for agent steps),
by Lambda (an invocation that died: ``Sandbox.Timedout``, ``Runtime.ExitError`` ...), or, for a
task, by the class name of the exception its function raised: a class its module defines or
imports, or one of Python's. :func:`step_errors` gathers those of one step, so ``stepwell
validate`` can warn about a name no failure of that step will ever carry.
"""

from __future__ import annotations

import ast
import builtins
import dataclasses
import difflib
from collections.abc import Callable, Collection, Iterator
from functools import cache
from pathlib import Path

from stepwell.definition.errors import PathPart, Problem, SourceMap
from stepwell.definition.models import (
    AgentStep,
    AwsStep,
    CallbackStep,
    Retry,
    Step,
    TaskStep,
    Workflow,
)
from stepwell.runtime.builtins import ERROR_NAMES as BUILTIN_ERROR_NAMES

ANY_STEP = frozenset(
    {"StepTimedOut", "AttemptLost", "ExpressionError", "InputSchemaError", "OutputSchemaError"}
)
"""What the engine names a failure of any step: an attempt's timeout, attempts that gave no
result, an expression that fails, an input or output its schema refuses."""
DISPATCHED = frozenset({"DispatchFailed"})
"""An attempt whose invocation could not be sent."""
BY_TYPE = {
    "approval": frozenset(
        {
            "ApprovalRejected",
            "ApprovalTimedOut",
            "ApprovalEscalated",
            "UnknownGroup",
            "QuorumUnreachable",
        }
    ),
    "input": frozenset({"InputTimedOut", "UnknownGroup", "NoAssignees"}),
    "workflow": frozenset({"ChildRunFailed"}),
    "delay": frozenset({"InvalidUntil"}),
    "event": frozenset({"EventTimedOut", "InvalidCorrelation"}),
}
"""What the engine names the failures of a step type's own waits."""
FOR_EACH = frozenset({"ForEachFailed", "ForEachNotAList"})
"""A fan-out that failed past its tolerance, or whose for_each gave no list."""
HEARTBEAT = frozenset({"HeartbeatTimedOut"})
LAMBDA = frozenset({"LambdaError", "LambdaRetriesExhausted", "LambdaEventAgeExceeded"})
"""A step function's invocation that failed outside its code (its on-failure record)."""
LAMBDA_PREFIXES = ("Runtime.", "Sandbox.")
"""Lambda's own error types of an invocation that died (``Runtime.ExitError``...)."""
PYTHON = frozenset(
    name
    for name, value in vars(builtins).items()
    if isinstance(value, type) and issubclass(value, BaseException)
)
"""Python's exceptions, which any function may raise (``KeyError``, ``TimeoutError`` ...)."""

FunctionErrors = Callable[[str], frozenset[str] | None]
"""A function's (logical id or ARN) exception names; None when they cannot be known (an ARN,
another runtime, a module that is not there)."""


def step_errors(step: Step, function_errors: FunctionErrors) -> frozenset[str] | None:
    """Every name a failure of ``step`` can carry; None when any name can come (a callback is
    answered with the caller's error, a function's module cannot be read, a service answers
    codes its model does not list)."""
    if isinstance(step, CallbackStep | AwsStep):
        return None
    names = set(ANY_STEP) | BY_TYPE.get(step.type, frozenset())
    if step.for_each is not None:
        names |= FOR_EACH
    if isinstance(step, TaskStep):
        raised = function_errors(step.function)
        if raised is None:
            return None
        names |= raised | PYTHON | LAMBDA | DISPATCHED
        if step.heartbeat is not None:
            names |= HEARTBEAT
    elif step.type in BUILTIN_ERROR_NAMES:
        names |= set(BUILTIN_ERROR_NAMES[step.type]) | DISPATCHED
        if isinstance(step, AgentStep):
            names |= bedrock_errors()
    return frozenset(names)


def compensation_errors(function: str, function_errors: FunctionErrors) -> frozenset[str] | None:
    """The names a failure of a compensation (a task of ``function``) can carry."""
    raised = function_errors(function)
    if raised is None:
        return None
    return frozenset(ANY_STEP | raised | PYTHON | LAMBDA | DISPATCHED)


def known(name: str, names: frozenset[str]) -> bool:
    """Whether ``name`` is one a failure can carry (``*`` is any)."""
    return name == "*" or name in names or name.startswith(LAMBDA_PREFIXES)


@cache
def bedrock_errors() -> frozenset[str]:
    """Bedrock Runtime's modeled errors (an agent step's failure keeps their names), read from
    botocore's service model."""
    import botocore.session

    model = botocore.session.get_session().get_service_model("bedrock-runtime")
    return frozenset(shape.name for shape in model.error_shapes) | {"ClientError"}


def module_errors(module: Path) -> frozenset[str] | None:
    """The exception names a function's module can raise by class name: the classes it and the
    modules of its folder it imports (in turn) define, and the names it imports (an exception
    from a library). None when the module cannot be read."""
    folder = module.parent
    seen: set[Path] = set()
    names: set[str] = set()
    todo = [module]
    while todo:
        path = todo.pop()
        if path in seen:
            continue
        seen.add(path)
        try:
            tree = ast.parse(path.read_text(encoding="utf-8"), str(path))
        except (OSError, SyntaxError, ValueError):
            if path == module:
                return None
            continue
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef):
                names.add(node.name)
            elif isinstance(node, ast.ImportFrom):
                names.update(alias.asname or alias.name for alias in node.names)
                if node.module and node.level <= 1:  # absolute, or from this folder
                    todo.extend(_sibling(folder, node.module))
            elif isinstance(node, ast.Import):
                for alias in node.names:
                    todo.extend(_sibling(folder, alias.name))
    return frozenset(names)


def _sibling(folder: Path, dotted: str) -> list[Path]:
    """The module of ``folder`` an import names, if there is one (a library's is not read)."""
    base = folder.joinpath(*dotted.split("."))
    return [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]


def unknown_names(
    workflow: Workflow,
    source: SourceMap,
    function_errors: FunctionErrors,
    skip: Collection[str] = (),
) -> list[Problem]:
    """A warning for each name in a step's ``retry_on``, ``non_retryable`` or ``catch`` (and its
    compensation's retry) that no failure of the step can carry; steps in ``skip`` are left out
    (stand-ins for steps that could not be built)."""
    warnings: list[Problem] = []
    for key, step in workflow.steps.items():
        if key in skip:
            continue
        lists: list[tuple[tuple[PathPart, ...], list[str], frozenset[str] | None]] = []
        names = step_errors(step, function_errors)
        lists += _retry_lists(("steps", key, "retry"), step.retry, names)
        lists += [
            (("steps", key, "catch", index, "errors"), rule.errors, names)
            for index, rule in enumerate(step.catch)
        ]
        undo = step.undo
        if undo is not None:
            where = ("steps", key, "compensate", "retry")
            undo_names = compensation_errors(undo.function, function_errors)
            lists += _retry_lists(where, undo.retry, undo_names)
        for path, given, possible in lists:
            if possible is not None:
                warnings.extend(_warnings(source, path, given, possible, step))
    return warnings


def _retry_lists(
    where: tuple[PathPart, ...], retry: Retry | None, names: frozenset[str] | None
) -> list[tuple[tuple[PathPart, ...], list[str], frozenset[str] | None]]:
    if retry is None:
        return []
    return [
        ((*where, "retry_on"), retry.retry_on, names),
        ((*where, "non_retryable"), retry.non_retryable, names),
    ]


def _warnings(
    source: SourceMap,
    path: tuple[PathPart, ...],
    given: list[str],
    possible: frozenset[str],
    step: Step,
) -> Iterator[Problem]:
    for index, name in enumerate(given):
        if known(name, possible):
            continue
        hint = _closest(name, possible)
        problem = source.at_step(
            (*path, index), f"no failure of this step is named '{name}'{hint} ({_whose(step)})"
        )
        yield dataclasses.replace(problem, warning=True)


def _closest(name: str, possible: frozenset[str]) -> str:
    close = difflib.get_close_matches(name, sorted(possible), n=1, cutoff=0.7)
    return f"; did you mean '{close[0]}'?" if close else ""


def _whose(step: Step) -> str:
    """Where the names a step fails with come from, for a person."""
    common = "besides StepTimedOut and the other errors of any step"
    if isinstance(step, TaskStep):
        return (
            "its function's module defines or imports no exception of that name, and Python "
            f"and Lambda have none; {common}"
        )
    own = set(BUILTIN_ERROR_NAMES.get(step.type, ())) | BY_TYPE.get(step.type, frozenset())
    if step.for_each is not None:
        own |= FOR_EACH
    listed = ", ".join(sorted(own))
    if isinstance(step, AgentStep):
        listed += ", Bedrock's errors (ThrottlingException ...)"
    if not own:
        return f"a {step.type} step fails with the errors of any step alone (StepTimedOut ...)"
    article = "an" if step.type[0] in "aeiouh" else "a"  # an http, an approval
    return f"{article} {step.type} step fails with {listed}, {common}"


MACHINE_PREFIXES = ("States.", "Lambda.")
"""The names Step Functions gives (``States.Timeout``, ``Lambda.ServiceException`` ...)."""


def machine_unknown_names(path: Path, function_errors: FunctionErrors) -> list[Problem]:
    """A warning for each name in a Task's ``Retry`` or ``Catch`` ``ErrorEquals`` that no
    failure of its function can carry (a Task waiting for a token is answered with any)."""
    from stepwell.asl.loader import function_tasks

    source, tasks = function_tasks(path)
    warnings: list[Problem] = []
    for task in tasks:
        raised = function_errors(task.function)
        if task.token or raised is None:
            continue
        possible = raised | PYTHON | LAMBDA | ANY_STEP | HEARTBEAT | DISPATCHED
        for field in ("Retry", "Catch"):
            rules = task.spec.get(field)
            for index, rule in enumerate(rules if isinstance(rules, list) else []):
                names = rule.get("ErrorEquals") if isinstance(rule, dict) else None
                for at, name in enumerate(names if isinstance(names, list) else []):
                    if str(name).startswith(MACHINE_PREFIXES) or known(str(name), possible):
                        continue
                    hint = _closest(str(name), possible)
                    where = (*task.at, field, index, "ErrorEquals", at)
                    problem = source.problem(
                        where,
                        f"no failure of this state is named '{name}'{hint} (its function's module "
                        "defines or imports no exception of that name, and Python, Lambda and "
                        "Step Functions have none)",
                        step=task.state,
                        field=f"{field}[{index}].ErrorEquals[{at}]",
                    )
                    warnings.append(dataclasses.replace(problem, warning=True))
    return warnings
