"""JSON as Stepwell takes it in: strict, and nested at most :data:`MAX_DEPTH` levels.

Every JSON value that enters (an API body, a step's result, a callback's payload, an event a
trigger starts a run from) is checked once, where it enters, against one limit. Later stages
then never meet a value they cannot handle: templates wrap a value a few levels deeper in a
step's input or a run's output, and the view of a run, pydantic (about 250 levels), Python's
recursion (about 1,000) and JSONata all handle far more than the limit plus such wrapping.
"""

from __future__ import annotations

import json
import re
from typing import Any, ClassVar

MAX_DEPTH = 32
"""Levels of nested objects and arrays a value may have (``[[1]]`` has 2): DynamoDB's own
limit for a nested attribute, and more than any payload we have seen needs."""


class JsonTooDeep(ValueError):
    """A JSON value nests deeper than :data:`MAX_DEPTH` levels."""

    retryable: ClassVar[bool] = False

    def __init__(self, what: str, path: list[str | int]) -> None:
        self.path = path
        self.reason = (
            f"nests deeper than {MAX_DEPTH} levels, the most Stepwell keeps: flatten it, or "
            "pass the deep part as a JSON string"
        )
        where = "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in path)
        super().__init__(f"{what} {self.reason} (at {where.lstrip('.') or 'the top'})")


def too_deep(value: Any, limit: int = MAX_DEPTH) -> list[str | int] | None:
    """The path of the first object or array nested deeper than ``limit``, or None.

    Iterative (a value too deep for Python's recursion is still measured) and O(size).
    """
    # Each entry: (node, its depth counting itself if a container, link to its path).
    Link = tuple[str | int, Any] | None
    stack: list[tuple[Any, int, Link]] = [(value, 1, None)]
    while stack:
        node, depth, link = stack.pop()
        if isinstance(node, dict):
            children: Any = node.items()
        elif isinstance(node, list | tuple):
            children = enumerate(node)
        else:
            continue
        if depth > limit:
            path: list[str | int] = []
            while link is not None:
                key, link = link
                path.append(key)
            return path[::-1]
        stack.extend((child, depth + 1, (key, link)) for key, child in children)
    return None


def check(value: Any, what: str, limit: int = MAX_DEPTH) -> Any:
    """``value`` itself; :class:`JsonTooDeep` naming ``what`` when it nests too deep."""
    path = too_deep(value, limit)
    if path is not None:
        raise JsonTooDeep(what, path)
    return value


def parse(text: str, what: str = "the JSON", limit: int = MAX_DEPTH) -> Any:
    """``text`` as a JSON value Stepwell keeps (``limit``: one more for a request body, whose
    fields are the values). Raises :class:`JsonTooDeep`, or ValueError (with the position
    where it can tell) for anything else that is not such JSON: a syntax error, ``NaN`` and
    the infinities, a lone UTF-16 surrogate (no UTF-8 store holds one)."""

    def no_constant(name: str) -> Any:
        raise ValueError(f"{name} is not JSON")

    try:
        value = check(json.loads(text, parse_constant=no_constant), what, limit)
    except RecursionError:
        raise JsonTooDeep(what, []) from None
    if _SURROGATE.search(text):
        try:
            json.dumps(value, ensure_ascii=False).encode("utf-8")
        except UnicodeEncodeError:
            where = _SURROGATE.search(text)
            raise json.JSONDecodeError(
                "a string holds a lone UTF-16 surrogate (an escaped \\ud800-\\udfff without "
                "its pair), which is not Unicode text: send the character itself, or both halves",
                text,
                where.start() if where else 0,
            ) from None
    return value


_SURROGATE = re.compile(r"\\u[dD][89a-fA-F][0-9a-fA-F]{2}")
