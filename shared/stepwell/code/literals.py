"""Arguments of ``ctx.*`` calls written as literals in a code-first file, checked before any run.

The code computes most of a step's arguments as it runs, so a mistake in them shows only when
the replay reaches the call (the run fails naming the step). Those written as literals can be
seen in the file's syntax tree: :func:`literal_problems` checks them with the same check the
call makes, and locates each problem at its line. A part the code computes is left to the run.
"""

from __future__ import annotations

import ast
from collections.abc import Callable, Iterator
from functools import partial
from typing import Any

from stepwell.code.specs import COMPUTED, concurrency_problem
from stepwell.definition.errors import Problem

TASK_CONCURRENCY = 6
"""The position of ``concurrency`` among ``ctx.task``'s arguments (after name, function,
input, retry, timeout, heartbeat)."""


def literal_problems(filename: str, source: str) -> list[Problem]:
    """A problem for each literal ``concurrency=`` of a ``.task(...)`` call that the call would
    refuse, at the argument's line and column."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return []  # the import says where (load_code_file)
    problems: list[Problem] = []
    for call, argument in _task_concurrency(tree):
        value = _value(argument)
        if value is COMPUTED or value is None:
            continue
        problem = concurrency_problem(value)
        if problem is not None:
            problems.append(
                Problem(
                    filename,
                    argument.lineno,
                    argument.col_offset + 1,
                    _step_name(call),
                    "concurrency",
                    f"{ast.get_source_segment(source, argument)}: {problem}",
                )
            )
    return problems


def _task_concurrency(tree: ast.Module) -> Iterator[tuple[ast.Call, ast.expr]]:
    """Each ``<context>.task(...)`` call that gives ``concurrency``, with that argument."""
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr == "task"
        ):
            continue
        if len(node.args) > TASK_CONCURRENCY:
            yield node, node.args[TASK_CONCURRENCY]
        for keyword in node.keywords:
            if keyword.arg == "concurrency":
                yield node, keyword.value


def _value(node: ast.expr) -> Any:
    """The argument as the call would get it, ``COMPUTED`` for what only the run knows (a
    pair's parts each on their own: ``(input["merchant"], 0)`` has a literal limit)."""
    if isinstance(node, ast.Tuple | ast.List):
        if any(isinstance(part, ast.Starred) for part in node.elts):
            return COMPUTED
        return tuple(_literal(part) for part in node.elts)
    return _literal(node)


def _literal(node: ast.expr) -> Any:
    try:
        return ast.literal_eval(node)
    except (ValueError, TypeError, SyntaxError, MemoryError, RecursionError):
        return COMPUTED


def _step_name(call: ast.Call) -> str | None:
    """The step's name when it is written as text."""
    named = call.args[0] if call.args else None
    for keyword in call.keywords:
        if keyword.arg == "name":
            named = keyword.value
    if isinstance(named, ast.Constant) and isinstance(named.value, str):
        return named.value
    return None


FUNCTION_AT = {"task": 1, "for_each": 1}
"""The calls that name a step function, with the position of ``function`` among their
arguments (after the step's name)."""


def functions_named(filename: str, source: str) -> list[tuple[str, Callable[[str], Problem]]]:
    """The step functions the file's ``.task(...)`` and ``.for_each(...)`` calls name as text,
    each with how to locate a problem about it (a name the code computes is left to the run)."""
    try:
        tree = ast.parse(source, filename)
    except (SyntaxError, ValueError):
        return []
    named: list[tuple[str, Callable[[str], Problem]]] = []
    for node in ast.walk(tree):
        if not (
            isinstance(node, ast.Call)
            and isinstance(node.func, ast.Attribute)
            and node.func.attr in FUNCTION_AT
        ):
            continue
        position = FUNCTION_AT[node.func.attr]
        argument = node.args[position] if len(node.args) > position else None
        for keyword in node.keywords:
            if keyword.arg == "function":
                argument = keyword.value
        if isinstance(argument, ast.Constant) and isinstance(argument.value, str):
            named.append((argument.value, partial(_problem, filename, node, argument)))
    return named


def _problem(filename: str, call: ast.Call, argument: ast.expr, message: str) -> Problem:
    return Problem(
        filename, argument.lineno, argument.col_offset + 1, _step_name(call), "function", message
    )
