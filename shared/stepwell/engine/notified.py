"""A notification's delivery, noted on the step it was about: people's channels are sent
outside the run's commits (a failing channel never fails or stalls the run), and what they did
is written back as a note of the step's timeline alone."""

from __future__ import annotations

from stepwell.engine.decision import Work
from stepwell.engine.events import NotificationDelivered


def on_delivered(work: Work, event: NotificationDelivered) -> None:
    """``notification_sent`` or ``notification_failed`` (with the error and when it is tried
    again) on the step; a step with no record (a foreign or forged event) gets nothing."""
    if work.peek(event.key) is None:
        return
    to = f" to {event.to}" if event.to else ""
    data = {"channel": event.channel, "to": event.to, "reason": event.reason, "tries": event.tries}
    if event.sent:
        work.note("notification_sent", event.key, f"{event.channel}{to} ({event.reason})", **data)
        return
    then = f"; tried again at {event.retry_at}" if event.retry_at else "; given up"
    work.note(
        "notification_failed",
        event.key,
        f"{event.channel}{to} ({event.reason}): {event.error}{then}",
        **data,
        error=event.error,
        **({"retry_at": event.retry_at} if event.retry_at else {}),
    )
