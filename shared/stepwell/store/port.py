"""The store port: how the runtime reads and writes runs, steps and timelines.

A run-level commit is conditional on the run's ``seq`` and on each step record it writes still
being the one loaded (``rev``): two invocations deciding on one run never both win, and the
loser reloads and decides again. A decision that changes one step alone (a for_each child's
start, result, retry) is written on that step's ``rev`` only, and a child's end is counted on
its parent by an atomic add: neither touches the run. Loads are key lookups of the records an
event needs (``reads_for``), never a read of the whole run, except where the engine asks.

A write that returns was applied, once; one that raises :class:`Conflict` was not (someone
else changed what it expected). A write whose answer was lost is found out by the store (it
sends it again, and recognises its own mark on the item); when even that fails, it raises
:class:`WriteInDoubt`, and the caller asks :meth:`Store.landed` later.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

from stepwell.definition.models import Workflow
from stepwell.engine.commands import CountItem
from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.slots import KeySlots
from stepwell.engine.state import RunState, State, StepState


class Conflict(Exception):
    """Someone else changed the run since it was loaded (or the run already exists)."""


class SlotsTaken(Conflict):
    """A run's commit that takes a slot of its concurrency key found every slot held."""


class DebounceHeld(Conflict):
    """A new debounced run's creation found another run of its key waiting to start."""


class RunNotFound(LookupError):
    """No run with that id."""


@dataclass(frozen=True)
class Mark:
    """What one write leaves on the item it writes (the run item when ``key`` is None): its
    own write id, so a write whose answer was lost is recognised as this one's."""

    run_id: str
    key: str | None
    write_id: str


class WriteInDoubt(Exception):
    """DynamoDB may have applied a write or not: its answer was lost, and so were those of its
    sendings again. Once DynamoDB answers, ``Store.landed(mark)`` tells which."""

    def __init__(self, message: str, mark: Mark) -> None:
        super().__init__(message)
        self.mark = mark


@dataclass(frozen=True)
class Due:
    """A timer whose time has come: a run's (``key`` None) or a step's, due at ``at``."""

    run_id: str
    key: str | None
    at: datetime


@dataclass(frozen=True)
class Page:
    """One page of a listing and the opaque cursor of the next (None at the end)."""

    items: list[Any]
    cursor: str | None


@dataclass(frozen=True)
class Registration:
    """A published workflow: the definition version new runs of ``name`` take.

    Runs pin the version they start with, so publishing a new one or retiring the workflow never
    touches a run in flight.
    """

    name: str
    version: str | None
    """The version new runs take (None: no version of it was ever accepted)."""
    owner: str
    """Who publishes it (a stack and its resource, or ``stepwell publish``'s owner): another
    owner cannot publish the same name while this one holds it."""
    resource: str
    """The publication that wrote this record (a custom resource's physical id): retiring it
    retires only what that publication still holds."""
    published_at: datetime
    retired: bool = False
    """A retired workflow takes no new runs; its runs in flight finish on their versions."""
    problems: tuple[str, ...] = ()
    """Why the last publication was refused (its version, if any, stays in force)."""


class OwnedElsewhere(Exception):
    """The workflow is published by another owner."""

    def __init__(self, current: Registration) -> None:
        super().__init__(current.owner)
        self.current = current


class Store(Protocol):
    """Runs, steps, timelines and definition versions."""

    def create(self, decision: Decision) -> None:
        """Write a new run (its steps and timeline); Conflict if the run id exists."""
        ...

    def load(self, run_id: str, keys: Iterable[str]) -> State:
        """The run and the named step records (absent ones noted); RunNotFound if no run."""
        ...

    def load_more(self, state: State, keys: frozenset[str] | None) -> None:
        """Add records to a loaded state; ``None`` loads every step of the run."""
        ...

    def load_steps(self, run_id: str, keys: Iterable[str], run: RunState | None = None) -> State:
        """The run and the named step records (absent ones noted) in one request, for a
        decision that writes one step alone (it depends on that step's revision, not on the
        run's ``seq``); RunNotFound if no run. Given ``run`` (the run as last seen), the run
        item is not read: the decision's state holds that one."""
        ...

    def write_step(self, run: RunState, decision: Decision) -> None:
        """Write a decision that changed one step alone (``decision.single_step``) and its
        timeline entries, if that step is still the record loaded (its ``rev``); else
        Conflict. The run item is neither read nor written."""
        ...

    def count_item(self, run_id: str, count: CountItem, now: datetime) -> StepState | None:
        """Count a for_each child's end on its running parent, atomically (as
        ``engine.fanout.counted`` says), and return the parent after it; None when the parent
        does not run any more. Never conflicts."""
        ...

    def wake_replay(self, run_id: str, attempt: int) -> bool:
        """Set the ``wake`` flag of a code-first run's own step, bumping its revision, if
        attempt ``attempt`` of it still runs (True); False otherwise. Never conflicts."""
        ...

    def commit(self, decision: Decision, expected_seq: int) -> None:
        """Apply a decision if the run's seq is still ``expected_seq`` (and each step it
        writes is still at the revision loaded); else Conflict."""
        ...

    def landed(self, mark: Mark) -> bool:
        """Whether the write a :class:`WriteInDoubt` was raised for was applied (its item still
        carries its mark)."""
        ...

    def get_run(self, run_id: str) -> RunState | None:
        """One run record."""
        ...

    def steps(self, run_id: str) -> list[StepState]:
        """Every step record of a run (for the API and CLI, not the hot path)."""
        ...

    def timeline(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page:
        """A run's timeline entries in order, from a cursor."""
        ...

    def due(self, now: Any, limit: int = 100) -> list[Due]:
        """The timers due at ``now``, earliest first."""
        ...

    def runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """One page of runs, newest first: of a workflow, in a status, both, or every run (for
        the API and CLI, not the hot path). A cursor this listing did not give out raises
        ValueError (or another error of decoding it)."""
        ...

    def waiting_for_people(self, cursor: str | None = None, limit: int = 50) -> Page:
        """One page of the steps waiting for people (approvals, input forms) across runs,
        newest first, as ``(RunState, StepState)`` pairs: an index's read, never a scan of
        runs (the operator's inbox)."""
        ...

    def pending(self, key: str) -> str | None:
        """The run of a debounce key waiting to start, if any (one consistent read)."""
        ...

    def slots(self, key: str) -> KeySlots:
        """A concurrency key's holders, count of changes and queue's head (engine.slots): one
        consistent read."""
        ...

    def save_definition(self, workflow: Workflow) -> None:
        """Keep a definition version (immutable: saving it again changes nothing)."""
        ...

    def get_definition(self, name: str, version: str) -> Workflow | None:
        """A definition version."""
        ...

    def definition_versions(self, name: str) -> list[str]:
        """Every saved definition version of a workflow, in no particular order."""
        ...

    def register(self, registration: Registration) -> Registration | None:
        """Write a published workflow's record and return the one it replaced (None: new);
        OwnedElsewhere when another owner holds an active record of that name."""
        ...

    def retire(self, name: str, owner: str, resource: str, now: datetime) -> bool:
        """Retire a published workflow if ``owner``'s publication ``resource`` still holds it
        (True); False when there is nothing of theirs to retire."""
        ...

    def registration(self, name: str) -> Registration | None:
        """A published workflow's record (read consistently), or None."""
        ...

    def registrations(self) -> list[Registration]:
        """Every published workflow's record, by name."""
        ...


def timeline_of(entries: list[TimelineEntry]) -> list[dict[str, Any]]:
    """Timeline entries as JSON-ready dicts."""
    return [
        {
            "at": e.at.isoformat(),
            "type": e.type,
            "step": e.step,
            "attempt": e.attempt,
            "message": e.message,
            **({"data": e.data} if e.data else {}),
        }
        for e in entries
    ]
