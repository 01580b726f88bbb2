"""The types Step Functions' validator requires of a machine's fields (``"TimeoutSeconds":
"30"`` is refused when the machine is created, not when the state runs), the fields of a
retrier and a catcher, and the ``.$`` fields of payload templates (``Parameters``,
``ResultSelector``, ``ItemSelector``, ``BatchInput``): each a path or an intrinsic call that
parses."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

from stepwell.asl import intrinsics, paths
from stepwell.definition.errors import PathPart


@dataclass(frozen=True)
class Kind:
    """What a field holds, as the fix names it."""

    name: str
    holds: Callable[[Any], bool]


def _integer(least: int) -> Callable[[Any], bool]:
    return lambda v: isinstance(v, int) and not isinstance(v, bool) and v >= least


def _number(least: float, most: float | None = None) -> Callable[[Any], bool]:
    def holds(v: Any) -> bool:
        if not isinstance(v, int | float) or isinstance(v, bool):
            return False
        return v >= least and (most is None or v <= most)

    return holds


POSITIVE = Kind("a positive integer", _integer(1))
COUNT = Kind("an integer >= 0", _integer(0))
PERCENT = Kind("a number from 0 to 100", _number(0, 100))
RATE = Kind("a number >= 1.0", _number(1))
TEXT = Kind("a string", lambda v: isinstance(v, str))
TEXT_OR_NULL = Kind("a string or null", lambda v: v is None or isinstance(v, str))
FLAG = Kind("true or false", lambda v: isinstance(v, bool))
OBJECT = Kind("an object", lambda v: isinstance(v, dict))
LIST = Kind("a list", lambda v: isinstance(v, list))
NAMES = Kind(
    "a non-empty list of error names",
    lambda v: isinstance(v, list) and bool(v) and all(isinstance(n, str) for n in v),
)
JITTER = Kind('"FULL" or "NONE"', lambda v: v in ("FULL", "NONE"))

PATHS = (
    "InputPath",
    "OutputPath",
    "ResultPath",
    "ItemsPath",
    "SecondsPath",
    "TimestampPath",
    "TimeoutSecondsPath",
    "HeartbeatSecondsPath",
    "MaxConcurrencyPath",
    "ToleratedFailureCountPath",
    "ToleratedFailurePercentagePath",
    "ErrorPath",
    "CausePath",
)
STATE: dict[str, Kind] = {
    "Comment": TEXT,
    "Next": TEXT,
    "End": FLAG,
    "Default": TEXT,
    "Resource": TEXT,
    "TimeoutSeconds": POSITIVE,
    "HeartbeatSeconds": POSITIVE,
    "Seconds": COUNT,
    "Timestamp": TEXT,
    "MaxConcurrency": COUNT,
    "ToleratedFailureCount": COUNT,
    "ToleratedFailurePercentage": PERCENT,
    "Error": TEXT,
    "Cause": TEXT,
    "Label": TEXT,
    "ResultSelector": OBJECT,
    "ItemSelector": OBJECT,
    "Retry": LIST,
    "Catch": LIST,
    "Branches": LIST,
    "Choices": LIST,
} | {
    name: TEXT_OR_NULL if name in ("InputPath", "OutputPath", "ResultPath") else TEXT
    for name in PATHS
}
MACHINE: dict[str, Kind] = {
    "Comment": TEXT,
    "StartAt": TEXT,
    "Version": TEXT,
    "TimeoutSeconds": POSITIVE,
}
RETRIER: dict[str, Kind] = {
    "ErrorEquals": NAMES,
    "IntervalSeconds": POSITIVE,
    "MaxAttempts": COUNT,
    "BackoffRate": RATE,
    "MaxDelaySeconds": POSITIVE,
    "JitterStrategy": JITTER,
    "Comment": TEXT,
}
CATCHER: dict[str, Kind] = {
    "ErrorEquals": NAMES,
    "Next": TEXT,
    "ResultPath": TEXT_OR_NULL,
    "Comment": TEXT,
    "Assign": OBJECT,
    "Output": Kind("any JSON value", lambda v: True),
}
BATCHER: dict[str, Kind] = {
    "MaxItemsPerBatch": POSITIVE,
    "MaxInputBytesPerBatch": POSITIVE,
    "MaxItemsPerBatchPath": TEXT,
    "MaxInputBytesPerBatchPath": TEXT,
    "BatchInput": OBJECT,
}
TEMPLATES = ("Parameters", "ResultSelector", "ItemSelector")

Found = tuple[tuple[PathPart, ...], str]
"""Where in the state (its fields) and what is wrong there."""


def machine_types(document: dict[str, Any], language: str) -> Iterator[Found]:
    """The machine's own fields of the wrong type."""
    yield from _typed(document, MACHINE, (), language)


def state_types(state: dict[str, Any], language: str) -> Iterator[Found]:
    """A state's fields of the wrong type; its retriers' and catchers' fields (the unknown
    ones too); its ItemBatcher's."""
    yield from _typed(state, STATE, (), language)
    for list_name, fields, what in (("Retry", RETRIER, "retrier"), ("Catch", CATCHER, "catcher")):
        given = state.get(list_name)
        for index, entry in enumerate(given if isinstance(given, list) else []):
            at: tuple[PathPart, ...] = (list_name, index)
            if not isinstance(entry, dict):
                yield at, f"a {what} is an object with ErrorEquals"
                continue
            if "ErrorEquals" not in entry:
                yield at, f"a {what} needs ErrorEquals (a list of error names)"
            for key in entry:
                if key not in fields:
                    known = ", ".join(fields)
                    yield (*at, key), f"unknown field {key!r} of a {what} (fields: {known})"
            yield from _typed(entry, fields, at, language)
    batcher = state.get("ItemBatcher")
    if isinstance(batcher, dict):
        yield from _typed(batcher, BATCHER, ("ItemBatcher",), language)


def _typed(
    given: dict[str, Any], kinds: dict[str, Kind], at: tuple[PathPart, ...], language: str
) -> Iterator[Found]:
    for key, kind in kinds.items():
        if key not in given:
            continue
        value = given[key]
        if kind.holds(value) or (language == "JSONata" and _expression(value)):
            continue
        yield (*at, key), f"{key} must be {kind.name}, not {_shown(value)}{_fix(value, kind)}"


def _expression(value: Any) -> bool:
    return isinstance(value, str) and value.strip().startswith("{%")


def _shown(value: Any) -> str:
    if isinstance(value, str):
        return f"the string {value!r}"
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return "null"
    if isinstance(value, dict | list):
        return "an object" if isinstance(value, dict) else "a list"
    return repr(value)


def _fix(value: Any, kind: Kind) -> str:
    """A number written as a string: the fix is to drop the quotes."""
    if isinstance(value, str):
        try:
            number = float(value) if "." in value else int(value)
        except ValueError:
            return ""
        if kind.holds(number):
            return f" (write {value} without quotes)"
    return ""


def template_paths(state: dict[str, Any]) -> Iterator[Found]:
    """The ``.$`` fields of a state's payload templates that are not a path or an intrinsic
    call (``States.Format(...)``) that parses."""
    for name in TEMPLATES:
        if name in state:
            yield from _template(state[name], (name,))
    batcher = state.get("ItemBatcher")
    if isinstance(batcher, dict) and "BatchInput" in batcher:
        yield from _template(batcher["BatchInput"], ("ItemBatcher", "BatchInput"))


def _template(template: Any, at: tuple[PathPart, ...]) -> Iterator[Found]:
    if isinstance(template, list):
        for index, item in enumerate(template):
            yield from _template(item, (*at, index))
        return
    if not isinstance(template, dict):
        return
    for key, value in template.items():
        if not str(key).endswith(".$"):
            yield from _template(value, (*at, key))
        elif not isinstance(value, str):
            yield (*at, key), f"a .$ field holds a path or an intrinsic call, not {_shown(value)}"
        elif (why := reference(value)) is not None:
            yield (*at, key), why


def reference(value: str) -> str | None:
    """Why a ``.$`` value is neither a path nor an intrinsic call (None: it is one)."""
    if value.startswith("States."):
        return intrinsics.check(value, paths.check)
    return paths.check(value)
