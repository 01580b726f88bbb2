"""The pure engine: ``(definition, state, event, now) -> Decision``.

Over 500 lines: the one place every event and every step's end is routed (the table of kinds,
settle, the operator's skip and retry) is kept whole on purpose.

No I/O and no clock: time comes in as ``now``, effects go out as commands. When the state lacks a
record the engine needs, it raises :class:`~stepwell.engine.state.NeedsRecords`; the caller
loads those records and calls again (the engine is deterministic, so the retry is exact).
:func:`reads_for` names the records an event will need, so callers usually load them up front.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine import (
    attempts,
    cancel_on,
    codeflow,
    concurrency,
    dag,
    fanout,
    notified,
    outcomes,
    scheduled,
    step_slots,
)
from stepwell.engine.commands import (
    EmitEvent,
    FollowUp,
    ScheduleTimer,
    from_wire,
)
from stepwell.engine.decision import (
    OUTBOX_GRACE,
    RUN_WATCH,
    AsksPeople,
    Decision,
    Driver,
    HoldsOutside,
    Kind,
    Work,
)
from stepwell.engine.events import (
    ApprovalDecided,
    CallbackReceived,
    CancelOnEvent,
    CancelRequested,
    ChildRunEnded,
    ChildRunStarted,
    Continue,
    Debounced,
    DependencyEnded,
    Event,
    EventReceived,
    FanoutSettled,
    Heartbeat,
    ItemReady,
    LeaseExpired,
    NotificationDelivered,
    OutboxDelivered,
    RetryRequested,
    SkipRequested,
    SlotOffered,
    StepFailed,
    StepReached,
    StepSucceeded,
    TimerFired,
)
from stepwell.engine.kinds import (
    approval,
    callback,
    child_run,
    condition,
    delay,
    form,
    poll,
    task,
)
from stepwell.engine.kinds import event as event_wait
from stepwell.engine.run import cancel_open_steps
from stepwell.engine.slots import KeySlots
from stepwell.engine.state import RunStart, RunState, State, StepState, parse_key

MAX_RUN_DURATION = timedelta(days=365)
"""The longest a run may last (a workflow's ``timeout`` may be shorter), so its records' expiry
is known when they are created: the first event after it times the run out."""


def new_run(definition: Workflow, start: RunStart, now: datetime, nonce: str = "") -> RunState:
    """A new run record pinned to ``definition``'s version, with every step still open;
    ``scheduled`` until ``start.start_at`` when that is later than ``now``."""
    start_at = start.start_at
    later = start_at is not None and start_at > now
    begins = start_at if start_at is not None and later else now
    deadline = begins + min(definition.timeout or MAX_RUN_DURATION, MAX_RUN_DURATION)
    return RunState(
        id=start.run_id,
        workflow=definition.name,
        version=definition.version,
        status="scheduled" if later else "running",
        input=start.input,
        created_at=now,
        started_at=None if later else now,
        context=dict(definition.context),
        labels=dict(start.labels or {}),
        open_steps=len(definition.sinks),
        due_at=begins if later else (now + definition.timeout if definition.timeout else None),
        deadline=deadline,
        watch_at=None if later else now + RUN_WATCH,
        parent=start.parent,
        rerun_of=start.rerun_of,
        continued_from=start.continued_from,
        dry_run=start.dry_run,
        nonce=nonce,
        started_by=start.started_by,
    )


def announce(work: Work, message: str, **data: Any) -> None:
    """Note and announce a run's start, and set its run timer."""
    run = work.run
    work.note("run_started", None, message, version=run.version, **data)
    work.emit(
        EmitEvent(
            "run.started", {"run_id": run.id, "workflow": run.workflow, "version": run.version}
        )
    )
    if run.due_at is not None:
        work.emit(ScheduleTimer(run.id, None, run.due_at))
    cancel_on.watch(work)


def start_run(
    definition: Workflow,
    start: RunStart,
    now: datetime,
    *,
    nonce: str = "",
    groups: Mapping[str, tuple[str, ...] | None] | None = None,
    seen: KeySlots | None = None,
) -> Decision:
    """Create a run pinned to ``definition``'s version and start its root steps (at
    ``start.start_at``, when that is later than ``now``; queued for a slot when the workflow
    has ``concurrency``, ``start.priority`` its place in the queue).

    ``nonce`` is the run's secret (the caller draws it: the engine has no randomness);
    ``groups``: those a root wait asked for (``NeedsGroups``) and the caller looked up;
    ``seen``: its concurrency key as the caller read it (a free slot is taken at once)."""
    if definition.debounce is not None:
        start_at = max(start.start_at or now, now) + definition.debounce.period
        start = replace(start, start_at=start_at)
    run = new_run(definition, start, now, nonce)
    work = work_for(definition, State(run=run, complete=True, groups=dict(groups or {})), now)
    concurrency.assign(work, start.priority)
    concurrency.debounce_key(work)
    if run.status == "scheduled" and run.due_at is not None:
        scheduled.schedule(work, run.due_at)
    elif work.run.slot is not None and not concurrency.free(work, seen):
        work.run.deadline = now + MAX_RUN_DURATION  # its timeout counts from its start
        concurrency.queue(work, seen)
    else:
        _begin(work)
        if work.run.terminal:
            cancel_on.release(work)  # it ended as it began
    return work.decision(created=True)


def _begin(work: Work) -> None:
    definition, run = work.definition, work.run
    announce(
        work,
        f"{definition.name} version {definition.version}" + (" (dry run)" if run.dry_run else ""),
    )
    work.driver.start(work)


KINDS: Mapping[str, Kind] = {
    "task": task.TASK,
    "http": task.HTTP,
    "notify": task.NOTIFY,
    "agent": task.AGENT,
    "shell": task.SHELL,
    "aws": task.AWS,
    "code": task.REPLAY,
    "workflow": child_run,
    "approval": approval,
    "input": form,
    "delay": delay,
    "callback": callback,
    "condition": condition,
    "poll": poll,
    "event": event_wait,
}
"""The table of step kinds, by step type (a code-first wait_for_condition's record: ``poll``)."""


def work_for(definition: Workflow, state: State, now: datetime) -> Work:
    """The working set of a decision: its ends settled by :func:`settle`, its kinds
    :data:`KINDS`, its driver the DAG or (a code-first run) the replay."""
    return Work(definition, state, now, settle, KINDS, driver_of(definition))


def driver_of(definition: Workflow) -> Driver:
    """How runs of ``definition`` move: the replay of its code, or its DAG."""
    return codeflow if definition.code is not None else dag


def settle(work: Work, step: StepState) -> None:
    """Every end of a step (engine.outcomes, and the run's end cancelling it) is settled here,
    once: its kind lets go of what it holds outside the run (and its attempt of its slot);
    then it is counted on its
    fan-out, or the driver's (the next compensation, the replay woken, or its dependents told
    and maybe the run ended)."""
    kind = work.kind(_type_of(work, step))
    if isinstance(kind, HoldsOutside):
        kind.release(work, step)
    step_slots.let_go(work, step)
    if step.status == "cancelled":
        return  # cancelled because the run ended or is ending (engine.run): nothing follows
    _, index = parse_key(step.key)
    if index is not None:
        fanout.child_ended(work, step)  # a YAML for_each's child, or a ctx.for_each's
    else:
        work.driver.ended(work, step)


def decide(definition: Workflow, state: State, event: Event, now: datetime) -> Decision:
    """Apply one event to a run. Raises NeedsRecords when ``state`` lacks a record."""
    work = work_for(definition, state, now)
    _apply(work, event)
    if work.run.terminal and not state.run.terminal:
        cancel_on.release(work)  # whichever way the run ended
    return work.decision()


def _apply(work: Work, event: Event) -> None:
    run = work.run
    # A run undoing its steps may go past its deadline (its records outlive it by the retention
    # period): its compensations' own timeouts bound it.
    undoing_steps = run.compensation is not None
    if (
        not run.terminal
        and not undoing_steps
        and run.deadline is not None
        and run.deadline <= work.now
    ):
        work.driver.end(
            work,
            "timed_out",
            {"type": "RunTimedOut", "message": "the run reached the longest a run may last"},
        )
        return
    if isinstance(event, StepSucceeded | StepFailed) and event.key == WORKFLOW_KEY:
        codeflow.begun(work, event.attempt)
    match event:
        case StepSucceeded():
            work.driver.on_succeeded(work, event)  # a code-first run's: maybe the replay's answer
        case StepFailed():
            attempts.on_failed(work, event)
        case ChildRunEnded():
            child_run.on_ended(work, event)
        case ChildRunStarted():
            child_run.on_started(work, event)
        case TimerFired():
            _on_timer(work, event)
        case ApprovalDecided():
            _on_decided(work, event)
        case CallbackReceived():
            callback.on_signal(work, event)
        case EventReceived():
            event_wait.on_event(work, event)
        case CancelRequested():
            _on_cancel(work, event)
        case CancelOnEvent():
            why = cancel_on.reason(work, event)
            if why is not None:
                _on_cancel(work, CancelRequested(f"cancel_on: {why}"))
        case Continue():
            _on_continue(work, event)
        case SkipRequested():
            _on_skip(work, event)
        case RetryRequested():
            _on_retry(work, event)
        case OutboxDelivered():
            _on_delivered(work, event)
        case DependencyEnded():
            work.driver.on_dependency_ended(work, event)
        case StepReached():
            codeflow.on_reached(work, event)
        case Heartbeat():
            attempts.on_heartbeat(work, event)
        case ItemReady():
            fanout.on_ready(work, event)
        case LeaseExpired():
            attempts.on_lease_expired(work, event)
        case FanoutSettled():
            fanout.on_settled(work, event)
        case Debounced():
            concurrency.debounced(work, event)
        case NotificationDelivered():
            notified.on_delivered(work, event)
        case SlotOffered(key=str()):
            step = step_slots.take(work, event)
            if step is not None:
                attempts.start(work, step, work.spec(step.key))
        case SlotOffered():
            if concurrency.offered(work, event):
                scheduled.begin(work, work.definition.timeout)
                _resume(work)


def _on_timer(work: Work, event: TimerFired) -> None:
    if event.key is None:
        run = work.run
        if run.status == "scheduled":
            if scheduled.due(work) and run.slot is not None:
                work.touch_run().deadline = work.now + MAX_RUN_DURATION
                concurrency.queue(work)
            elif scheduled.due(work):
                scheduled.begin(work, work.definition.timeout)
                _begin(work)
            return
        if run.outbox and run.outbox_due is not None and run.outbox_due <= work.now:
            _redeliver(work)
        if run.status == "queued":
            concurrency.wake(work)
            return
        if not run.terminal and run.watch_at is not None and run.watch_at <= work.now:
            _watch(work)
        if not run.terminal and run.due_at is not None and run.due_at <= work.now:
            if run.cancelling is not None:
                codeflow.cancelled(work, "its clean-up did not end within the grace period")
                return
            work.driver.end(
                work,
                "timed_out",
                {"type": "RunTimedOut", "message": "the run did not end within its timeout"},
            )
        return
    record = work.peek(event.key)
    if record is None or record.due_at is None or record.due_at > work.now:
        return  # an early or stale timer: the step's due time says when it is really due
    step = work.step(event.key)
    assert step is not None
    if work.run.terminal or step.terminal:
        step.due_at = None  # nothing to do any more; stop the sweep from finding it
        return
    if step.is_fanout:
        fanout.watch(work, step)
    else:
        work.kind(_type_of(work, step)).on_timer(work, step)


def _on_decided(work: Work, event: ApprovalDecided) -> None:
    """A person's answer goes to the kind of the step it answers (an approval's when the step
    has no record: it says the approval is not open)."""
    record = work.peek(event.key)
    kind = work.kind(_type_of(work, record)) if record is not None else approval
    if isinstance(kind, AsksPeople):
        kind.on_decision(work, event)
    else:
        work.note("decision_ignored", event.key, "this step does not wait on people")


def _type_of(work: Work, step: StepState) -> str:
    """A step's type: a code-first step's is on its record (a wait_for_condition's too)."""
    if step.spec is not None:
        return str(step.spec["type"])
    return work.spec(step.key).type


def _watch(work: Work) -> None:
    """The run's watch: tell dependents the ends a dead invocation did not tell them, and send
    again the attempts whose lease ran out with no result (steps without a timeout have no due
    time of their own). Reads the whole run, every RUN_WATCH while a step of it is active; a
    run that only waits (on a person, a callback, a delay) is not watched until a wait ends."""
    work.state.require_all()
    definition = work.definition
    began = work.run.started_at
    if began is not None and work.now < began + 2 * RUN_WATCH:
        cancel_on.watch(work)  # its first watch: a second look at the kept events
    busy = work.driver.watch(work)
    for key in sorted(work.state.steps):
        record = work.peek(key)
        if record is None or record.index is not None:
            continue
        if record.status in ("running", "retrying"):
            busy = True
        started = record.attempt_started_at
        if record.status == "running" and record.due_at is None and started is not None:
            if started + attempts.DEFAULT_LEASE <= work.now:
                work.emit(FollowUp(work.run.id, LeaseExpired(key, record.attempt)))
            continue
        handled = record.status == "failed" and record.handled_by is not None
        told = record.status in ("succeeded", "skipped") or handled
        if not told or key not in definition.steps:
            continue
        for dependent in definition.dependents[key]:
            found = work.peek(dependent)
            if found is None or (found.status == "pending" and key not in found.deps_ended):
                busy = True
                work.emit(FollowUp(work.run.id, dag.notice(dependent, record)))
    work.touch_run().watch_at = work.now + RUN_WATCH if busy else None


def _redeliver(work: Work) -> None:
    """Carry out the outbox again: the invocation that committed it died before clearing it."""
    run = work.touch_run()
    for entry in run.outbox:
        work.commands.append(from_wire(entry))
        work.outbox_sent.append(entry["id"])
    run.outbox_due = work.now + OUTBOX_GRACE
    work.note("outbox_redelivered", None, f"{len(run.outbox)} pending effects sent again")


def _on_delivered(work: Work, event: OutboxDelivered) -> None:
    delivered = set(event.ids)
    if not any(entry["id"] in delivered for entry in work.run.outbox):
        return
    run = work.touch_run()
    run.outbox = [entry for entry in run.outbox if entry["id"] not in delivered]
    if not run.outbox:
        run.outbox_due = None


def _on_cancel(work: Work, event: CancelRequested) -> None:
    if work.run.terminal:
        work.note("cancel_ignored", None, f"the run is already {work.run.status}")
        return
    by = f" by {event.by}" if event.by else ""
    work.note("cancel_requested", None, f"{event.reason}{by}")
    if work.run.status in ("scheduled", "queued"):
        scheduled.cancel(work, f"{event.reason}{by}")
        return
    work.driver.cancel(work, f"{event.reason}{by}")


def _on_continue(work: Work, event: Continue) -> None:
    run = work.run
    if run.terminal or run.compensation is not None or run.cancelling is not None:
        cancel_open_steps(work)  # the rest of what a bounded call left open


def _on_skip(work: Work, event: SkipRequested) -> None:
    step_id, index = parse_key(event.key)
    known = work.driver.knows(work.definition, step_id)
    record = work.peek(event.key) if known else None
    ahead = known and index is None and work.driver.skips_ahead
    if work.run.terminal or (record is None and not ahead) or (record and record.terminal):
        work.note("skip_ignored", event.key, "the step is not open")
        return
    step = work.step(event.key) if record is not None else work.step_or_new(event.key)
    assert step is not None
    step.due_at = None
    by = event.by or "an operator"
    if event.output is None:
        outcomes.skip(work, step, f"skipped by {by}")
        return
    # Skipped with an output: the step counts as done with that output, and the steps after it
    # run on it (an operator doing the step's work by hand).
    work.note("step_skipped", step, f"skipped by {by}, with an output for the steps after it")
    outcomes.succeed(work, step, event.output)


def _resume(work: Work) -> None:
    """A run that took a slot of its key: a new run begins, an operator's retry reopens it, a
    rerun starts what its copied steps let start."""
    waited = concurrency.resumed(work)
    if "retry" in waited:
        failed_at = datetime.fromisoformat(str(waited["failed_at"]))
        _reopen(work, str(waited["retry"]), str(waited["by"]), failed_at)
    elif "rerun" in waited:
        rerun_of, from_step = work.run.rerun_of, waited["rerun"]
        announce(
            work, f"rerun of {rerun_of} from {from_step}", rerun_of=rerun_of, from_step=from_step
        )
        work.driver.resume(work)
    else:
        _begin(work)


def _on_retry(work: Work, event: RetryRequested) -> None:
    """Redrive a run that failed because of ``event.key``: the step gets a new attempt, and the
    steps cancelled when the run failed start again (each with a new attempt). A run of a
    keyed workflow first waits for a slot of its key, like a new start."""
    record = work.peek(event.key) if event.key != WORKFLOW_KEY else None
    if record is None or record.status != "failed" or work.run.status != "failed":
        status = record.status if record else "not started"
        work.note(
            "retry_ignored",
            event.key,
            f"only a failed step of a failed run can be retried (step {status}, "
            f"run {work.run.status})",
        )
        return
    by = event.by or "an operator"
    failed_at = work.run.ended_at
    assert failed_at is not None
    retry = {"retry": event.key, "by": by, "failed_at": failed_at.isoformat()}
    if not concurrency.requeue(work, retry, f"retry of {event.key} by {by}"):
        _reopen(work, event.key, by, failed_at)


def _reopen(work: Work, failed: str, by: str, failed_at: datetime | None) -> None:
    work.state.require_all()
    run = work.touch_run()
    run.status, run.error, run.ended_at = "running", None, None
    work.note("run_status", None, f"running: retry of {failed} by {by}", status="running")
    reopened = [failed]
    step_id, index = parse_key(failed)
    run.watch_at = work.now + RUN_WATCH
    # A failed step ended without counting as a sink's end (a failure ends the run instead).
    if index is not None:
        parent = work.step(step_id)
        if parent is not None and parent.status == "failed":
            parent.children_failed -= 1
            parent.error, parent.ended_at = None, None
            work.set_status(parent, "running")
            parent.due_at = work.now + fanout.WATCH
    for key in sorted(set(work.state.steps) | set(work.steps)):
        candidate = work.peek(key)
        if candidate is None or candidate.status != "cancelled":
            continue
        if work.driver.reopens(candidate, failed_at):
            reopened.append(key)
    parents = {step_id} if index is not None else set()
    for key in reopened:
        step = work.step(key)
        assert step is not None
        step.error, step.ended_at = None, None
        if step.is_fanout:
            work.set_status(step, "running")  # its cancelled children restart one by one below
            step.due_at = work.now + fanout.WATCH
            parents.add(key)
            continue
        work.set_status(step, "pending")
        work.driver.restart(work, step)
    for key in sorted(parents):
        parent = work.peek(key)
        if parent is not None and parent.is_fanout and parent.status == "running":
            fanout.reopen(work, parent)
    work.driver.redriven(work, reopened)


def reads_for(definition: Workflow, event: Event) -> set[str]:
    """The step records an event will likely need: load them in one batch before deciding."""
    keys: set[str] = set()
    key = getattr(event, "key", None)
    if key is None:
        return keys
    keys.add(key)
    return keys | driver_of(definition).reads_for(definition, event, key, KINDS)
