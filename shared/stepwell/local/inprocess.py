"""An in-process world: step functions are Python callables, time may be virtual.

It drives the real orchestrator, engine and (in-memory) store one event at a time, so unit tests
and property tests can run whole workflows deterministically without AWS. The local stack runs
the deployed handlers instead; this is its smallest sibling.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt, EmitEvent, RequestApproval, ScheduleTimer
from stepwell.engine.events import (
    ApprovalDecided,
    Event,
    Heartbeat,
    StepFailed,
    StepSucceeded,
    TimerFired,
)
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.journals import Journals
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.runtime.ports import Groups
from stepwell.runtime.replays import replay_journal
from stepwell.runtime.step_context import StepContext
from stepwell.store.memory import MemoryStore

StepFunction = Callable[[Any, StepContext], Any]
_END_OF_TIME = datetime(9999, 1, 1, tzinfo=UTC)
Approver = Callable[[RequestApproval], "ApprovalDecided | None"]


class InProcessWorld:
    """Store, orchestrator and fake AWS in one object; ``run_until_idle`` plays it forward."""

    def __init__(
        self,
        workflows: dict[str, Workflow],
        functions: dict[str, StepFunction],
        clock: FakeClock | None = None,
        approver: Approver | None = None,
        code: dict[str, Callable[..., Any]] | None = None,
        groups: Groups | None = None,
    ) -> None:
        self.workflows = workflows
        self.functions = functions
        self.code = dict(code or {})
        """Code-first workflow name -> the function its replays run."""
        self.clock = clock or FakeClock()
        self.approver = approver
        self.store = MemoryStore()
        self.dispatched: deque[DispatchAttempt] = deque()
        self.timers: list[tuple[datetime, int, ScheduleTimer]] = []
        self.events: list[EmitEvent] = []
        self.approvals: list[RequestApproval] = []
        self.pending_decisions: deque[tuple[str, Event]] = deque()
        self.journals = Journals()
        self._seq = 0
        self.orchestrator = Orchestrator(
            self.store,
            Ports(invoker=self, timers=self, bus=self, approvals=self),
            self.clock,
            workflows.get,
            new_id=self._new_id,
            groups=groups,
        )

    def _new_id(self) -> str:
        self._seq += 1
        return f"run-{self._seq:04d}"

    # -- ports ---------------------------------------------------------------------------
    def dispatch(self, command: DispatchAttempt) -> None:
        self.dispatched.append(command)

    def schedule(self, command: ScheduleTimer) -> None:
        self._seq += 1
        heapq.heappush(self.timers, (command.due_at, self._seq, command))

    def emit(self, command: EmitEvent) -> None:
        self.events.append(command)

    def request(self, command: RequestApproval) -> None:
        self.approvals.append(command)
        if self.approver is not None:
            decided = self.approver(command)
            if decided is not None:
                self.pending_decisions.append((command.run_id, decided))

    # -- playing forward -----------------------------------------------------------------
    def start(self, workflow: str, input: Any, **options: Any) -> str:
        """Start a run (it moves only when ``run_until_idle`` plays the world forward)."""
        return self.orchestrator.start(workflow, input, **options)

    def send(self, run_id: str, event: Event) -> None:
        """Deliver an event to a run now."""
        self.orchestrator.handle(run_id, event)

    def run_until_idle(self, virtual_time: bool = True, max_events: int = 1_000_000) -> None:
        """Run dispatched attempts and due timers until nothing is left to do.

        With virtual time the clock jumps to the next timer whenever nothing else can happen.
        """
        for _ in range(max_events):
            if self.pending_decisions:
                run_id, event = self.pending_decisions.popleft()
                self.send(run_id, event)
            elif self.dispatched:
                self._run_attempt(self.dispatched.popleft())
            elif self.timers and self.timers[0][0] <= self.clock.now():
                _, _, timer = heapq.heappop(self.timers)
                self.send(timer.run_id, TimerFired(timer.key, timer.due_at))
            elif self.sweep():
                continue
            elif virtual_time and (due := self.next_due()) is not None:
                self.clock.set(due)
            else:
                return
        raise RuntimeError(f"still busy after {max_events} events")

    def sweep(self) -> bool:
        """The minute sweep's part: fire what is due on the records but had no timer message
        (attempt leases, or a timer whose message was lost). True when it fired anything."""
        now = self.clock.now()
        due = self.store.due(now, limit=1000)
        for timer in due:
            self.send(timer.run_id, TimerFired(timer.key, now))
        return bool(due)

    def next_due(self) -> datetime | None:
        """The earliest timer: a timer message's, or a due time on a record."""
        dues = [self.timers[0][0]] if self.timers else []
        earliest = self.store.due(_END_OF_TIME, limit=1)  # earliest first
        dues.extend(timer.at for timer in earliest)
        return min(dues, default=None)

    def _run_attempt(self, command: DispatchAttempt) -> None:
        heartbeat = Heartbeat(command.key, command.attempt, command.token)
        ctx = StepContext(
            command.run_id,
            command.step_id,
            command.key,
            command.attempt,
            command.idempotency_key,
            beat=lambda: self.send(command.run_id, heartbeat),
        )
        try:
            output = self._execute(command, ctx)
        except Exception as exc:
            failed = StepFailed(
                command.key, command.attempt, type(exc).__name__, str(exc), token=command.token
            )
            self.send(command.run_id, failed)
            return
        self.send(
            command.run_id,
            StepSucceeded(command.key, command.attempt, output, token=command.token),
        )

    def _execute(self, command: DispatchAttempt, ctx: StepContext) -> Any:
        if command.step_type == "code":
            return replay_journal(
                self.store,
                self.journals,
                self.orchestrator,
                command.run_id,
                command.attempt,
                lambda run: self.code[run.workflow],
                self.clock.now(),
            ).to_dict()
        if command.step_type == "task":
            assert command.function is not None
            function = self.functions.get(command.function)
            if function is None:
                raise LookupError(f"no function named {command.function!r}")
            # A @step_handler keeps the plain function: call it, not the Lambda wrapper.
            return getattr(function, "function", function)(command.input, ctx)
        # Built-in kinds run exactly as the runner runs them; notify events land on this bus.
        done = run_builtin(command.step_type, command.input, ctx, BuiltinDeps(publisher=self))
        return done.output

    def publish(self, detail_type: str, detail: dict[str, Any], source: str | None = None) -> str:
        """The EventPublisher a notify step uses: record the event here."""
        self.events.append(EmitEvent(detail_type, detail))
        self._seq += 1
        return f"event-{self._seq:04d}"
