"""Builders and a small driver for the engine's tests.

:class:`EngineDriver` plays a run through the pure engine the way the orchestrator does (load the
records ``reads_for`` names, load more on ``NeedsRecords``, apply the decision), and checks after
every decision that the engine did not touch its input and that the run's counters are true.
"""

from __future__ import annotations

import copy
import hashlib
import json
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stepwell.asl.loader import load_asl_file
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow
from stepwell.engine import core, fanout
from stepwell.engine.attempts import DEFAULT_LEASE
from stepwell.engine.commands import (
    Command,
    CountItem,
    DispatchAttempt,
    FollowUp,
    ScheduleTimer,
    WakeReplay,
)
from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.events import (
    DependencyEnded,
    Event,
    LeaseExpired,
    OutboxDelivered,
    StepFailed,
    StepSucceeded,
    TimerFired,
)
from stepwell.engine.state import NeedsGroups, NeedsRecords, RunStart, RunState, State, StepState
from stepwell.runtime.groups import GroupsTable

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def workflow(steps: dict[str, Any], name: str = "test-flow", **fields: Any) -> Workflow:
    """A validated workflow from plain step dicts (``type`` defaults to task)."""
    return Workflow.model_validate({"name": name, "steps": steps, **fields})


def task(*depends_on: str, function: str = "fn", **fields: Any) -> dict[str, Any]:
    """A task step depending on ``depends_on``."""
    return {"function": function, "depends_on": list(depends_on), **fields}


def counters_of(steps: Iterable[StepState]) -> tuple[int, int]:
    """(active, waiting) top-level steps of these records (for_each children are not counted;
    their parent is, while it runs; nor is a code-first run's own step)."""
    active = waiting = 0
    for step in steps:
        if step.index is not None or step.key == "$workflow":
            continue
        if step.status in ("running", "retrying"):
            active += 1
        elif step.status == "waiting":
            waiting += 1
    return active, waiting


class EngineDriver:
    """One run of one definition, driven through ``core.decide`` with partial loads."""

    def __init__(
        self,
        definition: Workflow | dict[str, Any],
        input: Any = None,
        *,
        run_id: str = "run-1",
        now: datetime = T0,
        complete_loads: bool = False,
        check_counters: bool = True,
        check_timeline: bool = True,
        groups: dict[str, list[str]] | None = None,
        **start: Any,
    ) -> None:
        self.definition = definition if isinstance(definition, Workflow) else workflow(definition)
        self.groups = GroupsTable(groups)
        """What the Groups port answers (the groups file)."""
        self.groups_asked: list[frozenset[str]] = []
        self.now = now
        self.complete_loads = complete_loads
        self.check_counters = check_counters
        self.check_timeline = check_timeline
        self.steps: dict[str, StepState] = {}
        self.timeline: list[TimelineEntry] = []
        self.commands: list[Command] = []
        self.decisions: list[Decision] = []
        self.extra_loads: list[frozenset[str] | None] = []
        """Keys loaded because the engine raised NeedsRecords (not predicted by reads_for)."""
        # A run's secret, the same for the same run (twin drivers issue the same tokens).
        nonce = (
            start.pop("nonce", None)
            or hashlib.sha256(repr((run_id, input)).encode()).hexdigest()[:16]
        )
        found: dict[str, tuple[str, ...] | None] = {}
        while True:
            try:
                decision = core.start_run(
                    self.definition,
                    RunStart(run_id, input, **start),
                    now,
                    nonce=nonce,
                    groups=found,
                )
                break
            except NeedsGroups as need:
                self.groups_asked.append(need.names)
                found.update(self.groups.members(need.names))
        assert decision.run is not None
        self.run: RunState
        self._apply(decision)
        self._delivered(decision)
        self._follow(decision)

    # -- driving ---------------------------------------------------------------------------
    def load(self, keys: Iterable[str]) -> State:
        """A state holding the run and the records of ``keys`` (the others not loaded)."""
        if self.complete_loads:
            return State(
                run=self.run.copy(),
                steps={k: s.copy() for k, s in self.steps.items()},
                complete=True,
            )
        state = State(run=self.run.copy())
        self._fill(state, frozenset(keys))
        return state

    def snapshot(self) -> State:
        """A state holding the run and every record (a complete load)."""
        state = State(run=self.run.copy())
        self._fill(state, None)
        return state

    def _fill(self, state: State, keys: frozenset[str] | None) -> None:
        if keys is None:
            state.steps = {k: s.copy() for k, s in self.steps.items()}
            state.complete = True
            return
        for key in keys:
            if key in self.steps:
                state.steps[key] = self.steps[key].copy()
            else:
                state.absent.add(key)

    def send(self, event: Event, at: datetime | None = None) -> Decision:
        """Apply ``event`` at ``at`` (default: the driver's now) and keep the result.

        Like the orchestrator, the driver then reports the decision's outbox entries carried
        out (an ``OutboxDelivered`` decision, applied but not kept in ``decisions``).
        """
        if at is not None:
            self.now = at
        decision = self._decide(event)
        self._apply(decision)
        self._delivered(decision)
        self._follow(decision)
        return decision

    def _follow(self, decision: Decision) -> None:
        """Carry out the fan-out's follow-ups as the orchestrator does after a commit: start the
        items handed a slot, count ended items on their parent (as a store's atomic update
        does) and act on what the counters say."""
        for command in decision.commands:
            if isinstance(command, FollowUp):
                self.send(command.event)
            elif isinstance(command, WakeReplay):
                # As a store's conditional update does: flag the replay if it still runs.
                own = self.steps.get("$workflow")
                if own is not None and own.status == "running" and own.attempt == command.attempt:
                    own.wake = True
                    own.rev += 1
                else:
                    self.send(DependencyEnded("$workflow", command.by))
            elif isinstance(command, CountItem):
                parent = self.steps.get(command.parent_key)
                counted = fanout.counted(parent, command, self.now) if parent else None
                if counted is None:
                    continue
                self.steps[command.parent_key] = counted
                for event in fanout.after_count(self.definition, counted, command):
                    self.send(event)

    def _delivered(self, decision: Decision) -> None:
        if decision.outbox_sent:
            self._apply(self._decide(OutboxDelivered(tuple(decision.outbox_sent))), keep=False)

    def _decide(self, event: Event) -> Decision:
        return self._settle(
            core.reads_for(self.definition, event),
            lambda state: core.decide(self.definition, state, event, self.now),
        )

    def _settle(self, keys: Iterable[str], decide: Callable[[State], Decision]) -> Decision:
        """Decide on a partial load, loading what the engine asks for, as the orchestrator does;
        the engine must never change the State it was given."""
        state = self.load(keys)
        while True:
            before = copy.deepcopy(state)
            try:
                decision = decide(state)
            except NeedsRecords as need:
                assert state == before, "the engine changed its input before raising NeedsRecords"
                self.extra_loads.append(need.keys)
                self._fill(state, need.keys)
                continue
            except NeedsGroups as need:
                assert state == before, "the engine changed its input before raising NeedsGroups"
                self.groups_asked.append(need.names)
                state.groups.update(self.groups.members(need.names))
                continue
            assert state == before, "the engine changed the State it was given"
            return decision

    def _apply(self, decision: Decision, keep: bool = True) -> None:
        if self.check_timeline:
            self._check_noted(decision)
        if keep:
            self.decisions.append(decision)
        if decision.run is not None:
            self.run = copy.deepcopy(decision.run)
            self.run.seq += 1  # as a store's commit does
        for key, record in decision.steps.items():
            self.steps[key] = copy.deepcopy(record)
        self.timeline.extend(decision.timeline)
        if keep:
            self.commands.extend(decision.commands)
        if self.check_counters:
            _, waiting = counters_of(self.steps.values())
            assert self.run.waiting_steps == waiting, (
                f"the run's count of waits disagrees with the step records after "
                f"{decision.timeline}"
            )

    def _check_noted(self, decision: Decision) -> None:
        """Every step status change and the run's end have a timeline entry of their own
        (but a code-first run's replays: the steps they reach have theirs)."""
        noted = {entry.step for entry in decision.timeline}
        for key, record in decision.steps.items():
            if key == "$workflow" and record.status in ("running", "waiting"):
                continue
            old = self.steps.get(key)
            if record.status != (old.status if old is not None else "pending"):
                assert key in noted, f"{key} became {record.status} without a timeline entry"
        before = getattr(self, "run", None)
        if decision.run is not None and decision.run.terminal and not (before and before.terminal):
            assert "run_status" in {e.type for e in decision.timeline}

    # -- shortcuts -------------------------------------------------------------------------
    def step(self, key: str) -> StepState:
        """The stored record of ``key``."""
        return self.steps[key]

    def status(self, key: str) -> str | None:
        """The status of ``key``, None when it has no record."""
        found = self.steps.get(key)
        return found.status if found is not None else None

    def succeed(self, key: str, output: Any = None, attempt: int | None = None) -> Decision:
        """The current (or given) attempt of ``key`` returned ``output``."""
        return self.send(StepSucceeded(key, attempt or self.attempt_of(key), output))

    def attempt_of(self, key: str) -> int:
        """The attempt of ``key`` dispatched last (a replay a step's end started is not on the
        replay's record until it answers), else its record's."""
        sent = [d.attempt for d in self.dispatches(key)]
        return max([self.steps[key].attempt, *sent])

    def fail(
        self, key: str, error_type: str = "Boom", attempt: int | None = None, **kw: Any
    ) -> Decision:
        """The current (or given) attempt of ``key`` raised ``error_type``."""
        return self.send(StepFailed(key, attempt or self.attempt_of(key), error_type, **kw))

    def fire(self, key: str | None) -> Decision:
        """Move time to the timer of ``key`` (None: the run) and deliver it."""
        record = self.run if key is None else self.steps[key]
        assert record.due_at is not None, f"{key} has no timer"
        return self.send(TimerFired(key, record.due_at), at=record.due_at)

    def expire(self, key: str) -> Decision:
        """Let the lease of ``key``'s attempt (a step without a timeout) run out, as the run's
        watch then finds it."""
        record = self.steps[key]
        assert record.attempt_started_at is not None and record.due_at is None
        self.now = record.attempt_started_at + DEFAULT_LEASE
        return self.send(LeaseExpired(key, record.attempt))

    def advance(self, delta: timedelta) -> None:
        """Move the driver's clock forward."""
        self.now += delta

    def dispatches(self, key: str | None = None) -> list[DispatchAttempt]:
        """Every DispatchAttempt issued so far (of ``key`` when given), in order."""
        return [
            c
            for c in self.commands
            if isinstance(c, DispatchAttempt) and (key is None or c.key == key)
        ]

    def timers(self, key: str | None = None) -> list[ScheduleTimer]:
        """Every ScheduleTimer issued so far for ``key``."""
        return [c for c in self.commands if isinstance(c, ScheduleTimer) and c.key == key]

    def running(self) -> set[str]:
        """Keys whose status is running."""
        return {k for k, s in self.steps.items() if s.status == "running"}

    def types(self, key: str | None = None) -> list[str]:
        """Timeline entry types (of ``key`` when given), in order."""
        return [e.type for e in self.timeline if key is None or e.step == key]

    def entries(self, type_: str) -> list[TimelineEntry]:
        """Timeline entries of one type."""
        return [e for e in self.timeline if e.type == type_]


ORDER = {
    "order_id": "o-9",
    "customer": "ada@example.com",
    "items": [
        {"sku": "A", "qty": 1, "price": 700.0},
        {"sku": "B", "qty": 2, "price": 200.0},
        {"sku": "C", "qty": 3, "price": 10.0},
    ],
}
"""A large order (1,130): the order example asks finance to approve it."""

ORDER_FILES = {
    "order-fulfilment": "order-fulfilment.yaml",
    "order-fulfilment-code": "order_fulfilment.py",
}
"""The order example as YAML and as code (whose steps wake its replays)."""


def order_world(name: str) -> Any:
    """An in-process world running the order example ``name`` (YAML or code), finance
    approving every approval it asks for."""
    import orders

    from stepwell.code.files import load_code_file
    from stepwell.definition.loader import load_workflow
    from stepwell.engine.events import ApprovalDecided
    from stepwell.local.inprocess import InProcessWorld

    path = Path(__file__).resolve().parents[2] / "statemachines" / ORDER_FILES[name]
    code = {}
    if path.suffix == ".py":
        (found,) = load_code_file(path)
        definition, code = found.workflow, {found.workflow.name: found.code.function}
    else:
        definition = load_workflow(path)
    return InProcessWorld(
        {definition.name: definition},
        orders.HANDLERS,
        approver=lambda r: ApprovalDecided(r.key, r.attempt, True, "finance@example.com"),
        code=code,
    )


def task_problems(folder: Path, resource: str, parameters: dict[str, Any]) -> list[str]:
    """What validation says of a machine of one Task on ``resource`` with ``parameters``."""
    task = {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}
    path = folder / "m.asl.json"
    path.write_text(json.dumps({"StartAt": "T", "States": {"T": task}}))
    try:
        load_asl_file(path)
    except DefinitionError as exc:
        return [str(p) for p in exc.problems]
    return []
