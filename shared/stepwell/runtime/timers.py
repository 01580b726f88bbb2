"""Firing timers: messages from SQS / EventBridge Scheduler, and the due-index sweep.

Timer messages are an accelerator: each timer is also a due time on its record, and the sweep
(every minute) fires whatever is due, so a lost message or a crashed invocation only delays a
timer, never loses it. A timer that fires twice, or early, is harmless: the engine acts only when
the record's due time has come.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import timedelta

from stepwell.engine.events import TimerFired
from stepwell.runtime.envelope import TimerMessage
from stepwell.runtime.metrics import COUNT, TIMERS_FAILED, TIMERS_OVERDUE
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.store.port import Store

logger = logging.getLogger("stepwell.timers")

OVERDUE_AFTER = timedelta(minutes=2)
"""A timer the sweep finds later than this was not fired by its message: a lost message, a
failing run, or a scheduler that cannot keep up. The TimersOverdue alarm watches for these."""


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    fired: int
    overdue: int = 0
    failed: int = 0


def fire(orchestrator: Orchestrator, message: TimerMessage) -> None:
    """Deliver one timer message to its run."""
    orchestrator.handle(message.run_id, TimerFired(message.key, message.due_at))


def sweep(orchestrator: Orchestrator, store: Store, limit: int = 500) -> SweepReport:
    """Fire every timer whose due time has passed (the backstop for lost messages and crashes).

    Each timer is fired on its own: one that fails (its run's records unreadable, a DynamoDB
    fault) is logged and counted, and the others still fire; it stays due for the next sweep."""
    now = orchestrator.clock.now()
    due = store.due(now, limit)
    fired = failed = 0
    for timer in due:
        try:
            if orchestrator.handle(timer.run_id, TimerFired(timer.key, now)) is not None:
                fired += 1
        except Exception:
            failed += 1
            logger.exception(
                "timer of run %s (step %s) failed; it stays due", timer.run_id, timer.key
            )
    overdue = sum(1 for timer in due if now - timer.at > OVERDUE_AFTER)
    orchestrator.metrics.add(TIMERS_OVERDUE, COUNT, overdue)
    if failed:
        orchestrator.metrics.add(TIMERS_FAILED, COUNT, failed)
    return SweepReport(len(due), fired, overdue, failed)
