"""Ports: what the runtime needs from the world. AWS adapters and local fakes implement them."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt, EmitEvent, RequestApproval, ScheduleTimer


class Invoker(Protocol):
    """Runs a step attempt (Lambda ``Event`` invoke of the step envelope)."""

    def dispatch(self, command: DispatchAttempt) -> None:
        """Start the attempt; return without waiting for it."""
        ...


class Timers(Protocol):
    """Delivers TimerFired at a due time (SQS DelaySeconds, EventBridge Scheduler)."""

    def schedule(self, command: ScheduleTimer) -> None:
        """Arrange for the timer to fire; the due index is the backstop if this is lost."""
        ...


class Bus(Protocol):
    """Puts Stepwell's events on the event bus."""

    def emit(self, command: EmitEvent) -> None:
        """Publish one event."""
        ...


class Approvals(Protocol):
    """Turns an approval request into signed URLs and announces them."""

    def request(self, command: RequestApproval) -> None:
        """Create the URLs and put ``approval.requested`` on the bus."""
        ...


class TriggerWiring(Protocol):
    """Wires a published workflow's triggers (EventBridge rules and schedules the engine owns)."""

    def wire(self, workflow: Workflow, previous: Workflow | None = None) -> None:
        """Make the rules and schedules of ``workflow.triggers`` exactly what exists for its
        name (``previous``: the version it replaces, whose rules may sit on other buses)."""
        ...

    def unwire(self, workflow: Workflow) -> None:
        """Remove every rule and schedule of ``workflow``."""
        ...


class Metrics(Protocol):
    """Counts what runs and steps do (CloudWatch EMF on AWS; a counter locally)."""

    def add(self, name: str, unit: str, value: float) -> None:
        """Add one data point; ``unit`` is a CloudWatch unit (``Count``, ``Milliseconds``)."""
        ...

    def flush(self) -> None:
        """Publish what was added (end of an invocation)."""
        ...


@dataclass(frozen=True)
class AttemptLogs:
    """Where the log lines of one step attempt are: the lines themselves, or a link to them."""

    where: str
    """Where the lines come from, for a person."""
    lines: list[dict[str, Any]] | None = None
    """``{"at", "level", "message", "source"}`` each, oldest first (None: not kept here)."""
    link: str | None = None
    """A page that shows them (the CloudWatch Logs Insights query of the attempt)."""


class StepLogs(Protocol):
    """The log lines the functions wrote while running a step attempt: kept by the local
    stack; on AWS, in CloudWatch Logs, where a Logs Insights query finds them."""

    def attempt(
        self,
        run_id: str,
        key: str,
        attempt: int,
        since: datetime | None,
        until: datetime | None,
        functions: Sequence[str] = (),
    ) -> AttemptLogs:
        """The lines of attempt ``attempt`` of step ``key`` of ``run_id``, which ran between
        ``since`` and ``until`` (None: not known, or not ended); ``functions`` (ARNs) are the
        run's own functions, whose lines are in their own log groups on AWS."""
        ...


class Groups(Protocol):
    """The people each group of the team's groups file names (asked when a wait opens)."""

    def members(self, names: frozenset[str]) -> dict[str, tuple[str, ...] | None]:
        """The people of each of ``names``; None for a group that is not defined."""
        ...
