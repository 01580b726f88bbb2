"""The local outbox: what Stepwell would send people (approval links, form links, reminders and
escalations), read from the events the local stack's buses carried, for the dashboard's outbox
page (``GET /_local/outbox``): a developer clicks the links without any mail or chat account.
Each notification lists what its channels did (``notification.delivered``: e-mail, Slack; sent,
or failed and when it is tried again), latest try of each channel and person."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

NOTIFICATIONS = ("approval.requested", "input.requested")
"""The events that carry links for people."""
DELIVERED = "notification.delivered"
"""What a channel did with one of them."""


def notifications(events: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """The notifications among ``events`` (oldest first), newest first: when, what kind, why
    (requested, reminder, escalation), the run and step, the message and each person's links."""
    seen = list(events)
    found = [e for e in seen if e.get("detail-type") in NOTIFICATIONS]
    delivered = _deliveries(seen)
    return [
        {
            "at": event.get("time"),
            "type": event["detail-type"],
            "reason": event["detail"].get("reason", "requested"),
            **{k: event["detail"].get(k) for k in ("run_id", "workflow", "step", "message")},
            "links": list(event["detail"].get("links") or []),
            "deliveries": delivered.get(str(event.get("id")), []),
        }
        for event in reversed(found)
    ]


def _deliveries(events: list[dict[str, Any]]) -> dict[str, list[dict[str, Any]]]:
    """Each request's deliveries by its event id: the latest try of each channel and person."""
    latest: dict[tuple[str, str, str], dict[str, Any]] = {}
    for event in events:
        if event.get("detail-type") == DELIVERED:
            d = event["detail"]
            shown = ("channel", "to", "sent", "tries", "error", "retry_at")
            latest[(str(d.get("request_id")), str(d.get("channel")), str(d.get("to")))] = {
                "at": event.get("time"),
                **{k: d.get(k) for k in shown},
            }
    out: dict[str, list[dict[str, Any]]] = {}
    for (request, _, _), delivery in latest.items():
        out.setdefault(request, []).append(delivery)
    return out
