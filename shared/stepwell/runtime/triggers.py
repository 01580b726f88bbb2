"""Starting runs from EventBridge events and schedules.

Each trigger in template.yaml delivers ``{"workflow": NAME, "event": <the event>}`` (an
EventBridge rule with an input transformer) or ``{"workflow": NAME, "input": ..., "schedule":
true}`` (a schedule). The run id derives from the event id, so a redelivered event (EventBridge
delivers at least once) starts one run, not two.
"""

from __future__ import annotations

import hashlib
from typing import Any

from stepwell import expressions, intake
from stepwell.patterns import matches
from stepwell.runtime.orchestrator import Orchestrator, UnknownWorkflow


class TriggerError(ValueError):
    """A trigger payload that does not name a workflow or cannot be turned into input."""


def start_from_trigger(orchestrator: Orchestrator, payload: dict[str, Any]) -> str:
    """Start the run a trigger payload asks for; returns the run id."""
    name = payload.get("workflow")
    if not isinstance(name, str):
        raise TriggerError("a trigger payload needs 'workflow' (the workflow's name)")
    try:
        definition = orchestrator.workflow(name)
    except UnknownWorkflow:
        raise TriggerError(f"no workflow named {name!r}") from None
    event = payload.get("event")
    if isinstance(event, dict):
        try:
            intake.check(event, f"the event that would start a {name} run")
        except intake.JsonTooDeep as exc:
            raise TriggerError(str(exc)) from None
        run_input = _event_input(definition.triggers.events, event)
        identity = str(event.get("id") or hashlib.sha256(repr(event).encode()).hexdigest())
    else:
        run_input = payload.get("input")
        identity = str(payload.get("id") or payload.get("time") or "")
    # The same event (or tick) always maps to the same run id; without an identity, a fresh one.
    digest = hashlib.sha256(f"{name}:{identity}".encode()).hexdigest()[:20]
    run_id = f"{name}-{digest}" if identity else None
    return orchestrator.start(name, run_input, run_id, labels={"trigger": _kind(payload)})


def _kind(payload: dict[str, Any]) -> str:
    return "event" if isinstance(payload.get("event"), dict) else "schedule"


def _event_input(triggers: list[Any], event: dict[str, Any]) -> Any:
    """The first event trigger's ``input`` template over the event, or the event itself."""
    for trigger in triggers:
        if matches(trigger.pattern, event):
            if trigger.input is None:
                return event
            return expressions.render(trigger.input, {"event": event, **event})
    return event
