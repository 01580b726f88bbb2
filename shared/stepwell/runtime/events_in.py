"""Events from the bus as event waits take them: an EventBridge event, checked where it enters,
in the shape a wait's output shows (``detail-type`` as ``detail_type``)."""

from __future__ import annotations

from typing import Any

from stepwell import intake
from stepwell.engine.commands import EVENT_ID_RESOURCE
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.store.event_waits import Arrival

FIELDS = ("id", "source", "detail-type", "time")


def is_bus_event(raw: Any) -> bool:
    """Whether ``raw`` is an EventBridge event (a rule's delivery)."""
    return isinstance(raw, dict) and all(isinstance(raw.get(name), str) for name in FIELDS)


def from_bus(raw: dict[str, Any]) -> dict[str, Any]:
    """The event as a wait sees it: id (its sender's own, when it carries one), source,
    detail_type, time, detail."""
    detail = intake.check(raw.get("detail", {}), "the event's detail")
    ids = [
        str(r)[len(EVENT_ID_RESOURCE) :]
        for r in raw.get("resources") or []
        if str(r).startswith(EVENT_ID_RESOURCE)
    ]
    return {
        "id": ids[0] if ids else raw["id"],
        "source": raw["source"],
        "detail_type": raw["detail-type"],
        "time": raw["time"],
        "detail": detail,
    }


def receive(orchestrator: Orchestrator, raw: dict[str, Any]) -> Arrival:
    """Keep an event from the bus for later waits and complete the open ones it matches."""
    return orchestrator.receive_event(from_bus(raw))
