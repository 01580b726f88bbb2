"""``ctx.wait_for_event``'s step: the definition of an event wait as a YAML ``type: event``
step holds it, so the engine waits for it as it does for one (the index of open waits, the
kept events of its lookback, broadcast, de-duplication by the event's id)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Literal

from stepwell.code.specs import Duration, duration_text, put_duration


def event_pattern(
    name: str,
    source: str | None,
    detail_type: str | None,
    correlate: Mapping[str, Any] | None,
    where: str | None,
    schema: Mapping[str, Any] | None,
) -> dict[str, Any]:
    """One kind of event to wait for, as a YAML step's ``event`` holds it."""
    if source is None or detail_type is None or correlate is None:
        raise ValueError(
            f"wait_for_event {name!r}: give source, detail_type and correlate (e.g. "
            "correlate={'event': 'detail.order_id', 'equals': order_id}), or events=[...]"
        )
    found: dict[str, Any] = {
        "source": source,
        "detail_type": detail_type,
        "correlate": dict(correlate),
    }
    if where is not None:
        found["where"] = where
    if schema is not None:
        found["schema"] = dict(schema)
    return found


def event_spec(
    name: str,
    patterns: dict[str, Any] | Sequence[Mapping[str, Any]],
    lookback: Duration,
    timeout: Duration | None,
    on_timeout: Literal["fail", "continue"],
) -> dict[str, Any]:
    """The step's definition: one kind of event (a dict) or the first of several (a list)."""
    spec: dict[str, Any] = (
        {"event": patterns}
        if isinstance(patterns, dict)
        else {"events": [dict(p) for p in patterns]}
    )
    spec["lookback"] = duration_text(name, "lookback", lookback)
    spec["timeout"] = None
    put_duration(spec, name, "timeout", timeout)
    spec["on_timeout"] = on_timeout
    return spec
