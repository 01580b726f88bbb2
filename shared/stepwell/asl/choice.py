"""Choice rules of the Amazon States Language: ``Variable`` with a comparison, or
``And``/``Or``/``Not`` of rules, evaluated over the state's input."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stepwell.asl.paths import PathError, read

_ORDER: dict[str, Callable[[Any, Any], bool]] = {
    "Equals": lambda a, b: bool(a == b),
    "LessThan": lambda a, b: bool(a < b),
    "GreaterThan": lambda a, b: bool(a > b),
    "LessThanEquals": lambda a, b: bool(a <= b),
    "GreaterThanEquals": lambda a, b: bool(a >= b),
}
_KINDS = ("String", "Numeric", "Boolean", "Timestamp")
COMPARISONS = frozenset(
    [f"{kind}{op}{path}" for kind in _KINDS for op in _ORDER for path in ("", "Path")]
    + ["StringMatches", "IsNull", "IsPresent", "IsNumeric", "IsString", "IsBoolean", "IsTimestamp"]
)
"""Every comparison operator a rule may use (Boolean has Equals only; see :func:`check`)."""


def check(rule: dict[str, Any]) -> str | None:
    """Why ``rule`` is not a valid choice rule (None: it is)."""
    if "And" in rule or "Or" in rule:
        inner = rule.get("And", rule.get("Or"))
        if not isinstance(inner, list) or not inner:
            return "And / Or hold a non-empty list of rules"
        return next((p for r in inner if (p := check(r)) is not None), None)
    if "Not" in rule:
        return check(rule["Not"]) if isinstance(rule["Not"], dict) else "Not holds one rule"
    operators = [k for k in rule if k in COMPARISONS]
    if "Variable" not in rule or len(operators) != 1:
        return "a rule has a Variable and exactly one comparison operator (or And, Or, Not)"
    if operators[0].startswith("Boolean") and operators[0] not in (
        "BooleanEquals",
        "BooleanEqualsPath",
    ):
        return f"{operators[0]} is not an operator (Boolean has BooleanEquals only)"
    return None


def matches(rule: dict[str, Any], data: Any, context: dict[str, Any]) -> bool:
    """Whether ``rule`` holds for ``data``."""
    if "And" in rule:
        return all(matches(r, data, context) for r in rule["And"])
    if "Or" in rule:
        return any(matches(r, data, context) for r in rule["Or"])
    if "Not" in rule:
        return not matches(rule["Not"], data, context)
    (operator,) = [k for k in rule if k in COMPARISONS]
    expected = rule[operator]
    try:
        value = read(str(rule["Variable"]), data, context)
        present = True
    except PathError:
        value, present = None, False
    if operator == "IsPresent":
        return present == bool(expected)
    if not present:
        return False  # every other test of a missing variable is false (not an error)
    if operator.startswith("Is"):
        return _is(operator, value) == bool(expected)
    if operator.endswith("Path"):
        expected = read(str(expected), data, context)
        operator = operator[: -len("Path")]
    if operator == "StringMatches":
        return isinstance(value, str) and _glob(str(expected)).fullmatch(value) is not None
    kind = next(k for k in _KINDS if operator.startswith(k))
    compare = _ORDER[operator[len(kind) :]]
    if kind == "String":
        return isinstance(value, str) and isinstance(expected, str) and compare(value, expected)
    if kind == "Numeric":
        return _number(value) and _number(expected) and compare(value, expected)
    if kind == "Boolean":
        return isinstance(value, bool) and compare(value, expected)
    when, then = _time(value), _time(expected)
    return when is not None and then is not None and compare(when, then)


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        found = datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:
        return None
    return found if found.tzinfo is not None else None


def _is(operator: str, value: Any) -> bool:
    return {
        "IsNull": value is None,
        "IsNumeric": _number(value),
        "IsString": isinstance(value, str),
        "IsBoolean": isinstance(value, bool),
        "IsTimestamp": _time(value) is not None,
    }[operator]


def _glob(pattern: str) -> re.Pattern[str]:
    """StringMatches: ``*`` matches any run of characters; ``\\*`` a star itself."""
    parts = pattern.replace("\\\\", "\x00").split("\\*")
    translated = [
        ".*".join(re.escape(p.replace("\x00", "\\")) for p in part.split("*")) for part in parts
    ]
    return re.compile(re.escape("*").join(translated), re.S)
