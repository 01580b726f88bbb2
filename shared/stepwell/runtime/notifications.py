"""Notifications that reach people: the links of an ``approval.requested`` or
``input.requested`` event sent by e-mail (SES, one message per person) and to Slack (an
incoming webhook, a button per link), each delivery noted on the step's timeline.

The notifications function hears the requests on the engine's bus (an EventBridge rule), so
sending never sits in a run's commit: a channel that fails cannot fail or stall the run. A
failed delivery is noted (``notification_failed``, with the error and when it is tried again)
and waits in the notifications queue (SQS ``DelaySeconds``: 1, 2, 4, 8, then 15 minutes),
delivery by delivery, so a retry sends again only what failed; after the last it is given up.
Sending is at least once: a function that dies between sending and noting sends again.

Which channels: the stack's (``NotifyEmailFrom``: the SES sender; ``NotifySlackWebhookSecret``:
the secret holding a webhook's URL), unless the workflow's ``notify`` turns one off or names
its own (its e-mail template, its webhook's secret). A webhook's URL is read from its secret
when it is used and goes nowhere else: not on the timeline, not in a log, not in the queue.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import timedelta
from typing import Any, Literal, Protocol

from stepwell.engine.commands import EmitEvent
from stepwell.engine.events import NotificationDelivered
from stepwell.runtime import messages
from stepwell.runtime.clock import Clock

logger = logging.getLogger(__name__)

REQUESTS = ("approval.requested", "input.requested")
"""The events whose links go to people."""

RETRY_DELAYS = (
    timedelta(minutes=1),
    timedelta(minutes=2),
    timedelta(minutes=4),
    timedelta(minutes=8),
    timedelta(minutes=15),
)
"""A failed delivery is tried again after each of these (SQS delays a message 15 minutes at
most): six tries over half an hour, then it is given up."""

Channel = Literal["email", "slack"]


@dataclass(frozen=True)
class StackChannels:
    """The channels the stack sets for every workflow (empty: none)."""

    email_from: str = ""
    """The SES identity e-mails are sent from (``NotifyEmailFrom``)."""
    slack_secret: str = ""
    """The secret holding the Slack webhook's URL (``NotifySlackWebhookSecret``)."""

    @classmethod
    def from_env(cls, env: Mapping[str, str]) -> StackChannels:
        """``STEPWELL_NOTIFY_EMAIL_FROM`` and ``STEPWELL_NOTIFY_SLACK_SECRET``."""
        return cls(
            email_from=env.get("STEPWELL_NOTIFY_EMAIL_FROM", "").strip(),
            slack_secret=env.get("STEPWELL_NOTIFY_SLACK_SECRET", "").strip(),
        )


@dataclass(frozen=True)
class Delivery:
    """One message on one channel: an e-mail to one person, or the Slack message of a request."""

    channel: Channel
    to: str
    """The person's address (e-mail), or the secret naming the webhook (Slack)."""
    request_id: str
    """The bus event of the request (the local outbox pairs deliveries with it)."""
    detail_type: str
    detail: dict[str, Any] = field(repr=False)
    tries: int = 0
    """Tries so far."""

    def to_json(self) -> str:
        """The queue message that brings it back."""
        return json.dumps(asdict(self), separators=(",", ":"))

    @classmethod
    def from_json(cls, text: str) -> Delivery:
        """A delivery from its queue message."""
        return cls(**json.loads(text))


class Channels(Protocol):
    """Where messages go: SES and Slack webhooks on AWS, the same locally (moto's SES)."""

    def email(self, sender: str, to: str, subject: str, text: str) -> None:
        """Send one plain-text e-mail (raise: not sent)."""
        ...

    def slack(self, webhook_secret: str, message: dict[str, Any]) -> None:
        """Post ``message`` to the webhook whose URL the secret holds (raise: not posted; the
        error never holds the URL)."""
        ...


class Later(Protocol):
    """Brings a delivery back after a delay (the notifications queue)."""

    def later(self, delivery: Delivery, delay: timedelta) -> None: ...


class Recorder(Protocol):
    """What notes a delivery: the orchestrator (the step's timeline) and its bus."""

    def handle(self, run_id: str, event: NotificationDelivered) -> object: ...


class Notifier:
    """Sends each delivery of a request, notes it, and tries a failed one again later."""

    def __init__(
        self, stack: StackChannels, channels: Channels, later: Later, clock: Clock
    ) -> None:
        self.stack = stack
        self._channels = channels
        self._later = later
        self._clock = clock

    def deliveries(self, event: Mapping[str, Any]) -> list[Delivery]:
        """What a request event asks to send: an e-mail to each person with an address, one
        Slack message; none for another event."""
        detail_type = str(event.get("detail-type") or "")
        detail = event.get("detail")
        if detail_type not in REQUESTS or not isinstance(detail, dict):
            return []
        notify = detail.get("notify") or {}
        request_id = str(event.get("id") or "")
        out: list[Delivery] = []
        if notify.get("email", True) is not False and self.stack.email_from:
            seen: set[str] = set()
            for link in detail.get("links") or []:
                person = messages.person_of(link)
                if person and "@" in person and person.lower() not in seen:
                    seen.add(person.lower())
                    out.append(Delivery("email", person, request_id, detail_type, detail))
        slack = notify.get("slack", True)
        secret = slack.get("webhook") if isinstance(slack, dict) else None
        secret = secret or (self.stack.slack_secret if slack is not False else "")
        if secret:
            out.append(Delivery("slack", secret, request_id, detail_type, detail))
        return out

    def requested(self, event: Mapping[str, Any], recorder: Recorder, bus: Bus) -> int:
        """Send what a request event asks; returns how many deliveries failed (each noted and
        waiting to be tried again)."""
        return sum(not self.send(d, recorder, bus) for d in self.deliveries(event))

    def send(self, delivery: Delivery, recorder: Recorder, bus: Bus) -> bool:
        """Try one delivery; note what happened. A failure waits for its next try (the queue's
        message is sent before the note: a note never promises a try that is not coming)."""
        tries = delivery.tries + 1
        try:
            self._send(delivery)
        except Exception as exc:
            error = _error(exc)
            delay = RETRY_DELAYS[tries - 1] if tries <= len(RETRY_DELAYS) else None
            if delay is not None:
                self._later.later(replace(delivery, tries=tries), delay)
            retry_at = (self._clock.now() + delay).isoformat() if delay is not None else None
            self._note(delivery, recorder, bus, tries, error, retry_at)
            return False
        self._note(delivery, recorder, bus, tries, None, None)
        return True

    def _send(self, delivery: Delivery) -> None:
        detail = delivery.detail
        if delivery.channel == "slack":
            self._channels.slack(delivery.to, messages.slack(delivery.detail_type, detail))
            return
        link = next(
            (lk for lk in detail.get("links") or [] if messages.person_of(lk) == delivery.to),
            None,
        )
        if link is None:
            raise ValueError(f"the request has no link for {delivery.to}")
        own = (detail.get("notify") or {}).get("email")
        subject, text = messages.email(
            delivery.detail_type, detail, link, own if isinstance(own, dict) else None
        )
        self._channels.email(self.stack.email_from, delivery.to, subject, text)

    def _note(
        self,
        delivery: Delivery,
        recorder: Recorder,
        bus: Bus,
        tries: int,
        error: str | None,
        retry_at: str | None,
    ) -> None:
        """On the step's timeline and on the bus (``notification.delivered``: the local outbox,
        a team's alarms). A note that cannot be written is logged: the delivery itself stands."""
        detail = delivery.detail
        reason = str(detail.get("reason") or "requested")
        sent = error is None
        noted = NotificationDelivered(
            str(detail.get("step")),
            delivery.channel,
            delivery.to,
            reason,
            sent,
            tries=tries,
            error=error,
            retry_at=retry_at,
        )
        facts = {
            "run_id": detail.get("run_id"),
            "workflow": detail.get("workflow"),
            "step": detail.get("step"),
            "request_id": delivery.request_id,
            "channel": delivery.channel,
            "to": delivery.to,
            "reason": reason,
            "sent": sent,
            "tries": tries,
            "error": error,
            "retry_at": retry_at,
        }
        try:
            recorder.handle(str(detail.get("run_id")), noted)
            bus.emit(EmitEvent("notification.delivered", facts))
        except Exception:
            logger.exception("a notification's delivery could not be noted", extra=facts)


class Bus(Protocol):
    """Puts the delivery's event on the engine's bus."""

    def emit(self, command: EmitEvent) -> None: ...


def _error(exc: Exception) -> str:
    """What went wrong, for the timeline (the channels' errors name no secret)."""
    text = str(exc).strip() or type(exc).__name__
    return text if len(text) <= 300 else text[:297] + "..."
