"""The local outbox: what Stepwell would send people (approval links, form links, reminders and
escalations), read from the events the local stack's buses carried, for the dashboard's outbox
page (``GET /_local/outbox``): a developer clicks the links without any mail or chat account."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NOTIFICATIONS = ("approval.requested", "input.requested")
"""The events that carry links for people."""


def notifications(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notifications among ``events`` (oldest first), newest first: when, what kind, why
    (requested, reminder, escalation), the run and step, the message and each person's links."""
    found = [e for e in events if e.get("detail-type") in NOTIFICATIONS]
    return [
        {
            "at": event.get("time"),
            "type": event["detail-type"],
            "reason": event["detail"].get("reason", "requested"),
            **{k: event["detail"].get(k) for k in ("run_id", "workflow", "step", "message")},
            "links": list(event["detail"].get("links") or []),
        }
        for event in reversed(found)
    ]
