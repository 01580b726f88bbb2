"""What the engine asks the world to do: its outputs besides record changes.

The caller carries commands out *after* the changes are committed, so a crash in between loses
nothing: every command's effect is also visible in the records (a dispatched attempt has a lease
due time, a timer is a due time, a child run is noted on its step) and the sweep repeats it.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, Literal

from stepwell.engine.events import Event


@dataclass(frozen=True)
class DispatchAttempt:
    """Run one attempt of a step: invoke its Lambda (or the runner, for built-in kinds)."""

    run_id: str
    key: str
    step_id: str
    step_type: str
    attempt: int
    token: str
    input: Any
    function: str | None
    deadline: datetime | None
    workflow: str = ""
    dispatched_at: datetime | None = None
    """When the engine decided to run the attempt (the step side measures dispatch latency)."""
    target: str | None = None
    """The function to invoke, when the workflow's publication bound it: the ARN its
    ``functions`` map gives the function the step names, or for a replay the workflow's
    ``runner``. None: the function the step names, or the engine's runner for built-in kinds."""
    kind: Literal["dispatch"] = "dispatch"

    @property
    def idempotency_key(self) -> str:
        """``run:step:attempt``: the same for every delivery of this attempt."""
        return f"{self.run_id}:{self.key}:{self.attempt}"


@dataclass(frozen=True)
class ScheduleTimer:
    """Deliver a TimerFired for ``key`` (None: the run) at ``due_at``."""

    run_id: str
    key: str | None
    due_at: datetime
    kind: Literal["timer"] = "timer"


@dataclass(frozen=True)
class RequestApproval:
    """Create signed approve/reject URLs and announce them (``approval.requested``); for an
    input step (``form`` given), one form URL per assignee (``input.requested``)."""

    run_id: str
    workflow: str
    key: str
    attempt: int
    message: str
    approvers: tuple[str, ...]
    quorum: int
    expires_at: datetime | None
    kind: Literal["approval"] = "approval"
    form: dict[str, Any] | None = None
    """The JSON Schema of the answer an input step asks for (None: an approval)."""
    reason: Literal["requested", "reminder", "escalation", "delegation"] = "requested"
    """Why the links go out: the wait opened, a reminder, an escalation to new people, or a
    person handed their link on (to ``approvers``, in ``delegated_by``'s name)."""
    delegated_by: str | None = None
    """The approver (or assignee) in whose name a delegation's links decide."""
    notify: dict[str, Any] | None = None
    """The workflow's ``notify`` (its channels; None: the stack's), for the notifications."""


@dataclass(frozen=True)
class EmitEvent:
    """Put an event on the bus (run.started, run.completed, step.failed, ...)."""

    detail_type: str
    detail: dict[str, Any]
    source: str | None = None
    """None: Stepwell's own source (an event sent through ``POST /events`` names its own)."""
    event_id: str | None = None
    """The sender's own id of an event sent through ``POST /events`` (the bus gives every
    event an id of its own): carried as the resource ``EVENT_ID_RESOURCE + event_id``, it is
    the id event waits see and de-duplicate by."""
    time: datetime | None = None
    """When the event happened (None: as it is put); a re-sent id keeps its first time."""
    kind: Literal["emit"] = "emit"

    @property
    def resources(self) -> list[str]:
        """The event's resources: the sender's id, when it has one."""
        return [EVENT_ID_RESOURCE + self.event_id] if self.event_id is not None else []


EVENT_ID_RESOURCE = "stepwell:event/"
"""The resource an event carries its sender's own id as (PutEvents has no id field)."""


@dataclass(frozen=True)
class StartChildRun:
    """Start a run of another workflow for a workflow step; it reports back when it ends."""

    child_run_id: str
    workflow: str
    input: Any
    parent_run_id: str
    parent_key: str
    parent_attempt: int
    dry_run: bool = False
    detached: bool = False
    """A run of its own (``wait: false``): not cancelled with the parent, its end not awaited;
    its creation is told to the parent step (``ChildRunStarted``)."""
    kind: Literal["start_child"] = "start_child"


@dataclass(frozen=True)
class StartRun:
    """Start a new run of the same workflow that continues this one (continue-as-new)."""

    run_id: str
    workflow: str
    input: Any
    continued_from: str
    labels: dict[str, str] = field(default_factory=dict)
    kind: Literal["start_run"] = "start_run"


@dataclass(frozen=True)
class CancelChildRun:
    """Cancel a child run whose parent step was cancelled."""

    child_run_id: str
    kind: Literal["cancel_child"] = "cancel_child"


@dataclass(frozen=True)
class NotifyParent:
    """Tell the parent run's waiting step that this run ended."""

    parent_run_id: str
    parent_key: str
    parent_attempt: int
    child_run_id: str
    status: str
    output: Any
    error: dict[str, Any] | None
    kind: Literal["notify_parent"] = "notify_parent"


@dataclass(frozen=True)
class ContinueRun:
    """Deliver a Continue event to this run: more work than fits in one decision."""

    run_id: str
    key: str | None
    kind: Literal["continue"] = "continue"


@dataclass(frozen=True)
class FollowUp:
    """Decide ``event`` on this run once the decision that asks for it is written: a for_each
    child's slot (ItemReady), a dependency's end told to a dependent (DependencyEnded), a lease
    found run out (LeaseExpired), a fan-out found over (FanoutSettled). Each is decided on its
    own records and written alone; a watch repeats what a dead invocation did not do."""

    run_id: str
    event: Event
    kind: Literal["follow_up"] = "follow_up"


@dataclass(frozen=True)
class CountItem:
    """Count a for_each child's end on its parent with one atomic update (no lock on the run
    or the parent), claiming the parent's next slot; what the counters then say follows
    (engine.fanout.after_count)."""

    run_id: str
    parent_key: str
    index: int
    succeeded: bool
    error: dict[str, Any] | None = None
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    kind: Literal["count_item"] = "count_item"


@dataclass(frozen=True)
class WakeReplay:
    """Tell a code-first run's running replay (attempt ``attempt``) that ``by`` ended: one
    update that sets its ``wake`` flag (and bumps its revision, so the replay's own commit sees
    it) on the condition that the attempt still runs; otherwise ``by``'s end is decided again
    on the replay step as it is then (engine.codeflow.on_dependency_ended)."""

    run_id: str
    attempt: int
    by: str
    kind: Literal["wake_replay"] = "wake_replay"


@dataclass(frozen=True)
class WatchEvent:
    """Index attempt ``attempt`` of the event wait ``key`` under its event's source, detail-type
    and correlation value, then deliver the events kept since its lookback began (``lookback``
    seconds before ``opened_at``) that carry the value."""

    run_id: str
    key: str
    attempt: int
    source: str
    detail_type: str
    path: str
    value: str
    opened_at: datetime
    lookback: int
    expires_at: datetime
    """When the wait ends at the latest: the index entry's expiry."""
    kind: Literal["watch_event"] = "watch_event"

    @property
    def since(self) -> datetime:
        """The oldest time an event may have arrived and still count."""
        return counts_since(self.opened_at, timedelta(seconds=self.lookback))


def counts_since(opened_at: datetime, lookback: timedelta) -> datetime:
    """The oldest time an event may have happened and still count for a wait that opened at
    ``opened_at``: ``lookback`` before, to the second (the bus times events to the second, so
    an event put in the second the wait opened counts). A redelivered event keeps its time, so
    it never counts for a wait that opened after it, beyond its lookback."""
    return (opened_at - lookback).replace(microsecond=0)


@dataclass(frozen=True)
class UnwatchEvent:
    """Take a wait that ended out of the index of its kind of event (else its entry lives until
    its expiry, and deliveries to it change nothing but cost a read): through the outbox, so a
    process that dies after the decision leaves it to the sweep, not to the expiry."""

    run_id: str
    key: str
    source: str
    detail_type: str
    path: str
    value: str
    kind: Literal["unwatch_event"] = "unwatch_event"


@dataclass(frozen=True)
class OfferSlot:
    """Offer the free slots of a concurrency key to its queue's head, then to the next, until
    none is free or nobody waits (engine.slots)."""

    key: str
    limit: int
    mode: str = ""
    """A singleton's mode (``skip``, ``cancel_previous``), else empty."""
    place: str = ""
    """``cancel_previous``: the place of the run just queued; the runs before it are cancelled."""
    kind: Literal["offer_slot"] = "offer_slot"


Command = (
    DispatchAttempt
    | ScheduleTimer
    | RequestApproval
    | EmitEvent
    | StartChildRun
    | StartRun
    | CancelChildRun
    | NotifyParent
    | ContinueRun
    | CountItem
    | WakeReplay
    | FollowUp
    | WatchEvent
    | UnwatchEvent
    | OfferSlot
)


OUTBOX_KINDS = frozenset(
    {
        "approval",
        "emit",
        "start_child",
        "start_run",
        "cancel_child",
        "notify_parent",
        "watch_event",
        "unwatch_event",
        "offer_slot",
    }
)
"""Commands whose effect no record shows: they go through the run's outbox (written with the
decision, cleared once carried out, redelivered by the sweep after a crash)."""

_BY_KIND: dict[str, type[Command]] = {
    cls.kind: cls
    for cls in (
        DispatchAttempt,
        ScheduleTimer,
        RequestApproval,
        EmitEvent,
        StartChildRun,
        StartRun,
        CancelChildRun,
        NotifyParent,
        ContinueRun,
        CountItem,
        WatchEvent,
        UnwatchEvent,
        OfferSlot,
    )
}
_TIMES = ("deadline", "due_at", "expires_at", "opened_at", "time")


def to_wire(command: Command) -> dict[str, Any]:
    """A JSON-ready dict of a command (for the outbox)."""
    out = dataclasses.asdict(command)
    for name in _TIMES:
        if isinstance(out.get(name), datetime):
            out[name] = out[name].isoformat()
    if isinstance(out.get("approvers"), list | tuple):
        out["approvers"] = list(out["approvers"])
    return out


def from_wire(data: dict[str, Any]) -> Command:
    """The command a :func:`to_wire` dict describes."""
    fields = {k: v for k, v in data.items() if k != "id"}
    for name in _TIMES:
        if isinstance(fields.get(name), str):
            fields[name] = datetime.fromisoformat(fields[name])
    if "approvers" in fields:
        fields["approvers"] = tuple(fields["approvers"])
    return _BY_KIND[fields["kind"]](**fields)
