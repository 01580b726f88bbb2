"""Durations as users write them: ``30s``, ``5m``, ``2h``, ``7d``, ``1h30m``, ISO 8601 ``PT5M``."""

from __future__ import annotations

import re
from datetime import timedelta
from typing import Annotated, Any

from pydantic import BeforeValidator, PlainSerializer, WithJsonSchema

_SHORT = re.compile(
    r"^\s*(?:(?P<d>\d+(?:\.\d+)?)d)?(?:(?P<h>\d+(?:\.\d+)?)h)?"
    r"(?:(?P<m>\d+(?:\.\d+)?)m(?!s))?(?:(?P<s>\d+(?:\.\d+)?)s)?"
    r"(?:(?P<ms>\d+)ms)?\s*$"
)
_ISO = re.compile(
    r"^P(?:(?P<w>\d+(?:\.\d+)?)W)?(?:(?P<d>\d+(?:\.\d+)?)D)?"
    r"(?:T(?:(?P<h>\d+(?:\.\d+)?)H)?(?:(?P<m>\d+(?:\.\d+)?)M)?(?:(?P<s>\d+(?:\.\d+)?)S)?)?$"
)

DURATION_HELP = "write a duration like 30s, 5m, 2h, 7d, 1h30m or ISO 8601 such as PT5M"


def parse_duration(value: Any) -> timedelta:
    """Parse a duration; raise ``ValueError`` with the accepted forms when it is not one."""
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise ValueError(f"{value!r} is not a duration: {DURATION_HELP}")
    if isinstance(value, int | float):
        if value < 0:
            raise ValueError(f"{value!r} is negative: {DURATION_HELP}")
        return timedelta(seconds=value)
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"{value!r} is not a duration: {DURATION_HELP}")
    text = value.strip()
    iso = _ISO.match(text.upper()) if text[:1] in "pP" else None
    if iso and any(iso.groupdict().values()):
        parts = {k: float(v) for k, v in iso.groupdict().items() if v}
        return timedelta(
            weeks=parts.get("w", 0),
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
        )
    short = _SHORT.match(text)
    if short and any(short.groupdict().values()):
        parts = {k: float(v) for k, v in short.groupdict().items() if v}
        return timedelta(
            days=parts.get("d", 0),
            hours=parts.get("h", 0),
            minutes=parts.get("m", 0),
            seconds=parts.get("s", 0),
            milliseconds=parts.get("ms", 0),
        )
    raise ValueError(f"{value!r} is not a duration: {DURATION_HELP}")


def format_duration(value: timedelta) -> str:
    """The shortest ``1h30m``-style text for a duration."""
    total = value.total_seconds()
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if total >= size:
            n = int(total // size)
            out.append(f"{n}{unit}")
            total -= n * size
    if total:
        out.append(f"{total:g}s")
    return "".join(out)


Duration = Annotated[
    timedelta,
    BeforeValidator(parse_duration),
    PlainSerializer(format_duration, return_type=str),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "string", "pattern": r"^(\d+(\.\d+)?(d|h|m|s|ms))+$|^P"},
                {"type": "number", "minimum": 0},
            ],
            "description": "A duration: 30s, 5m, 2h, 7d, 1h30m, ISO 8601 (PT5M) or seconds.",
        }
    ),
]
