"""JSONPath as the Amazon States Language uses it: reading a value (``InputPath``,
``OutputPath``, ``ItemsPath``, the ``.$`` fields of ``Parameters``), writing a result into the
state's input (``ResultPath``), and the payload templates with their intrinsic functions.

``$`` is the state's input; ``$$`` is the context object (``Execution``, ``State``,
``StateMachine``, ``Map``, ``Task``); ``$name`` is the variable ``name`` (set by ``Assign``;
the context dict holds the variables under :data:`VARIABLES`). Reading uses jsonpath-ng; a
path that matches nothing is the ``States.Runtime`` error Step Functions raises (as
:class:`PathError`). ``ResultPath`` is a reference path (``$.a.b``, ``$.a[0]``): only names
and indexes, no filters or wildcards.
"""

from __future__ import annotations

import copy
import json
import re
from collections.abc import Callable
from functools import cache
from typing import Any

from jsonpath_ng.exceptions import JsonPathParserError
from jsonpath_ng.ext.parser import parse as jsonpath

from stepwell.asl import intrinsics

VARIABLES = "$variables"
"""Where the context dict keeps the machine's variables (no context object field has a
``$``)."""
_VARIABLE = re.compile(r"^\$([A-Za-z_][A-Za-z0-9_]*)(.*)$", re.S)


def context_object(context: dict[str, Any]) -> dict[str, Any]:
    """The context object as a machine sees it (``$$``): without the variables kept beside it."""
    return {k: v for k, v in context.items() if k != VARIABLES}


class PathError(Exception):
    """A path matches nothing, or cannot be applied (Step Functions' ``States.Runtime``); its
    text is what Step Functions writes after the state's name in the error's Cause."""


class Unassigned(PathError):
    """A variable read before any ``Assign`` gave it a value."""


@cache
def _compiled(path: str) -> Any:
    try:
        # Step Functions' JSONPath reads ".[" as "[" ($.[0], $.[?(@.n > 0)]); jsonpath-ng
        # does not.
        return jsonpath(path.replace(".[", "["))
    except (JsonPathParserError, Exception) as exc:
        raise PathError(f"{path!r} is not a JSONPath ({exc})") from None


def check(path: str) -> str | None:
    """Why ``path`` is not a valid JSONPath of ASL (None: it is)."""
    if not path.startswith("$"):
        return "a path starts with $ (the input), $$ (the context object) or $name (a variable)"
    variable = _VARIABLE.match(path)
    if variable is not None:
        path = "$" + variable.group(2)
    try:
        _compiled(path[1:] if path.startswith("$$") else path)
    except PathError as exc:
        return str(exc)
    return None


def read_field(state: dict[str, Any], field: str, data: Any, context: dict[str, Any]) -> Any:
    """What a state's ``InputPath`` or ``OutputPath`` selects: ``data`` when it is not given,
    ``{}`` when it is ``null`` (the input or output discarded), else the path's value."""
    if field in state and state[field] is None:
        return {}
    return read(state.get(field), data, context)


def read(path: str | None, data: Any, context: dict[str, Any]) -> Any:
    """The value ``path`` selects (``None`` path: ``data`` itself, as ASL's default ``$``). A
    path that can select several values (``[*]``, a slice, a filter) selects a list, empty
    when nothing matches; one that names a single value and finds none is a PathError worded
    as Step Functions words it (``Invalid path '$.a' : No results for path: $['a']``)."""
    if path is None or path == "$":
        return data
    written, source = path, data
    variable = _VARIABLE.match(path)
    if path.startswith("$$"):
        source, path = context, "$" + path[2:]
        if path == "$":
            return context_object(context)
    elif variable is not None:
        name, path = variable.group(1), "$" + variable.group(2)
        variables = context.get(VARIABLES) or {}
        if name not in variables:
            raise Unassigned(f"the variable ${name} is not assigned (Assign sets it)")
        source = variables[name]
        if path == "$":
            return source
    matches = _compiled(path).find(source)
    if _selects_many(path):
        return [m.value for m in matches]
    if not matches:
        raise PathError(f"Invalid path '{written}' : {_not_found(path, source)}")
    return matches[0].value if len(matches) == 1 else [m.value for m in matches]


def _not_found(path: str, source: Any) -> str:
    """Why a path naming one value finds none, as Step Functions' JSONPath library says it: a
    property missing on the way (``Missing property in path $['a']``), or at its end (``No
    results for path: $['a']['b']``)."""
    try:
        parts = reference(path)
    except PathError:
        return f"No results for path: {path}"
    node, shown = source, "$"
    for at, part in enumerate(parts):
        shown += f"[{part}]" if isinstance(part, int) else f"['{part}']"
        found = (
            isinstance(node, list) and isinstance(part, int) and -len(node) <= part < len(node)
        ) or (isinstance(node, dict) and part in node)
        if not found:
            last = at == len(parts) - 1
            return f"No results for path: {shown}" if last else f"Missing property in path {shown}"
        node = node[part]
    return f"No results for path: {shown}"


def _selects_many(path: str) -> bool:
    return any(token in path for token in ("[*]", "..", "[?", ":"))


_STEP = re.compile(r"\.([A-Za-z_$][\w$-]*)|\['([^']*)'\]|\[(\d+)\]")


def reference(path: str) -> list[str | int]:
    """``$.a.b[0]`` -> ``["a", "b", 0]``; PathError for anything but names and indexes."""
    if not path.startswith("$"):
        raise PathError(f"ResultPath {path!r} must start with $")
    rest, parts = path[1:], []
    while rest:
        found = _STEP.match(rest)
        if found is None:
            raise PathError(f"ResultPath {path!r} is not a reference path (names and indexes)")
        name, quoted, index = found.groups()
        parts.append(int(index) if index is not None else (name if name is not None else quoted))
        rest = rest[found.end() :]
    return parts


def check_reference(path: str) -> str | None:
    """Why ``path`` cannot be a ResultPath (None: it can)."""
    try:
        reference(path)
    except PathError as exc:
        return str(exc)
    return None


def result_path(state: dict[str, Any]) -> str | None:
    """A state's (or a catcher's) ResultPath as :func:`write` takes it (``"null"``: JSON
    null, the input goes on unchanged; None: no ResultPath, the result replaces the input)."""
    if "ResultPath" in state and state["ResultPath"] is None:
        return "null"
    value = state.get("ResultPath")
    return None if value is None else str(value)


def write(path: str | None, data: Any, result: Any) -> Any:
    """``data`` with ``result`` placed at ``path`` (``$``: the result replaces the input;
    JSON ``null`` ResultPath, given as the string ``"null"``: the input goes on unchanged)."""
    if path == "null":
        return data
    if path is None or path == "$":
        return result
    parts = reference(path)
    root = copy.deepcopy(data) if isinstance(data, dict | list) else {}
    node: Any = root
    for at, part in enumerate(parts):
        last = at == len(parts) - 1
        if isinstance(part, int):
            if not isinstance(node, list) or part >= len(node):
                raise PathError(f"ResultPath {path!r}: no item {part} to write into")
            if last:
                node[part] = result
            else:
                node = node[part]
            continue
        if not isinstance(node, dict):
            raise PathError(f"ResultPath {path!r}: {part!r} is not in an object")
        if last:
            node[part] = result
        else:
            if not isinstance(node.get(part), dict | list):
                node[part] = {}
            node = node[part]
    return root


Draw = Callable[[], float] | None
"""The run's deterministic random source, for States.UUID and States.MathRandom."""


def render(template: Any, data: Any, context: dict[str, Any], draw: Draw = None) -> Any:
    """A payload template (``Parameters``, ``ResultSelector``, ``ItemSelector``): fields whose
    name ends in ``.$`` take the value of their path or intrinsic function; the rest are
    copied as they are."""
    if isinstance(template, dict):
        out: dict[str, Any] = {}
        for key, value in template.items():
            if key.endswith(".$"):
                if not isinstance(value, str):
                    raise PathError(f"field {key!r}: a .$ field holds a path or a function")
                out[key[:-2]] = field_value(key, value, data, context, draw)
            else:
                out[key] = render(value, data, context, draw)
        return out
    if isinstance(template, list):
        return [render(item, data, context, draw) for item in template]
    return template


def field_value(
    field: str, text: str, data: Any, context: dict[str, Any], draw: Draw = None
) -> Any:
    """The value of a field that holds a path or an intrinsic call (a ``.$`` field,
    ``ErrorPath``, ``CausePath``); a path that finds nothing is worded as Step Functions words
    it for such a field."""
    try:
        return evaluate(text, data, context, draw)
    except Unassigned:
        raise
    except PathError:
        if text.startswith("States."):
            raise
        searched = context_object(context) if text.startswith("$$") else data
        shown = json.dumps(searched, separators=(",", ":"))
        raise PathError(
            f"The JSONPath '{text}' specified for the field '{field}' could not be found in "
            f"the input '{shown}'"
        ) from None


def evaluate(text: str, data: Any, context: dict[str, Any], draw: Draw = None) -> Any:
    """A ``.$`` value: a path, or an intrinsic function (``States.Format(...)``)."""
    if text.startswith("States."):
        return intrinsics.call(text, lambda path: read(path, data, context), draw)
    return read(text, data, context)
