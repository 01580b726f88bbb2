"""Firing timers: messages from SQS / EventBridge Scheduler, and the due-index sweep.

Timer messages are an accelerator: each timer is also a due time on its record, and the sweep
(every minute) fires whatever is due, so a lost message or a crashed invocation only delays a
timer, never loses it. A timer that fires twice, or early, is harmless: the engine acts only when
the record's due time has come.
"""

from __future__ import annotations

from dataclasses import dataclass

from stepwell.engine.events import TimerFired
from stepwell.runtime.envelope import TimerMessage
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.store.port import Store


@dataclass(frozen=True)
class SweepReport:
    """What one sweep did."""

    due: int
    fired: int


def fire(orchestrator: Orchestrator, message: TimerMessage) -> None:
    """Deliver one timer message to its run."""
    orchestrator.handle(message.run_id, TimerFired(message.key, message.due_at))


def sweep(orchestrator: Orchestrator, store: Store, limit: int = 500) -> SweepReport:
    """Fire every timer whose due time has passed (the backstop for lost messages and crashes)."""
    now = orchestrator.clock.now()
    due = store.due(now, limit)
    fired = 0
    for run_id, key in due:
        if orchestrator.handle(run_id, TimerFired(key, now)) is not None:
            fired += 1
    return SweepReport(len(due), fired)
