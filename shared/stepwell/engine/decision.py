"""The engine's output, and the working set it builds while deciding."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from typing import Any, Protocol, runtime_checkable

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Step, Workflow
from stepwell.engine.commands import OUTBOX_KINDS, Command, to_wire
from stepwell.engine.events import ApprovalDecided, DependencyEnded, Event, StepSucceeded
from stepwell.engine.slots import Pending, SlotChange
from stepwell.engine.state import RunState, RunStatus, State, StepState, StepStatus

MAX_STEP_WRITES = 40
"""Step records one decision may write; more work goes on in a Continue (stores write a decision
in one transaction, and DynamoDB allows 100 items in one)."""


@dataclass(frozen=True)
class TimelineEntry:
    """One transition, as users read it on the run's timeline."""

    at: datetime
    type: str
    step: str | None = None
    attempt: int | None = None
    message: str = ""
    data: dict[str, Any] = field(default_factory=dict)


@dataclass
class Decision:
    """What one event changed and what must happen next.

    ``run`` is the new run record when it changed (its ``seq`` is the one the store must find);
    ``steps`` holds the new records of the steps that changed or were created.
    """

    run: RunState | None = None
    steps: dict[str, StepState] = field(default_factory=dict)
    timeline: list[TimelineEntry] = field(default_factory=list)
    commands: list[Command] = field(default_factory=list)
    created: bool = False
    """True when the decision creates the run (start, rerun)."""
    outbox_sent: list[str] = field(default_factory=list)
    """Outbox entries this decision's commands carry: clear them once they are carried out."""
    before: dict[str, StepState | None] = field(default_factory=dict)
    """The records ``steps`` replace, as they were loaded (None: new): a store writes each
    step on the condition that it is still the one loaded, and only what changed."""
    run_changed: bool = False
    """True when the decision changed the run record itself (not only steps or timeline)."""
    slot: SlotChange | None = None
    """A change of the run's concurrency key, written in the run's commit (engine.slots)."""
    pending: Pending | None = None
    """A change of the run's debounce key, written in the run's commit (engine.slots)."""
    step_slots: list[SlotChange] = field(default_factory=list)
    """Changes of its steps' concurrency keys (engine.step_slots), written in the run's commit."""

    @property
    def slot_changes(self) -> list[SlotChange]:
        """Every change of a concurrency key the commit writes, the one written on the
        condition that the key is as read (a take) last: a store tells its refusal by its
        place."""
        changes = [*self.step_slots, *([self.slot] if self.slot is not None else [])]
        return sorted(changes, key=lambda change: change.checked)

    @property
    def empty(self) -> bool:
        """Nothing to write and nothing to do."""
        return self.run is None and not self.steps and not self.timeline and not self.commands

    @property
    def single_step(self) -> str | None:
        """The key of the one step this decision writes, when it writes only that step (and
        its timeline entries): a store writes it with one conditional update, no transaction
        and no lock on the run. None otherwise."""
        if self.run_changed or self.created or len(self.steps) != 1 or self.step_slots:
            return None
        return next(iter(self.steps))


def attempt_token(run: RunState, key: str, attempt: int) -> str:
    """A fencing token: unique per attempt, derived (from the run's secret nonce) so a replay of
    a decision yields the same token, and unguessable without the run record."""
    return hashlib.sha256(f"{run.nonce}:{run.id}:{key}:{attempt}".encode()).hexdigest()[:24]


OUTBOX_GRACE = timedelta(minutes=1)
"""How long an outbox entry may wait for its clearing before the sweep redelivers it."""
RUN_WATCH = timedelta(minutes=5)
"""How often a run's watch looks for what a dead invocation left undone (engine.core)."""

_CATEGORY: dict[str, str] = {"running": "active", "retrying": "active", "waiting": "waiting"}


def is_active(status: str) -> bool:
    """Whether a step of this status runs or waits to retry (not: waits on something)."""
    return _CATEGORY.get(status) == "active"


class Settle(Protocol):
    """What a step's end means for the run (engine.core settles every end in one place)."""

    def __call__(self, work: Work, step: StepState, /) -> None: ...


class Kind(Protocol):
    """A kind of step (engine.kinds): how a step of it starts and what its timer means. The
    engine's core assembles the table of kinds; a decision carries it (:meth:`Work.kind`)."""

    @property
    def waits(self) -> bool:
        """Its step waits (on a person, a timer, a signal, a child run) rather than runs."""
        ...

    @property
    def inline(self) -> bool:
        """Its step is decided as it starts (an expression error there fails it)."""
        ...

    def parameters(self, spec: Step, data: dict[str, Any], now: datetime) -> Any:
        """The rendered parameters its step runs with (None: the step's input as it is)."""
        ...

    def start(self, work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
        """Start ``step`` (its input rendered and checked)."""
        ...

    def on_timer(self, work: Work, step: StepState) -> None:
        """The step's one timer came due."""
        ...


@runtime_checkable
class AsksPeople(Protocol):
    """A kind whose step waits on people answering through signed links (approval, input):
    what a person sent reaches the kind of the step it answers."""

    def on_decision(self, work: Work, event: ApprovalDecided) -> None:
        """A person (or an operator) answered."""
        ...


@runtime_checkable
class HoldsOutside(Protocol):
    """A kind whose open step holds something outside its run's records (an event wait's
    entries in the index of open waits): every end of the step lets go of it, in the decision
    that ends it, whichever way it ends (its own end, a skip, the run's end cancelling it)."""

    def release(self, work: Work, step: StepState) -> None:
        """``step`` ended: let go of what it holds."""
        ...


class Driver(Protocol):
    """How a run moves: the DAG (engine.dag: YAML readiness counters and sinks) or the replay
    (engine.codeflow: a code-first run's replay and the steps it issues). The core picks it
    once, from the definition; the decision carries it."""

    @property
    def steps_outlive_success(self) -> bool:
        """A run that succeeded may still have steps open (to cancel)."""
        ...

    @property
    def skips_ahead(self) -> bool:
        """A step not begun yet can be skipped ahead of time (what follows it is known)."""
        ...

    def knows(self, definition: Workflow, step_id: str) -> bool:
        """The run can have a step ``step_id`` (an operator's action or a signal for another
        is ignored)."""
        ...

    def ahead(self, work: Work, key: str) -> StepState | None:
        """The record of step ``key`` before it begins, for what arrives early (a signal), or
        None when such a step cannot be told apart yet."""
        ...

    def reads_for(
        self, definition: Workflow, event: Event, key: str, kinds: Mapping[str, Kind]
    ) -> set[str]:
        """The step records an event about ``key`` will likely need besides ``key``'s."""
        ...

    def reopens(self, step: StepState, failed_at: datetime | None) -> bool:
        """An operator's retry of the failed run starts ``step`` (cancelled) again."""
        ...

    def restart(self, work: Work, step: StepState) -> None:
        """Start ``step`` again after an operator's retry."""
        ...

    def redriven(self, work: Work, reopened: list[str]) -> None:
        """An operator's retry reopened ``reopened`` (the failed step first)."""
        ...

    def start(self, work: Work) -> None:
        """A new run: start what runs first."""
        ...

    def resume(self, work: Work) -> None:
        """A rerun that waited for a slot of its key (its copied steps written as it was
        made): start what they let start."""
        ...

    def spec(self, work: Work, key: str) -> Step:
        """The definition of a step the workflow's steps do not hold."""
        ...

    def expression_data(
        self, work: Work, key: str | None, child: StepState | None = None, *, every: bool = False
    ) -> dict[str, Any]:
        """What a step's expressions see."""
        ...

    def active(self, work: Work) -> bool:
        """Whether a step of the run runs or waits to retry (else the run only waits)."""
        ...

    def watch(self, work: Work) -> bool:
        """The driver's own part of the run's watch (True: the run stays watched)."""
        ...

    def ended(self, work: Work, step: StepState) -> None:
        """A top-level step's end (a for_each child's is counted on its parent)."""
        ...

    def on_dependency_ended(self, work: Work, event: DependencyEnded) -> None:
        """A step was told of another's end."""
        ...

    def on_succeeded(self, work: Work, event: StepSucceeded) -> None:
        """An attempt returned."""
        ...

    def end(self, work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
        """End the run (its timeout)."""
        ...

    def cancel(self, work: Work, reason: str) -> None:
        """Someone cancelled the run."""
        ...


class Work:
    """The working set of one decision: copy-on-write records, timeline, commands."""

    def __init__(
        self,
        definition: Workflow,
        state: State,
        now: datetime,
        settle: Settle,
        kinds: Mapping[str, Kind],
        driver: Driver,
    ) -> None:
        self.definition = definition
        self.driver = driver
        self._settle = settle
        self._kinds = kinds
        self.state = state
        self.now = now
        self.run = state.run.copy()
        self.run_changed = False
        self.steps: dict[str, StepState] = {}
        self.timeline: list[TimelineEntry] = []
        self.commands: list[Command] = []
        self.outbox_sent: list[str] = []
        self.slot: SlotChange | None = None
        self.pending: Pending | None = None
        self.step_slots: list[SlotChange] = []

    # -- records -------------------------------------------------------------------------
    def step(self, key: str) -> StepState | None:
        """The record of ``key`` for changing (copied on first touch), or None if it has none."""
        if key in self.steps:
            return self.steps[key]
        found = self.state.get(key)
        if found is None:
            return None
        mine = found.copy()
        self.steps[key] = mine
        return mine

    def new_step(self, key: str, **fields: Any) -> StepState:
        """A record for a step that has none yet (written on the condition it still has none)."""
        created = StepState(key=key, **fields)
        self.steps[key] = created
        return created

    def step_or_new(self, key: str) -> StepState:
        """The record of a top-level step, created pending with its readiness counter."""
        found = self.step(key)
        if found is None:
            found = StepState(key=key, pending_deps=len(self.definition.upstream[key]))
            self.steps[key] = found
        return found

    def peek(self, key: str) -> StepState | None:
        """Read a record without marking it changed."""
        if key in self.steps:
            return self.steps[key]
        return self.state.get(key)

    def spec(self, key: str) -> Step:
        """The definition of the step a key belongs to."""
        found = self.definition.steps.get(key.partition("[")[0])
        return found if found is not None else self.driver.spec(self, key)

    def kind(self, step_type: str) -> Kind:
        """The kind of steps of ``step_type``."""
        return self._kinds[step_type]

    def waits(self, step_type: str) -> bool:
        """Whether steps of ``step_type`` wait rather than run (an unknown type: no)."""
        found = self._kinds.get(step_type)
        return found is not None and found.waits

    def ended(self, step: StepState) -> None:
        """``step`` reached a terminal status (engine.outcomes): settle what that means."""
        self._settle(self, step)

    def change_slot(self, change: SlotChange) -> None:
        """A change of a step's concurrency key, written with this decision: a leave of a
        place queued in this very decision, or a release of a slot taken in it, nets out."""
        for index, earlier in enumerate(self.step_slots):
            if (earlier.key, earlier.run_id) != (change.key, change.run_id):
                continue
            if (earlier.op, change.op) == ("queue", "leave") and earlier.place == change.place:
                del self.step_slots[index]
                return
            if (earlier.op, change.op) == ("take", "release"):
                self.step_slots[index] = replace(change, op="leave", place=earlier.place)
                return
        self.step_slots.append(change)

    def touch_run(self) -> RunState:
        """The run record for changing."""
        self.run_changed = True
        return self.run

    def add_usage(self, step: StepState, usage: Any) -> None:
        """Add an attempt's usage to its step and to the run; a for_each child's reaches the
        run through its parent's count (engine.fanout), so the child is written alone."""
        if usage is None:
            return
        step.usage.add(usage)
        if step.index is None:
            self.touch_run().usage.add(usage)

    # -- transitions ---------------------------------------------------------------------
    def set_status(self, step: StepState, status: StepStatus) -> None:
        """Move a step to ``status`` and keep the run's count of waits true.

        Only a wait opening or closing touches the run record (a step running, retrying or
        ending writes its own record alone); for_each children never do (their parent counts
        as one step while it runs), nor does a code-first run's own step."""
        if step.status == status:
            return
        top_level = step.index is None
        # A code-first run's own step waits for its steps, not on a person or a timer.
        if top_level and step.key != WORKFLOW_KEY:
            was, now = _CATEGORY.get(step.status), _CATEGORY.get(status)
            if (was == "waiting") != (now == "waiting"):
                run = self.touch_run()
                run.waiting_steps += 1 if now == "waiting" else -1
                if was == "waiting" and run.watch_at is None and not run.terminal:
                    run.watch_at = self.now + RUN_WATCH  # a wait ended: the run goes on
        step.status = status
        if top_level:
            self.refresh_run_status()

    def refresh_run_status(self) -> None:
        """``waiting`` while waits are open and no step runs, else ``running``; terminal
        statuses never change here. Only a run with an open wait reads its step records."""
        run = self.run
        if run.terminal or run.status == "pending":
            return
        wanted = "waiting" if run.waiting_steps > 0 and not self.driver.active(self) else "running"
        if run.status != wanted:
            self.touch_run().status = wanted  # type: ignore[assignment]

    def note(
        self,
        type_: str,
        step: StepState | str | None = None,
        message: str = "",
        **data: Any,
    ) -> None:
        """Append a timeline entry."""
        key = step.key if isinstance(step, StepState) else step
        attempt = step.attempt if isinstance(step, StepState) and step.attempt else None
        self.timeline.append(TimelineEntry(self.now, type_, key, attempt, message, dict(data)))

    def emit(self, command: Command) -> None:
        """Queue a command for after the commit; effects no record shows also go to the outbox."""
        self.commands.append(command)
        if command.kind in OUTBOX_KINDS:
            run = self.touch_run()
            entry_id = f"{run.seq}.{len(self.outbox_sent)}"
            run.outbox.append({"id": entry_id, **to_wire(command)})
            run.outbox_due = self.now + OUTBOX_GRACE
            self.outbox_sent.append(entry_id)

    def decision(self, created: bool = False) -> Decision:
        """Package the working set. Entries that only note something about one step (a
        duplicate or stale result ignored) go on that step's record, written alone."""
        if self.timeline and not self.steps and not (self.run_changed or created):
            about = {entry.step for entry in self.timeline}
            key = about.pop() if len(about) == 1 else None
            found = self.state.steps.get(key) if key is not None else None
            if found is not None:
                self.steps[found.key] = found.copy()
        return Decision(
            run=self.run if (self.run_changed or self.steps or self.timeline or created) else None,
            steps=self.steps,
            timeline=self.timeline,
            commands=self.commands,
            created=created,
            outbox_sent=self.outbox_sent,
            before={key: self.state.steps.get(key) for key in self.steps},
            run_changed=self.run_changed or created,
            slot=self.slot,
            pending=self.pending,
            step_slots=self.step_slots,
        )
