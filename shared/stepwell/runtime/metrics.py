"""Run and step metrics, read off what a committed decision wrote to the timeline.

The timeline already names every transition, so the metrics are a view of it rather than
counters sprinkled through the engine: one committed decision gives its data points, and a
decision that lost its commit (a conflict) gives none. Names are CloudWatch metric names in the
``Stepwell`` namespace; the alarms and dashboards of template.yaml use them.
"""

from __future__ import annotations

import threading
from collections import Counter, defaultdict
from dataclasses import dataclass
from datetime import datetime

from stepwell.engine.decision import Decision

COUNT = "Count"
MILLISECONDS = "Milliseconds"

COUNTED = {
    "run_started": "RunsStarted",
    "step_dispatched": "StepsDispatched",
    "step_completed": "StepsSucceeded",
    "step_failed": "StepsFailed",
    "step_retrying": "StepsRetried",
    "attempt_lost": "AttemptsLost",
}
"""Timeline entry type -> the count it adds to."""

RUN_ENDS = {
    "succeeded": "RunsCompleted",
    "failed": "RunsFailed",
    "timed_out": "RunsFailed",
    "cancelled": "RunsCancelled",
}
"""A run's terminal status -> the count it adds to."""

STEP_DURATION = "StepDuration"
"""From an attempt's dispatch to its result being recorded (ms)."""
RUN_DURATION = "RunDuration"
DISPATCH_LATENCY = "DispatchLatency"
"""From the decision to run an attempt to its step code starting (ms), measured by the receiver."""
TIMERS_OVERDUE = "TimersOverdue"
"""Timers the sweep found over two minutes late (``timers.OVERDUE_AFTER``): lost messages or a
stuck run."""
TIMERS_FAILED = "TimersFailed"
"""Timers whose firing raised in a sweep (they stay due; the others still fire)."""
INVOCATIONS_FAILED = "StepInvocationsFailed"
"""Step invocations that failed outside the step's code (a crash, a Lambda timeout, an import
error), as Lambda's on-failure destination reported them."""


@dataclass(frozen=True)
class Measure:
    """One data point."""

    name: str
    unit: str
    value: float


def _ms(start: datetime | None, end: datetime | None) -> float | None:
    if start is None or end is None:
        return None
    return max(0.0, (end - start).total_seconds() * 1000)


def measures_of(decision: Decision) -> list[Measure]:
    """The data points of a committed decision."""
    found: list[Measure] = []
    for entry in decision.timeline:
        counted = COUNTED.get(entry.type)
        if counted is not None:
            found.append(Measure(counted, COUNT, 1))
        if entry.type in ("step_completed", "step_failed") and entry.step is not None:
            step = decision.steps.get(entry.step)
            took = _ms(step.attempt_started_at, entry.at) if step is not None else None
            if took is not None:
                found.append(Measure(STEP_DURATION, MILLISECONDS, took))
        if entry.type == "run_status" and entry.data.get("status") in RUN_ENDS:
            found.append(Measure(RUN_ENDS[entry.data["status"]], COUNT, 1))
            run = decision.run
            took = _ms(run.started_at, entry.at) if run is not None else None
            if took is not None:
                found.append(Measure(RUN_DURATION, MILLISECONDS, took))
    return found


class NoMetrics:
    """Metrics switched off."""

    def add(self, name: str, unit: str, value: float) -> None:
        """Drop the data point."""

    def flush(self) -> None:
        """Nothing to publish."""


class CountingMetrics:
    """Keeps data points in memory (the local stack and tests): counts and the values seen."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Counter[str] = Counter()
        self.values: defaultdict[str, list[float]] = defaultdict(list)

    def add(self, name: str, unit: str, value: float) -> None:
        """Count one data point and keep its value."""
        with self._lock:
            self.counts[name] += 1 if unit != COUNT else int(value)
            self.values[name].append(value)

    def flush(self) -> None:
        """Nothing to publish: the figures stay readable."""
