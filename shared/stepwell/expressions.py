"""``${...}`` expressions: JSONata over input, steps, context, item, index and run.

A string that is exactly one ``${...}`` yields the expression's value (number, object, list);
a string with ``${...}`` among other text gets each result interpolated. Compiled expressions are
cached by their text, so a definition version compiles each expression once per process.
"""

from __future__ import annotations

import json
import re
import shlex
import threading
from collections.abc import Iterator, Mapping
from datetime import datetime
from typing import Any

import jsonata

_STEP_REF = re.compile(r"(?<![\w$.`])steps\s*\.\s*(`[^`]+`|[A-Za-z_][A-Za-z0-9_]*)")
_STEPS_WORD = re.compile(r"(?<![\w$.`])steps\b")


class ExpressionError(ValueError):
    """An expression that does not compile or fails to evaluate."""

    def __init__(self, expression: str, message: str) -> None:
        super().__init__(f"expression ${{{expression}}}: {message}")
        self.expression = expression
        self.reason = message


def _close(text: str, start: int) -> int:
    """Index of the ``}`` closing the ``${`` whose body starts at ``start`` (quotes respected)."""
    depth = 1
    i = start
    quote: str | None = None
    while i < len(text):
        ch = text[i]
        if quote:
            if ch == "\\":
                i += 1
            elif ch == quote:
                quote = None
        elif ch in "\"'`":
            quote = ch
        elif ch == "{":
            depth += 1
        elif ch == "}":
            depth -= 1
            if depth == 0:
                return i
        i += 1
    raise ExpressionError(text[start:], "no closing '}'")


def split_template(text: str) -> list[str | tuple[str]]:
    """Split a string into literal parts and ``(expression,)`` parts."""
    parts: list[str | tuple[str]] = []
    i = 0
    while True:
        j = text.find("${", i)
        if j < 0:
            if i < len(text):
                parts.append(text[i:])
            return parts
        if j > i:
            parts.append(text[i:j])
        end = _close(text, j + 2)
        parts.append((text[j + 2 : end].strip(),))
        i = end + 1


def expressions_in(value: Any) -> Iterator[str]:
    """Every expression held in a (nested) template value."""
    if isinstance(value, str):
        for part in split_template(value):
            if isinstance(part, tuple):
                yield part[0]
    elif isinstance(value, Mapping):
        for key, item in value.items():
            yield from expressions_in(key)
            yield from expressions_in(item)
    elif isinstance(value, list | tuple):
        for item in value:
            yield from expressions_in(item)


_CACHE: dict[str, Any] = {}
_CACHE_LOCK = threading.Lock()


def compile_expression(expression: str) -> Any:
    """Compile (once, cached) a JSONata expression; raise :class:`ExpressionError` if invalid."""
    compiled = _CACHE.get(expression)
    if compiled is not None:
        return compiled
    if not expression.strip():
        raise ExpressionError(expression, "the expression is empty")
    try:
        compiled = jsonata.Jsonata(expression)
        # The data always comes from JSON (API bodies, stored records): skip jsonata's walk over
        # the whole input on every evaluation, which would make each step cost O(run input).
        compiled.validate_input = False
    except Exception as exc:  # jsonata raises its own JException (a RuntimeError)
        raise ExpressionError(expression, str(exc)) from None
    nodes = list(_nodes(compiled.ast))
    if any(node.type == "variable" and node.value == "eval" for node in nodes):
        # A call, or the function as a value ($f := $eval).
        raise ExpressionError(
            expression,
            "$eval is not available: it evaluates text as an expression, so data (a run's "
            "input) could choose what runs; write the expression itself",
        )
    # Only a function it defines (recursion, a loop through a higher-order function) or a range
    # ([1..n]) can make an evaluation run away; any other is bounded by its size and the data's.
    compiled.may_run_away = any(
        node.type == "lambda" or (node.type == "binary" and node.value == "..") for node in nodes
    )
    with _CACHE_LOCK:
        _CACHE[expression] = compiled
    return compiled


def _nodes(tree: Any) -> Iterator[Any]:
    """Every node of a parsed expression (jsonata's own tree, walked by its fields)."""
    seen: set[int] = set()
    stack = [tree]
    while stack:
        node = stack.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, list | tuple):
            stack.extend(node)
        elif hasattr(node, "type"):
            yield node
            stack.extend(v for k, v in vars(node).items() if not k.startswith("_"))


TIME_LIMIT_MS = 5000
"""The longest one evaluation may run (a runaway loop, a huge ``$map``): it then fails like
any expression error. Far above what a template needs (milliseconds)."""
DEPTH_LIMIT = 500
"""The deepest one evaluation may nest (about 160 levels of a recursive function): it fails
before Python's own recursion limit could be reached."""


def bounded(compiled: Any, input: Any, bindings: Mapping[str, Any]) -> Any:
    """Evaluate a compiled expression with ``bindings``, bounded by :data:`TIME_LIMIT_MS` and
    :data:`DEPTH_LIMIT` (jsonata's Timebox, one per evaluation: its clock and depth counter
    belong to this evaluation, not to the compiled expression shared by threads). An
    expression that cannot run away is evaluated without it: the timebox's hooks on every node
    cost more than such an expression's evaluation."""
    if not compiled.may_run_away:
        return compiled.evaluate(input, bindings)
    frame = jsonata.Jsonata.Frame(None)
    jsonata.Timebox(frame, TIME_LIMIT_MS, DEPTH_LIMIT)
    # The timebox's hooks are bindings too; set last, so no variable can replace them.
    return compiled.evaluate(input, {**bindings, **frame.bindings})


def check(value: Any) -> list[ExpressionError]:
    """Compile every expression in a template value; return the failures."""
    errors: list[ExpressionError] = []
    try:
        for expression in expressions_in(value):
            try:
                compile_expression(expression)
            except ExpressionError as exc:
                errors.append(exc)
    except ExpressionError as exc:
        errors.append(exc)
    return errors


def evaluate(expression: str, data: Mapping[str, Any], now: datetime | None = None) -> Any:
    """Evaluate one expression over ``data``; ``$now()`` is the engine's ``now``, not a clock."""
    compiled = compile_expression(expression)
    bindings: dict[str, Any] = {}
    if now is not None:
        stamp = now.isoformat().replace("+00:00", "Z")
        millis = int(now.timestamp() * 1000)
        bindings["now"] = jsonata.Jsonata.JLambda(lambda *_: stamp)
        bindings["millis"] = jsonata.Jsonata.JLambda(lambda *_: millis)
    try:
        # Fresh bindings give each evaluation its own frame, so one compiled expression can be
        # evaluated from several threads at once.
        return bounded(compiled, dict(data), bindings)
    except Exception as exc:
        raise ExpressionError(expression, str(exc)) from None


def render(value: Any, data: Mapping[str, Any], now: datetime | None = None) -> Any:
    """Evaluate a template: expressions inside strings, recursively through dicts and lists."""
    if isinstance(value, str):
        if "${" not in value:
            return value
        parts = split_template(value)
        if len(parts) == 1 and isinstance(parts[0], tuple):
            return evaluate(parts[0][0], data, now)
        out = []
        for part in parts:
            if isinstance(part, tuple):
                result = evaluate(part[0], data, now)
                out.append(as_text(result))
            else:
                out.append(part)
        return "".join(out)
    if isinstance(value, Mapping):
        return {render(k, data, now): render(v, data, now) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [render(item, data, now) for item in value]
    return value


def as_text(value: Any) -> str:
    """A value as a template interpolates it into text (objects and lists as JSON)."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, int | float):
        return str(value)
    return json.dumps(value, separators=(",", ":"), default=str)


def split_words(command: str) -> list[str]:
    """A command line template split into the templates of its arguments, as a POSIX shell
    splits words (quotes, backslashes; nothing expanded), each ``${...}`` kept whole in its word:
    what an expression renders to is one argument, or part of one, never several (input cannot
    set argument boundaries). ValueError for an unbalanced quote, saying how to fix it."""
    masked: list[str] = []
    spans: dict[str, str] = {}
    for part in split_template(command):
        if isinstance(part, tuple):
            mark = f"\ue000{len(spans)}\ue001"
            spans[mark] = "${" + part[0] + "}"
            masked.append(mark)
        else:
            masked.append(part)
    try:
        words = shlex.split("".join(masked))
    except ValueError as exc:
        raise ValueError(
            f"{command!r} cannot be split into arguments ({str(exc).lower()}): close the quote, "
            "or write the command as a list of arguments"
        ) from None
    return [_MARK.sub(lambda m: spans[m.group(0)], word) for word in words]


_MARK = re.compile("\ue000[0-9]+\ue001")


def referenced_steps(value: Any) -> set[str] | None:
    """Step ids a template reads through ``steps.<id>``; ``None`` when it reads ``steps`` whole."""
    found: set[str] = set()
    for expression in expressions_in(value):
        named = {m.group(1).strip("`") for m in _STEP_REF.finditer(expression)}
        if len(_STEPS_WORD.findall(expression)) > len(list(_STEP_REF.finditer(expression))):
            return None
        found |= named
    return found


def truthy(value: Any) -> bool:
    """JSONata's boolean cast: empty strings, zero, empty lists/objects and null are false."""
    if isinstance(value, list):
        return any(truthy(v) for v in value)
    return bool(value)
