"""EventBridge event patterns, matched as EventBridge matches them.

Supported: exact values, ``prefix``, ``suffix``, ``anything-but`` (a value, a list, or a
``prefix``/``suffix``/``wildcard``/``equals-ignore-case``), ``numeric`` ranges, ``exists``,
``wildcard``, ``equals-ignore-case``, ``cidr``, nested objects, arrays in the event (any element
may match) and ``$or``. :func:`check` refuses what EventBridge's PutRule refuses, with its
reason.
"""

from __future__ import annotations

import ipaddress
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
    if kind == "cidr":
        return isinstance(value, str) and _in_network(value, str(arg))
    if kind == "anything-but":
        if isinstance(arg, dict):
            ((inner, texts),) = arg.items()
            options = texts if isinstance(texts, list) else [texts]
            return not any(_match_one({inner: text}, value) for text in options)
        excluded = arg if isinstance(arg, list) else [arg]
        return not any(_match_one(e, value) for e in excluded)
    raise ValueError(f"unsupported event pattern operator {kind!r}")


def _in_network(value: str, network: str) -> bool:
    try:
        return ipaddress.ip_address(value) in ipaddress.ip_network(network, strict=False)
    except ValueError:  # the event's value is not an IP address
        return False


@cache
def _wildcard(text: str) -> re.Pattern[str]:
    return re.compile(".*".join(re.escape(part) for part in text.split("*")), re.DOTALL)


# -- what PutRule accepts -----------------------------------------------------------------------


class InvalidPattern(ValueError):
    """An event pattern EventBridge refuses; the message is its reason."""


_RANGE_OPENERS = {">", ">="}
_RANGE_CLOSERS = {"<", "<="}


def check(pattern: Any) -> None:
    """Raise InvalidPattern (naming the field) unless ``pattern`` is an event pattern
    EventBridge accepts: an object of non-empty objects and non-empty arrays of values and
    one-key match expressions."""
    if not isinstance(pattern, dict):
        raise InvalidPattern("Filter is not an object")
    _check_object(pattern, "")


def _check_object(pattern: dict[str, Any], path: str) -> None:
    if not pattern:
        raise InvalidPattern(f"Empty objects are not allowed{_at(path)}")
    for key, rule in pattern.items():
        if key == "$or":
            if not isinstance(rule, list) or len(rule) < 2:
                raise InvalidPattern(f"$or takes an array of at least 2 objects{_at(path)}")
            for branch in rule:
                if not isinstance(branch, dict):
                    raise InvalidPattern(f"Only JSON objects are allowed in $or{_at(path)}")
                _check_object(branch, path)
            continue
        where = f"{path}.{key}" if path else key
        if isinstance(rule, dict):
            _check_object(rule, where)
        elif isinstance(rule, list):
            if not rule:
                raise InvalidPattern(f"Empty arrays are not allowed{_at(where)}")
            for value in rule:
                _check_value(value, where)
        else:
            raise InvalidPattern(f'"{key}" must be an object or an array{_at(path)}')


def _check_value(value: Any, where: str) -> None:
    if value is None or isinstance(value, str | int | float | bool):
        return
    if not isinstance(value, dict):
        raise InvalidPattern(
            f"Match value must be String, number, true, false, or null{_at(where)}"
        )
    if len(value) != 1:
        raise InvalidPattern(f"Only one key allowed in match expression{_at(where)}")
    ((kind, arg),) = value.items()
    if kind in ("prefix", "suffix"):
        if isinstance(arg, dict) and set(arg) == {"equals-ignore-case"}:
            arg = arg["equals-ignore-case"]
        _string(kind, arg, where)
    elif kind in ("wildcard", "equals-ignore-case"):
        _string(kind, arg, where)
    elif kind == "cidr":
        _string(kind, arg, where)
        try:
            ipaddress.ip_network(arg, strict=False)
        except ValueError:
            raise InvalidPattern(f"Malformed CIDR {arg!r}{_at(where)}") from None
    elif kind == "exists":
        if not isinstance(arg, bool):
            raise InvalidPattern(f"exists match pattern must be either true or false.{_at(where)}")
    elif kind == "numeric":
        _check_numeric(arg, where)
    elif kind == "anything-but":
        _check_anything_but(arg, where)
    else:
        raise InvalidPattern(f"Unrecognized match type {kind}{_at(where)}")


def _string(kind: str, arg: Any, where: str) -> None:
    if not isinstance(arg, str):
        raise InvalidPattern(f"{kind} match pattern must be a string{_at(where)}")


def _number(arg: Any) -> bool:
    return isinstance(arg, int | float) and not isinstance(arg, bool)


def _check_numeric(arg: Any, where: str) -> None:
    """``[op, n]`` or ``[>/>=, n, </<=, m]``."""
    if not isinstance(arg, list) or len(arg) not in (2, 4):
        raise InvalidPattern(
            f"Value of numeric must be an array of an operator and a number, or a range "
            f'such as [">", 0, "<=", 5]{_at(where)}'
        )
    for op, bound in zip(arg[::2], arg[1::2], strict=True):
        if op not in _NUMERIC:
            raise InvalidPattern(f"Unrecognized numeric range operator: {op}{_at(where)}")
        if not _number(bound):
            raise InvalidPattern(f"Value of {op} must be numeric{_at(where)}")
    if len(arg) == 4 and (arg[0] not in _RANGE_OPENERS or arg[2] not in _RANGE_CLOSERS):
        raise InvalidPattern(
            f"A numeric range is > or >= a number, then < or <= a number{_at(where)}"
        )


def _check_anything_but(arg: Any, where: str) -> None:
    if isinstance(arg, dict):
        if len(arg) != 1:
            raise InvalidPattern(f"Only one key allowed in match expression{_at(where)}")
        ((kind, inner),) = arg.items()
        if kind not in ("prefix", "suffix", "wildcard", "equals-ignore-case"):
            raise InvalidPattern(f"Unsupported anything-but pattern: {kind}{_at(where)}")
        values = inner if isinstance(inner, list) else [inner]
        for text in values:
            _string(kind, text, where)
        return
    values = arg if isinstance(arg, list) else [arg]
    if not values or not (
        all(isinstance(v, str) for v in values) or all(_number(v) for v in values)
    ):
        raise InvalidPattern(
            "Value of anything-but must be a string, a number, or an array of strings or of "
            f"numbers (not mixed){_at(where)}"
        )


def _at(path: str) -> str:
    return f" (at {path})" if path else ""
