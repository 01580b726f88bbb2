"""Firing timers: messages from SQS / EventBridge Scheduler, and the due-index sweep.

Timer messages are an accelerator: each timer is also a due time on its record, and the sweep
(every minute) fires whatever is due, so a lost message or a crashed invocation only delays a
timer, never loses it. A timer that fires twice, or early, is harmless: the engine acts only when
the record's due time has come.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from stepwell.engine.events import TimerFired
from stepwell.runtime.envelope import TimerMessage
from stepwell.runtime.metrics import COUNT, TIMERS_OVERDUE
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.store.port import Store

OVERDUE_AFTER = timedelta(minutes=2)
"""A timer the sweep finds later than this was not fired by its message: a lost message, a
failing run, or a scheduler that cannot keep up. The TimersOverdue alarm watches for these."""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    fired: int
    overdue: int = 0


def fire(orchestrator: Orchestrator, message: TimerMessage) -> None:
    """Deliver one timer message to its run."""
    orchestrator.handle(message.run_id, TimerFired(message.key, message.due_at))


def sweep(orchestrator: Orchestrator, store: Store, limit: int = 500) -> SweepReport:
    """Fire every timer whose due time has passed (the backstop for lost messages and crashes)."""
    now = orchestrator.clock.now()
    due = store.due(now, limit)
    fired = 0
    for timer in due:
        if orchestrator.handle(timer.run_id, TimerFired(timer.key, now)) is not None:
            fired += 1
    overdue = sum(1 for timer in due if now - timer.at > OVERDUE_AFTER)
    orchestrator.metrics.add(TIMERS_OVERDUE, COUNT, overdue)
    return SweepReport(len(due), fired, overdue)
