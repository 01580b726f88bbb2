"""The orchestrator: load what an event needs, let the engine decide, commit, then act.

Over 500 lines: load, decide, commit and act are one loop with one handling of faults.

This is the one loop every entry point shares (the scheduler, the runner's result path, the API,
the local stack). Follow-ups that concern other runs (a child run to start, a parent to notify)
or more work on the same run (Continue) go through a local queue, never recursion.

Every command a committed decision owes is carried out (``runtime.owed``): one that fails does
not stop the others and is tried again, within the call and then at this process's next call;
a write DynamoDB left in doubt is looked up, and its commands carried out if it landed (or its
event decided again if it did not). Only a dying process leaves them to the watches.
"""

from __future__ import annotations

import random
import secrets
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine import core, fanout, rerun
from stepwell.engine.commands import (
    CancelChildRun,
    Command,
    ContinueRun,
    CountItem,
    DispatchAttempt,
    EmitEvent,
    FollowUp,
    NotifyParent,
    OfferSlot,
    RequestApproval,
    ScheduleTimer,
    StartChildRun,
    StartRun,
    UnwatchEvent,
    WakeReplay,
    WatchEvent,
)
from stepwell.engine.decision import Decision
from stepwell.engine.events import (
    ApprovalDecided,
    CallbackReceived,
    CancelRequested,
    ChildRunEnded,
    ChildRunStarted,
    Continue,
    Debounced,
    DependencyEnded,
    Event,
    EventReceived,
    Heartbeat,
    ItemReady,
    LeaseExpired,
    NotificationDelivered,
    OutboxDelivered,
    StepFailed,
    StepReached,
    StepSucceeded,
    TimerFired,
    received,
)
from stepwell.engine.slots import KeySlots
from stepwell.engine.state import NeedsGroups, NeedsRecords, ParentRef, RunStart, RunState, State
from stepwell.runtime import slots
from stepwell.runtime.clock import Clock
from stepwell.runtime.groups import GroupsTable
from stepwell.runtime.metrics import NoMetrics, measures_of
from stepwell.runtime.owed import Owed
from stepwell.runtime.ports import Approvals, Bus, Groups, Invoker, Metrics, Timers
from stepwell.runtime.publishing import bind
from stepwell.store.event_waits import Arrival, EventWaits, event_waits_for
from stepwell.store.port import (
    Conflict,
    DebounceHeld,
    Mark,
    RunNotFound,
    SlotsTaken,
    Store,
    WriteInDoubt,
)

MAX_CONFLICT_RETRIES = 100
MAX_DEBOUNCES = 5
"""Tries of a debounced start: each finds the key's waiting run, or makes it."""
MAX_CACHED_RUNS = 10_000
"""Runs whose record (as last seen) and definition an orchestrator keeps in memory."""
_STEP_EVENTS = (
    StepSucceeded,
    StepFailed,
    TimerFired,
    ApprovalDecided,
    CallbackReceived,
    EventReceived,
    NotificationDelivered,
)
_CHILD_EVENTS = (*_STEP_EVENTS, ChildRunEnded, ChildRunStarted, LeaseExpired)
"""What can happen to a step (a for_each child too)."""
_ALONE_EVENTS = (*_CHILD_EVENTS, ItemReady, DependencyEnded, StepReached, Heartbeat)


def alone(event: Event) -> bool:
    """Whether ``event`` is first decided on the records of one step, to be written alone (no
    run lock): what happens to a step (its result, retry, timers, a dependency's end; a
    code-first replay's answer, what it reached, its waking), to a for_each child, and a
    fan-out's watch. A decision that turns out to change the run (a sink's end, a wait, a
    failure, an approval to request) is decided again as a run-level commit."""
    return getattr(event, "key", None) is not None and isinstance(event, _ALONE_EVENTS)


class UnknownWorkflow(LookupError):
    """No workflow (or version) by that name."""


@dataclass
class Ports:
    """Where commands go."""

    invoker: Invoker
    timers: Timers
    bus: Bus
    approvals: Approvals


class Orchestrator:
    """Starts runs and applies events to them."""

    def __init__(
        self,
        store: Store,
        ports: Ports,
        clock: Clock,
        workflows: Callable[[str], Workflow | None],
        new_id: Callable[[], str] = lambda: uuid.uuid4().hex,
        metrics: Metrics | None = None,
        event_waits: EventWaits | None = None,
        groups: Groups | None = None,
    ) -> None:
        self.store = store
        self.groups: Groups = groups if groups is not None else GroupsTable()
        """Who the groups that approvals and input steps name are (none defined: every group
        is unknown)."""
        self.ports = ports
        self.event_waits = event_waits if event_waits is not None else event_waits_for(store)
        self.clock = clock
        self.metrics: Metrics = metrics if metrics is not None else NoMetrics()
        self._latest = workflows
        self._new_id = new_id
        self._pinned: dict[tuple[str, str], Workflow] = {}
        """(workflow, version) -> the definition runs of that version run (as :meth:`pinned`)."""
        self._owed = Owed(
            self._do,
            self._clear_outbox,
            self._landed,
            self._committed,
            self._warm_forgotten,
        )
        self._versions: dict[str, Workflow] = {}
        """run id -> pinned definition: a run's version never changes, so one lookup serves all."""
        self._warm: dict[str, State] = {}
        """run id -> the records the step just written was decided on (with it as written),
        for its follow-ups while they are carried out (forgotten once they all are)."""
        self._runs: dict[str, RunState] = {}
        """run id -> its record as last seen: what one-step decisions read of the run (its
        input, context, nonce and version never change after the start)."""

    # -- definitions -------------------------------------------------------------------
    def workflow(self, name: str) -> Workflow:
        """The current definition of a workflow (saved as a version on first use)."""
        found = self._latest(name)
        if found is None:
            raise UnknownWorkflow(name)
        self.store.save_definition(found)
        return found

    def pinned(self, run: RunState) -> Workflow:
        """The definition version a run started with.

        A version saved before workflows were published (Stepwell 0.1) binds no functions and
        no runner: it takes those of the version of its name now published, so a run in flight
        across an engine upgrade finishes (its steps' functions keep their logical ids).
        """
        found = self._pinned.get((run.workflow, run.version))
        if found is not None:
            return found
        found = self.store.get_definition(run.workflow, run.version)
        if found is None:
            raise UnknownWorkflow(f"{run.workflow} version {run.version}")
        if not found.functions and found.runner is None:
            current = self._latest(run.workflow)
            if current is not None and (current.functions or current.runner):
                found = bind(
                    found,
                    current.functions,
                    current.runner if found.code is not None else None,
                )
        self._pinned[(run.workflow, run.version)] = found
        return found

    # -- entry points ------------------------------------------------------------------
    def start(
        self,
        workflow: str,
        input: Any,
        run_id: str | None = None,
        *,
        parent: ParentRef | None = None,
        dry_run: bool = False,
        labels: dict[str, str] | None = None,
        continued_from: str | None = None,
        started_by: str | None = None,
        start_at: datetime | None = None,
        priority: int | None = None,
        definition: Workflow | None = None,
    ) -> str:
        """Start a run (``scheduled`` until ``start_at``); returns its id. Starting an existing
        id again changes nothing. ``started_by``: who asked for it (the request's authenticated
        principal). ``definition``: the workflow's current definition, when the caller has just
        read it with :meth:`workflow` (a start over HTTP checks its input against it first)."""
        start = RunStart(
            run_id or self._new_id(),
            input,
            parent=parent,
            dry_run=dry_run,
            labels=labels,
            continued_from=continued_from,
            started_by=started_by,
            start_at=start_at,
            priority=priority,
        )
        return self._start(workflow, start, definition)

    def _start(self, workflow: str, start: RunStart, definition: Workflow | None = None) -> str:
        self._owed.catch_up()
        if definition is None or definition.name != workflow:
            definition = self.workflow(workflow)
        run_id = start.run_id
        nonce = secrets.token_hex(16)
        groups: dict[str, tuple[str, ...] | None] = {}

        def decide(seen: KeySlots | None = None) -> Decision:
            while True:
                try:
                    return core.start_run(
                        definition, start, self.clock.now(), nonce=nonce, groups=groups, seen=seen
                    )
                except NeedsGroups as need:
                    groups.update(self.groups.members(need.names))

        queued = decision = decide()
        try:
            waiting: str | None = None
            for decision in slots.arrivals(self.store, queued, decide):
                try:
                    waiting = self._create(decision, start.input)
                except SlotsTaken:
                    continue  # a slot changed hands since its key was read: read it again
                break
            if waiting is not None:
                return waiting  # the run of its debounce key that waits took this input
        except WriteInDoubt as doubt:

            def again() -> None:
                self._start(workflow, start)

            self._owed.doubt(run_id, doubt.mark, decision, again)
            raise
        except Conflict:
            if self.store.get_run(run_id) is None:
                raise  # not created, and not there: the caller gets the error and retries
            return run_id  # a repeated start (duplicate delivery): the first one counts
        self._created(decision)
        self._committed(run_id, decision)
        return run_id

    def _create(self, decision: Decision, input: Any) -> str | None:
        """Create the run, or, for a start of a debounce key whose run waits, give that run
        this start's input instead and return its id."""
        pending = decision.pending
        if pending is None:
            self.store.create(decision)
            return None
        for _ in range(MAX_DEBOUNCES):
            waiting = self.store.pending(pending.key)
            if waiting is not None:
                answer = self.handle(waiting, Debounced(input))
                if answer is not None and any(e.type == "run_debounced" for e in answer.timeline):
                    return waiting
            try:
                self.store.create(decision)
                return None
            except DebounceHeld:
                continue  # another start of the key made its waiting run meanwhile
        raise Conflict(f"run {pending.run_id}: its debounce key kept changing hands")

    def _created(self, decision: Decision) -> None:
        if decision.run is not None:
            self._remember_committed(decision.run)

    def _remember_committed(self, run: RunState) -> None:
        """Keep a run record a commit wrote (its seq as the store now has it)."""
        seen = run.copy()
        seen.seq = run.seq + 1
        self._remember(seen)

    def rerun(
        self,
        run_id: str,
        from_step: str,
        input: Any = None,
        *,
        dry_run: bool = False,
        new_run_id: str | None = None,
        definition: Workflow | None = None,
    ) -> str:
        """Start a new run from ``from_step`` of ``run_id``, copying its ancestors' outputs;
        it pins ``definition`` (by default the version the run started with)."""
        self._owed.catch_up()
        original = self.store.get_run(run_id)
        if original is None:
            raise RunNotFound(run_id)
        steps = {step.key: step for step in self.store.steps(run_id)}
        new_id = new_run_id or self._new_id()
        decision = rerun.rerun(
            definition or self.pinned(original),
            original,
            steps,
            new_id,
            from_step,
            self.clock.now(),
            input,
            dry_run,
            nonce=secrets.token_hex(16),
        )
        self.store.create(decision)
        self._created(decision)
        self._committed(new_id, decision)
        return new_id

    def handle(self, run_id: str, event: Event) -> Decision | None:
        """Apply an event to a run; None when nothing changed. Events of one step alone (see
        :func:`alone`) are written on that step; the others commit on the run."""
        self._owed.catch_up()
        if alone(event):
            run = self.known_run(run_id)
            if run is None:
                return None
            return self._handle_step(run, event)
        return self._handle_run(run_id, event)

    def receive_event(self, event: dict[str, Any]) -> Arrival:
        """An event from the bus (id, source, detail_type, time, detail): kept for the waits
        that open later, and delivered to every wait open on a value it carries."""
        arrival = self.event_waits.arrive(event, self.clock.now())
        for waiter in arrival.waiters:
            self.handle(waiter.run_id, received(waiter.key, waiter.attempt, (event,)))
        return arrival

    def read_for(self, run_id: str, state: State) -> None:
        """Records just read for the next event of this run (a replay's journal, for its
        answer): the decision starts from them, and its conditional write finds them stale
        if they are."""
        self._remember(state.run)
        self._warm[run_id] = state

    def known_run(self, run_id: str) -> RunState | None:
        """The run as this process last wrote or read it (read when it has not): what a start
        answers is the run its commit wrote, with no read of it back."""
        found = self._runs.get(run_id)
        if found is None:
            found = self.store.get_run(run_id)
            if found is not None:
                self._remember(found)
        return found

    def _remember(self, run: RunState) -> None:
        if len(self._runs) > MAX_CACHED_RUNS:
            self._runs.clear()
        self._runs[run.id] = run

    def _definition_of(self, run: RunState) -> Workflow:
        known = self._versions.get(run.id)
        if known is None:
            known = self.pinned(run)
            if len(self._versions) > MAX_CACHED_RUNS:
                self._versions.clear()
            self._versions[run.id] = known
        return known

    def _handle_step(self, run: RunState, event: Event) -> Decision | None:
        """Decide ``event`` on its step's records and write that step alone, retrying when the
        step changed under it; a decision that changes more goes to :meth:`_handle_run`.

        Follow-ups of the write (a dependent counting this end) are decided on the records
        this load read, so a chain of steps costs one read and two writes per step."""
        definition = self._definition_of(run)
        keys = core.reads_for(definition, event)
        # A code-first run's steps go on only through its replay step, read with them (it is
        # cancelled when the run ends), and what the run record holds that a step's decision
        # reads does not change while the run is open: the run as last seen serves. A change to
        # the run goes to a commit on its seq, which finds a stale one. A run seen ended is
        # read again: an operator's retry may have reopened it since.
        seen = run if definition.code is not None and not run.terminal else None
        state = self._warm.pop(run.id, None)
        for tries in range(MAX_CONFLICT_RETRIES):
            if state is None or not (state.complete or keys <= set(state.steps) | state.absent):
                try:
                    state = self.store.load_steps(run.id, keys, seen)
                except RunNotFound:
                    return None
            decision = self._decide(definition, state, event)
            if decision.empty:
                return None
            if not decision.steps and not decision.timeline and not decision.run_changed:
                self._committed(run.id, decision)  # nothing to write: only something to do
                return decision
            if decision.single_step is None:
                return self._handle_run(run.id, event, state)
            try:
                self.store.write_step(state.run, decision)
            except Conflict:
                state = None
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**tries)))
                continue
            except WriteInDoubt as doubt:
                self._in_doubt(run.id, doubt, decision, event)
                raise
            key = decision.single_step
            written = decision.steps[key].copy()
            written.rev += 1
            state.steps[key] = written
            state.absent.discard(key)
            self._warm[run.id] = state
            self._committed(run.id, decision)
            return decision
        raise Conflict(f"run {run.id}: gave up after {MAX_CONFLICT_RETRIES} conflicting writes")

    def _handle_run(
        self, run_id: str, event: Event, loaded: State | None = None
    ) -> Decision | None:
        """Apply an event to a run as a run-level commit, retrying on conflict; ``loaded``
        (records a one-step decision was made on) serves the first try: the commit expects
        the run's ``seq`` and every step it writes at its revision, so nothing stale commits.
        Run-level commits are the rare transitions (a run's start and end, waits, failures,
        operator actions), so a conflict is only retried."""
        for tries in range(MAX_CONFLICT_RETRIES):
            known = self._versions.get(run_id)
            if loaded is not None:
                state, loaded = loaded, None
            else:
                keys = core.reads_for(known, event) if known is not None else set()
                try:
                    state = self.store.load(run_id, keys)
                except RunNotFound:
                    return None
            definition = known or self.pinned(state.run)
            self._remember(state.run)
            if known is None:
                if len(self._versions) > MAX_CACHED_RUNS:
                    self._versions.clear()
                self._versions[run_id] = definition
                self.store.load_more(state, frozenset(core.reads_for(definition, event)))
            if self._watching(state, event):
                self.store.load_more(state, None)  # the run's watch reads the whole run
            decision = self._decide(definition, state, event)
            if decision.empty:
                return None
            try:
                self.store.commit(decision, state.run.seq)
            except WriteInDoubt as doubt:
                self._in_doubt(run_id, doubt, decision, event)
                raise
            except SlotsTaken:
                raise  # nothing to decide again: the run stays queued (runtime.slots)
            except Conflict:
                # Another invocation changed the run: back off a little (full jitter, capped at
                # 50 ms) and decide again on what it wrote.
                time.sleep(random.uniform(0, min(0.05, 0.002 * 2**tries)))
                continue
            if decision.run is not None:
                self._remember_committed(decision.run)
            # The records a one-step write kept for its follow-ups predate this commit, and a
            # follow-up's write is conditional on its own step alone: it must not read them.
            self._warm.pop(run_id, None)
            self._committed(run_id, decision)
            return decision
        raise Conflict(f"run {run_id}: gave up after {MAX_CONFLICT_RETRIES} conflicting commits")

    def _watching(self, state: State, event: Event) -> bool:
        """Whether ``event`` is the run's own timer firing for its watch (which reads it all)."""
        watch = state.run.watch_at
        own = isinstance(event, TimerFired) and event.key is None
        return own and watch is not None and watch <= self.clock.now() and not state.complete

    def _decide(self, definition: Workflow, state: State, event: Event) -> Decision:
        while True:
            try:
                return core.decide(definition, state, event, self.clock.now())
            except NeedsRecords as need:
                self.store.load_more(state, need.keys)
            except NeedsGroups as need:
                state.groups.update(self.groups.members(need.names))

    def _in_doubt(self, run_id: str, doubt: WriteInDoubt, decision: Decision, event: Event) -> None:
        """Keep a decision whose write was left in doubt, to be looked up at the next call."""
        self._warm.pop(run_id, None)
        self._owed.doubt(run_id, doubt.mark, decision, lambda: self.handle(run_id, event))

    def _clear_outbox(self, run_id: str, ids: tuple[str, ...]) -> None:
        """Clear carried-out entries. The run as this process committed them serves the first
        try: the clearing follows that commit, which mostly nothing changed since (the clearing
        expects its seq, so a run changed meanwhile is read again)."""
        seen = self._runs.get(run_id)
        mine = seen is not None and any(entry["id"] in ids for entry in seen.outbox)
        loaded = State(seen.copy()) if seen is not None and mine else None
        self._handle_run(run_id, OutboxDelivered(ids), loaded)

    def _landed(self, mark: Mark) -> bool:
        return self.store.landed(mark)

    def _warm_forgotten(self) -> None:
        """What follow-ups were decided on is only good for them."""
        self._warm.clear()

    # -- commands ----------------------------------------------------------------------
    def _committed(self, run_id: str, decision: Decision) -> None:
        """A decision is written: count it, then carry out its commands."""
        for measure in measures_of(decision):
            self.metrics.add(measure.name, measure.unit, measure.value)
        self._act(run_id, decision.commands, decision.outbox_sent)

    def _act(self, run_id: str, commands: list[Command], outbox: list[str] | None = None) -> None:
        self._owed.add(run_id, commands, outbox)

    def _do(self, run_id: str, command: Command) -> None:
        match command:
            case DispatchAttempt():
                try:
                    self.ports.invoker.dispatch(command)
                except Exception as exc:
                    # Never sent again as it is (an invoke whose answer was lost may have
                    # queued it): the attempt did not start, and the engine sends a new one.
                    failed = StepFailed(
                        command.key,
                        command.attempt,
                        "DispatchFailed",
                        str(exc),
                        token=command.token,
                        started=False,
                    )
                    self._owed.follow(run_id, FollowUp(run_id, failed))
            case ScheduleTimer():
                self.ports.timers.schedule(command)
            case EmitEvent():
                self.ports.bus.emit(command)
            case RequestApproval():
                self.ports.approvals.request(command)
            case StartRun():
                self.start(
                    command.workflow,
                    command.input,
                    command.run_id,
                    labels=dict(command.labels),
                    continued_from=command.continued_from,
                )
            case StartChildRun():
                parent = ParentRef(
                    command.parent_run_id, command.parent_key, command.parent_attempt
                )
                try:
                    self.start(
                        command.workflow,
                        command.input,
                        command.child_run_id,
                        parent=None if command.detached else parent,
                        dry_run=command.dry_run,
                        started_by=f"run {command.parent_run_id}" if command.detached else None,
                    )
                except UnknownWorkflow:
                    self.handle(
                        command.parent_run_id,
                        ChildRunEnded(
                            command.parent_key,
                            command.parent_attempt,
                            command.child_run_id,
                            "failed",
                            error={
                                "type": "UnknownWorkflow",
                                "message": f"no workflow named {command.workflow!r}",
                            },
                        ),
                    )
                else:
                    if command.detached:
                        self.handle(
                            command.parent_run_id,
                            ChildRunStarted(
                                command.parent_key,
                                command.parent_attempt,
                                command.child_run_id,
                                self.clock.now().isoformat(),
                            ),
                        )
            case NotifyParent():
                self.handle(
                    command.parent_run_id,
                    ChildRunEnded(
                        command.parent_key,
                        command.parent_attempt,
                        command.child_run_id,
                        command.status,
                        command.output,
                        command.error,
                    ),
                )
            case CancelChildRun():
                self.handle(command.child_run_id, CancelRequested("parent step cancelled"))
            case ContinueRun():
                self.handle(command.run_id, Continue(command.key))
            case FollowUp():
                self.handle(command.run_id, command.event)
            case WatchEvent():
                kept = self.event_waits.watch(command)
                if kept:
                    self.handle(run_id, received(command.key, command.attempt, tuple(kept)))
            case UnwatchEvent():
                self.event_waits.unwatch(command)
            case OfferSlot():
                slots.offer(self.store, self.handle, command)
            case WakeReplay():
                if not self.store.wake_replay(run_id, command.attempt):
                    # The replay is no longer that attempt: decide the end on it as it is now.
                    self._warm.pop(run_id, None)
                    self.handle(run_id, DependencyEnded(WORKFLOW_KEY, command.by))
            case CountItem():
                counted = self.store.count_item(run_id, command, self.clock.now())
                known = self.known_run(run_id) if counted is not None else None
                if counted is None or known is None:
                    return  # the fan-out is over: its end was decided already
                for event in fanout.after_count(self._definition_of(known), counted, command):
                    self.handle(run_id, event)
