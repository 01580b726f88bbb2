"""What can happen to a run: the engine's inputs."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stepwell.engine.state import Usage


@dataclass(frozen=True)
class StepSucceeded:
    """An attempt of a dispatched step returned a result."""

    key: str
    attempt: int
    output: Any = None
    usage: Usage | None = None
    token: str | None = None
    """The attempt's token as the step was given it; a mismatch is refused."""
    kind: Literal["step_succeeded"] = "step_succeeded"


@dataclass(frozen=True)
class StepFailed:
    """An attempt of a dispatched step raised; ``error_type`` is the exception's type name."""

    key: str
    attempt: int
    error_type: str
    message: str = ""
    usage: Usage | None = None
    retryable: bool = True
    token: str | None = None
    """The attempt's token as the step was given it; a mismatch is refused."""
    started: bool = True
    """False when the attempt's code never began (its invoke failed, or its function could not
    start): it did nothing, so a new attempt follows outside the step's retry policy."""
    trace: dict[str, Any] | None = None
    """The failure's ``requestId`` and ``stackTrace``, as a Lambda error gives them."""
    kind: Literal["step_failed"] = "step_failed"


@dataclass(frozen=True)
class Heartbeat:
    """Attempt ``attempt`` of a task step is alive (its function called ``ctx.heartbeat``)."""

    key: str
    attempt: int
    token: str | None = None
    kind: Literal["heartbeat"] = "heartbeat"


@dataclass(frozen=True)
class TimerFired:
    """A timer came due. ``key`` None is the run's own timer (run timeout)."""

    key: str | None
    due_at: datetime
    kind: Literal["timer_fired"] = "timer_fired"


@dataclass(frozen=True)
class ApprovalDecided:
    """A person approved or rejected through a signed URL, or an operator through the API
    (``operator``: an IAM principal allowed to manage runs, whose decision settles the approval
    whatever its approvers and quorum say)."""

    key: str
    attempt: int
    approved: bool
    approver: str = "anonymous"
    comment: str | None = None
    operator: bool = False
    link: str | None = None
    """The signed link that decided (an id of it): a link decides once, which its decision on
    the step's record shows (a repeated or concurrent use of it is ignored)."""
    kind: Literal["approval_decided"] = "approval_decided"
    answer: Any = None
    """An input step's answer (its form's data): the step's kind, not the event, says whether
    the person decided or answered."""
    by: str | None = None
    """Who decided in ``approver``'s name, through the link ``approver`` handed on to them."""
    delegate_to: str | None = None
    """Instead of deciding, ``approver`` hands their link on to this person ..."""
    until: str | None = None
    """... until this time (ISO 8601): the delegate gets links of their own, expiring then."""


@dataclass(frozen=True)
class CallbackReceived:
    """An external system called back: success (with output), failure, or a heartbeat."""

    key: str
    status: Literal["success", "failure", "heartbeat"]
    output: Any = None
    error_type: str = "CallbackFailed"
    message: str = ""
    by: str | None = None
    """Who answered, when an operator answered through the API (noted on the timeline)."""
    kind: Literal["callback_received"] = "callback_received"


@dataclass(frozen=True)
class ChildRunEnded:
    """A sub-workflow run started by a workflow step ended."""

    key: str
    attempt: int
    child_run_id: str
    status: str
    output: Any = None
    error: dict[str, Any] | None = None
    usage: Usage | None = None
    kind: Literal["child_run_ended"] = "child_run_ended"


@dataclass(frozen=True)
class ChildRunStarted:
    """A run that a workflow step with ``wait: false`` started was created: the step ends."""

    key: str
    attempt: int
    child_run_id: str
    started_at: str
    """When the run was created (ISO 8601)."""
    kind: Literal["child_run_started"] = "child_run_started"


@dataclass(frozen=True)
class CancelRequested:
    """Someone asked to cancel the run."""

    reason: str = "cancelled"
    by: str | None = None
    kind: Literal["cancel_requested"] = "cancel_requested"


@dataclass(frozen=True)
class Continue:
    """Go on with work that did not fit in one decision (fan-out start, cancelling steps)."""

    key: str | None = None
    kind: Literal["continue"] = "continue"


@dataclass(frozen=True)
class SkipRequested:
    """An operator asked to skip a step that has not ended (its output becomes ``output``)."""

    key: str
    output: Any = None
    by: str | None = None
    kind: Literal["skip_requested"] = "skip_requested"


@dataclass(frozen=True)
class RetryRequested:
    """An operator asked to retry a failed step now (a failed run resumes)."""

    key: str
    by: str | None = None
    kind: Literal["retry_requested"] = "retry_requested"


@dataclass(frozen=True)
class OutboxDelivered:
    """The outbox entries with these ids were carried out; forget them."""

    ids: tuple[str, ...]
    kind: Literal["outbox_delivered"] = "outbox_delivered"


@dataclass(frozen=True)
class ItemReady:
    """A for_each child got a slot (its parent's counters handed it out): start it."""

    key: str
    kind: Literal["item_ready"] = "item_ready"


@dataclass(frozen=True)
class DependencyEnded:
    """``dependency`` ended (succeeded, skipped, or failed with its failure handled by its catch
    rule ``handled_by``): ``key``, which depends on it, counts it."""

    key: str
    dependency: str
    skipped: bool = False
    failed: bool = False
    handled_by: int | None = None
    kind: Literal["dependency_ended"] = "dependency_ended"


@dataclass(frozen=True)
class LeaseExpired:
    """Attempt ``attempt`` of a step with no due time of its own (no timeout) gave no result
    within its lease; the run's (or its fan-out's) watch noticed."""

    key: str
    attempt: int
    kind: Literal["lease_expired"] = "lease_expired"


@dataclass(frozen=True)
class FanoutSettled:
    """A for_each parent's counters say every child has ended, or ``failure`` (the child that
    went past the tolerated failures: ``index`` and ``error``) happened: gather or fail."""

    key: str
    failure: dict[str, Any] | None = None
    kind: Literal["fanout_settled"] = "fanout_settled"


@dataclass(frozen=True)
class StepReached:
    """A code-first replay reached ``key``, which has no record yet: ``step`` is the
    :class:`~stepwell.code.protocol.Issue` to start or the
    :class:`~stepwell.code.protocol.Checkpoint` (an inline step's result) to record;
    ``replay`` is the replay's attempt number (which steps came before which)."""

    key: str
    step: Any
    replay: int
    kind: Literal["step_reached"] = "step_reached"


@dataclass(frozen=True)
class EventReceived:
    """Events from the bus that carry the correlation value attempt ``attempt`` of the event
    wait ``key`` waits for (a buffered one found as the wait opened, or one as it arrived):
    the first that passes the wait's filter and schema completes it."""

    key: str
    attempt: int
    events: tuple[dict[str, Any], ...]
    """Each as the step's output shows it: id, source, detail_type, time, detail."""
    kind: Literal["event_received"] = "event_received"


@dataclass(frozen=True)
class SlotOffered:
    """A slot of a concurrency key may be free: a queued run takes it and starts, or (``key``)
    a step's attempt waiting for one takes it and is dispatched."""

    changes: int
    """The key's count of takes and releases when the offer read it (engine.slots)."""
    held: tuple[str, ...] = ()
    """A singleton in ``skip`` mode: the runs holding the key when every slot is held."""
    recent: tuple[str, ...] = ()
    """A throttled key: its latest starts (ISO times, oldest first)."""
    key: str | None = None
    """A step's key: its attempt waits for the slot (step-level concurrency), not the run."""
    kind: Literal["slot_offered"] = "slot_offered"


@dataclass(frozen=True)
class Debounced:
    """Another start of the debounced run's key: the run, still waiting, takes its input and
    waits the period again."""

    input: Any
    kind: Literal["debounced"] = "debounced"


@dataclass(frozen=True)
class CancelOnEvent:
    """Events from the bus that carry a correlation value of the run's ``cancel_on``: the
    first that passes its filter and schema cancels the run (a run-level commit)."""

    events: tuple[dict[str, Any], ...]
    kind: Literal["cancel_on_event"] = "cancel_on_event"


@dataclass(frozen=True)
class NotificationDelivered:
    """A channel sent a step's people their links, or failed to (tried again later, or given
    up): noted on the step's timeline, nothing else changes."""

    key: str
    channel: str
    to: str
    """The person (an e-mail), or the name of the secret holding the Slack webhook's URL."""
    reason: str
    """Why the links went out: requested, reminder, escalation, delegation."""
    sent: bool
    tries: int = 1
    error: str | None = None
    retry_at: str | None = None
    """When it is tried again (None: sent, or given up)."""
    kind: Literal["notification_delivered"] = "notification_delivered"


Event = (
    StepSucceeded
    | StepFailed
    | TimerFired
    | ApprovalDecided
    | CallbackReceived
    | ChildRunEnded
    | ChildRunStarted
    | CancelRequested
    | Continue
    | SkipRequested
    | RetryRequested
    | OutboxDelivered
    | ItemReady
    | DependencyEnded
    | LeaseExpired
    | FanoutSettled
    | StepReached
    | Heartbeat
    | EventReceived
    | SlotOffered
    | Debounced
    | CancelOnEvent
    | NotificationDelivered
)


CANCEL_ON_KEY = "$cancel_on"
"""The key a run's cancel_on watches are indexed under among the event waits."""


def received(key: str, attempt: int, events: tuple[dict[str, Any], ...]) -> Event:
    """What the index's delivery of ``events`` to wait ``key`` is to its run."""
    if key == CANCEL_ON_KEY:
        return CancelOnEvent(events)
    return EventReceived(key, attempt, events)
