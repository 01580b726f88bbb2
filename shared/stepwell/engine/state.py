"""What the engine knows of a run: the run record and the step records it loaded.

Records are plain dataclasses. The engine never mutates the records it is given: it copies the
ones it changes and returns the copies in a :class:`~stepwell.engine.decision.Decision`.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

RunStatus = Literal[
    "pending",
    "scheduled",
    "queued",
    "running",
    "waiting",
    "succeeded",
    "failed",
    "cancelled",
    "timed_out",
]
StepStatus = Literal[
    "pending", "running", "waiting", "retrying", "succeeded", "failed", "skipped", "cancelled"
]
RUN_TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
STEP_TERMINAL: frozenset[str] = frozenset({"succeeded", "failed", "skipped", "cancelled"})


def child_key(step_id: str, index: int) -> str:
    """The record key of the ``index``-th child of a for_each step."""
    return f"{step_id}[{index}]"


def parse_key(key: str) -> tuple[str, int | None]:
    """``"charge[3]"`` -> ``("charge", 3)``; ``"charge"`` -> ``("charge", None)``."""
    if key.endswith("]") and "[" in key:
        step_id, _, index = key[:-1].partition("[")
        return step_id, int(index)
    return key, None


@dataclass
class Usage:
    """What an attempt cost: model tokens and dollars (user compute excluded)."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    def add(self, other: Usage | None) -> None:
        """Add ``other`` into this total."""
        if other is not None:
            self.cost_usd += other.cost_usd
            self.input_tokens += other.input_tokens
            self.output_tokens += other.output_tokens


@dataclass
class ParentRef:
    """The step of another run that waits on this run (sub-workflow)."""

    run_id: str
    key: str
    attempt: int


@dataclass(frozen=True)
class RunStart:
    """What a start asks for: the run's id and input, and how and when it begins."""

    run_id: str
    input: Any
    parent: ParentRef | None = None
    dry_run: bool = False
    labels: dict[str, str] | None = None
    continued_from: str | None = None
    started_by: str | None = None
    """Who asked for it (the request's authenticated principal)."""
    start_at: datetime | None = None
    priority: int | None = None
    """Its place in its concurrency key's queue."""
    rerun_of: str | None = None


@dataclass
class RunState:
    """One run of a workflow, pinned to one definition version."""

    id: str
    workflow: str
    version: str
    status: RunStatus
    input: Any
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    output: Any = None
    error: dict[str, Any] | None = None
    context: dict[str, Any] = field(default_factory=dict)
    labels: dict[str, str] = field(default_factory=dict)
    due_at: datetime | None = None
    """When the run times out (its only timer)."""
    deadline: datetime | None = None
    """When the run times out at the latest, fixed at its start (its timeout, or the longest a
    run may last): every record of the run is kept until this plus the retention."""
    open_steps: int = 0
    """Sinks (steps nothing depends on) not yet ended; the run succeeds when it reaches 0 (every
    other step is an ancestor of a sink, so it has ended too). Code-first runs count their
    steps in flight."""
    waiting_steps: int = 0
    """Steps waiting on a person, a callback, a delay or a child run. While there are any, the
    run is ``waiting`` unless a step runs (read off the step records: only such runs look)."""
    watch_at: datetime | None = None
    """When the run's watch looks for what a dead invocation left undone (a step's end not
    told to its dependents, an attempt whose lease ran out)."""
    parent: ParentRef | None = None
    rerun_of: str | None = None
    continued_from: str | None = None
    started_by: str | None = None
    """Who started the run: the start request's authenticated principal (a JWT's e-mail or
    subject, an IAM principal's ARN); None when no one signed the request."""
    cancelling: dict[str, Any] | None = None
    """A code-first run asked to cancel: ``{"reason", "until"}``. Its code is told (at its next
    step, as RunCancelled) and may clean up until then; the run then ends cancelled."""
    """The run this one continues (a code-first ``ctx.continue_as_new``)."""
    dry_run: bool = False
    usage: Usage = field(default_factory=Usage)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    """Commands committed but not yet known to be carried out (see commands.OUTBOX_KINDS)."""
    outbox_due: datetime | None = None
    """When the sweep redelivers the outbox if nothing has cleared it."""
    compensation: dict[str, Any] | None = None
    """While the run undoes what succeeded, and after: the end it is headed for (``status``,
    ``error``), the steps still to undo, newest first (``queue``), and each compensation's
    outcome (``outcomes``). See :mod:`stepwell.engine.compensation`."""
    nonce: str = ""
    """A secret of the run, chosen at start: attempt tokens derive from it, so they cannot be
    guessed from run id, step and attempt alone."""
    slot: dict[str, Any] | None = None
    debounce: str | None = None
    """A run of a workflow with ``debounce``: its key (engine.concurrency)."""
    """A run of a workflow with ``concurrency``: its key, limit, priority and place in the
    key's queue (engine.slots)."""
    seq: int = 0
    """Optimistic-concurrency version, owned by the store: each commit expects it and bumps it."""

    def copy(self) -> RunState:
        """A copy the engine can change. Payloads (input, output) are shared, never mutated:
        copying them would make every event cost as much as the run's input is large."""
        out = copy.copy(self)
        out.usage = copy.copy(self.usage)
        out.outbox = list(self.outbox)
        return out

    @property
    def terminal(self) -> bool:
        """True once the run has ended."""
        return self.status in RUN_TERMINAL

    @property
    def next_due(self) -> datetime | None:
        """The run item's due time on the sweep's index: its timeout, its outbox, its watch."""
        dues = [d for d in (self.due_at, self.outbox_due, self.watch_at) if d is not None]
        return min(dues) if dues else None


@dataclass
class StepState:
    """One step of a run, or one child (item) of a for_each step."""

    key: str
    status: StepStatus = "pending"
    attempt: int = 0
    """The current attempt (0 before the first dispatch); results of other attempts are stale."""
    token: str | None = None
    """Fencing token of the current attempt, handed to the code that runs it."""
    pending_deps: int | None = None
    """Readiness counter: dependencies not yet ended (None until first touched)."""
    deps_ended: list[str] = field(default_factory=list)
    """The dependencies counted so far (a repeated notice of one changes nothing)."""
    skipped_deps: int = 0
    failed_deps: int = 0
    """Dependencies that failed and whose failure a catch rule handled."""
    bypassed: bool = False
    """A step that handles another's failure (named in its catch rule's ``then``) learned that
    the failure did not happen, or went to another rule: it is skipped whatever its trigger
    rule."""
    handled_by: int | None = None
    """A failed step whose failure a catch rule handled: that rule's index (the run goes on)."""
    input: Any = None
    output: Any = None
    error: dict[str, Any] | None = None
    item: Any = None
    """The for_each item of a child."""
    started_at: datetime | None = None
    attempt_started_at: datetime | None = None
    ended_at: datetime | None = None
    due_at: datetime | None = None
    """The step's one timer: attempt timeout, retry backoff, delay end, approval expiry..."""
    waiting_for: str | None = None
    """approval | callback | delay | child_run | retry, while status is waiting/retrying."""
    slot: str | None = None
    """A step with ``concurrency``: its place in its key's queue while its attempt waits for a
    slot (``waiting_for: slot``), ``held`` while the attempt holds one (engine.step_slots)."""
    heartbeat_due: datetime | None = None
    timeout_at: datetime | None = None
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """Approval decisions so far (approver, decision, comment, at)."""
    early_signal: dict[str, Any] | None = None
    """A callback that arrived before the wait opened; consumed when it opens."""
    awaits: list[dict[str, Any]] | None = None
    """An event wait: what it waits for, one entry per kind of event (source, detail_type, and
    the correlation's event path and value), while it waits and after (the dashboard shows
    it)."""
    child_run_id: str | None = None
    items_total: int | None = None
    """for_each parents: number of items (None for ordinary steps)."""
    next_child: int = 0
    """Fan-out cursor: slots handed out so far (the children started or about to start). A
    child that ends claims the next slot with the same atomic update that counts it."""
    children_succeeded: int = 0
    children_failed: int = 0
    failed_items: list[dict[str, Any]] | None = None
    """for_each parents that succeeded: the errors of the failed children it tolerated, by
    index (``{"index", "type", "message"}``), as a failed fan-out's error lists them."""
    counted_at: datetime | None = None
    """for_each parents: when a child's end was last counted (the watch's sign of activity)."""
    usage: Usage = field(default_factory=Usage)
    dry_run: bool = False
    copied_from: str | None = None
    """Run id this output was copied from (rerun from a step)."""
    lost_attempts: int = 0
    """Attempts sent again because their lease ran out with no result (not counted as retries)."""
    retry_base: int = 0
    """Attempts before this one that the retry policy does not count (a code-first run's earlier
    replays: each replay is an attempt of its own step, retried on its own)."""
    # -- steps of code-first runs (made by the replay, not by a definition) --------------------
    name: str | None = None
    """The name the code gave the step (its key adds scope and occurrence)."""
    spec: dict[str, Any] | None = None
    """The step's definition as the code issued it (``type`` and the type's fields), or the
    inline kind (``step``, ``now``, ``operation``) of a checkpoint."""
    position: int | None = None
    """The order in which the code reached the step within its scope."""
    after: list[str] = field(default_factory=list)
    """The steps whose results the code had read before reaching this one (graph edges)."""
    wake: bool = False
    """A code-first run's own step: a step ended while a replay was running, so replay again."""
    steps_running: int = 0
    """A code-first run's own step: the steps its last replay left running (not waits); the
    run is ``waiting`` only while it waits and none run."""
    steps_waited: int = 0
    """A code-first run's own step: the steps its last replay waits for (in flight or just
    reached). When it is one, that step's end starts the next replay itself."""
    created_seq: int | None = None
    """Code-first runs: the attempt of the run's own step (the replay) that reached the step
    (which steps came before which, for a rerun from a step)."""
    rev: int = 0
    """Optimistic-concurrency version of this record, owned by the store (0: not stored yet):
    each write of the record expects it and bumps it. Counting a child's end on its parent
    does not bump it (counters change by atomic adds, see engine.fanout)."""

    def copy(self) -> StepState:
        """A copy the engine can change; payloads are shared and never mutated in place."""
        out = copy.copy(self)
        out.usage = copy.copy(self.usage)
        out.decisions = list(self.decisions)
        out.after = list(self.after)
        out.deps_ended = list(self.deps_ended)
        return out

    @property
    def step_id(self) -> str:
        """The step id in the definition (the part before ``[index]``)."""
        return parse_key(self.key)[0]

    @property
    def index(self) -> int | None:
        """The item index of a for_each child, else None."""
        return parse_key(self.key)[1]

    @property
    def terminal(self) -> bool:
        """True once the step has ended."""
        return self.status in STEP_TERMINAL

    @property
    def is_fanout(self) -> bool:
        """True for a for_each parent."""
        return self.items_total is not None

    @property
    def children_ended(self) -> int:
        """for_each parents: children whose end has been counted."""
        return self.children_succeeded + self.children_failed

    @property
    def children_active(self) -> int:
        """for_each parents: children started (or about to start) and not yet counted."""
        return max(0, min(self.next_child, self.items_total or 0) - self.children_ended)


class NeedsRecords(Exception):
    """The engine needs records the caller did not load; load them and call again.

    ``keys`` None means every step record of the run (only on rare paths: cancel, run failure).
    """

    def __init__(self, keys: frozenset[str] | None) -> None:
        super().__init__(f"needs records {sorted(keys) if keys is not None else 'all'}")
        self.keys = keys


class NeedsGroups(Exception):
    """The engine needs the people of ``names`` (groups of the team's groups file): look them
    up (the Groups port), put them in ``State.groups`` and call again."""

    def __init__(self, names: frozenset[str]) -> None:
        super().__init__(f"needs groups {sorted(names)}")
        self.names = names


@dataclass
class State:
    """The run and the step records loaded for one event."""

    run: RunState
    steps: dict[str, StepState] = field(default_factory=dict)
    absent: set[str] = field(default_factory=set)
    """Keys the loader looked for and found no record of."""
    complete: bool = False
    """True when ``steps`` holds every step record of the run."""
    groups: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    """The groups asked for so far (``NeedsGroups``): their people; None for a group the
    groups file does not define."""

    def get(self, key: str) -> StepState | None:
        """A loaded record, None when it does not exist; raises NeedsRecords when not loaded."""
        found = self.steps.get(key)
        if found is not None or self.complete or key in self.absent:
            return found
        raise NeedsRecords(frozenset({key}))

    def require(self, keys: set[str]) -> None:
        """Raise NeedsRecords for every key in ``keys`` not yet loaded."""
        if self.complete:
            return
        missing = {k for k in keys if k not in self.steps and k not in self.absent}
        if missing:
            raise NeedsRecords(frozenset(missing))

    def require_all(self) -> None:
        """Raise NeedsRecords(None) unless every record is loaded."""
        if not self.complete:
            raise NeedsRecords(None)


def error_text(error: Mapping[str, Any]) -> str:
    """A failure in a line, ``Type: message``; one with no name says so rather than print
    ``None``."""
    name, message = error.get("type"), error.get("message") or ""
    if name is None:
        return f"no error name: {message}" if message else "no error name, no cause"
    return f"{name}: {message}"
