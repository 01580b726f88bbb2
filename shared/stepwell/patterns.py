"""EventBridge event patterns, matched as EventBridge matches them.

Supported: exact values, ``prefix``, ``suffix``, ``anything-but`` (a value, a list, or a
``prefix``/``suffix``), ``numeric`` ranges, ``exists``, ``wildcard``, ``equals-ignore-case``,
nested objects, arrays in the event (any element may match) and ``$or``.
"""

from __future__ import annotations

import operator
import re
from collections.abc import Callable
from functools import cache
from typing import Any

_MISSING = object()
_NUMERIC: dict[str, Callable[[float, float], bool]] = {
    "=": operator.eq,
    "<": operator.lt,
    "<=": operator.le,
    ">": operator.gt,
    ">=": operator.ge,
}


def matches(pattern: dict[str, Any], event: Any) -> bool:
    """True when ``event`` matches ``pattern``."""
    if not isinstance(pattern, dict):
        return False
    for key, rule in pattern.items():
        if key == "$or":
            if not any(matches(branch, event) for branch in rule):
                return False
            continue
        value = event.get(key, _MISSING) if isinstance(event, dict) else _MISSING
        if isinstance(rule, dict):
            if value is _MISSING or not _match_object(rule, value):
                return False
        elif isinstance(rule, list):
            if not _match_list(rule, value):
                return False
        else:
            return False
    return True


def _match_object(rule: dict[str, Any], value: Any) -> bool:
    if isinstance(value, list):
        return any(matches(rule, item) for item in value)
    return matches(rule, value)


def _match_list(rules: list[Any], value: Any) -> bool:
    values = value if isinstance(value, list) else [value]
    if value is _MISSING:
        return any(isinstance(r, dict) and r.get("exists") is False for r in rules)
    for rule in rules:
        if isinstance(rule, dict) and "exists" in rule:
            if rule["exists"] is True:
                return True
            continue
        if any(_match_one(rule, v) for v in values):
            return True
    return False


def _match_one(rule: Any, value: Any) -> bool:
    if not isinstance(rule, dict):
        if isinstance(rule, bool) or isinstance(value, bool):
            return rule is value
        if isinstance(rule, int | float) and isinstance(value, int | float):
            return float(rule) == float(value)
        return bool(rule == value)
    ((kind, arg),) = rule.items()
    if kind == "prefix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().startswith(
                arg["equals-ignore-case"].lower()
            )
        return isinstance(value, str) and value.startswith(arg)
    if kind == "suffix":
        if isinstance(arg, dict):
            return isinstance(value, str) and value.lower().endswith(
                arg["equals-ignore-case"].lower()
            )
        return isinstance(value, str) and value.endswith(arg)
    if kind == "equals-ignore-case":
        return isinstance(value, str) and value.lower() == str(arg).lower()
    if kind == "wildcard":
        return isinstance(value, str) and _wildcard(str(arg)).fullmatch(value) is not None
    if kind == "numeric":
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        pairs = list(zip(arg[::2], arg[1::2], strict=True))
        return all(_NUMERIC[op](float(value), float(bound)) for op, bound in pairs)
    if kind == "anything-but":
        if isinstance(arg, dict):
            return not _match_one(arg, value)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_one(e, value) for e in excluded)
    raise ValueError(f"unsupported event pattern operator {kind!r}")


@cache
def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)
