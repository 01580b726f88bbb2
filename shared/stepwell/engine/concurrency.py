"""Flow control across runs: ``concurrency``, ``singleton``, ``throttle`` and ``debounce``.

A run of a keyed workflow is created ``queued`` in its key's queue and asks for its key's free
slots to be offered (``OfferSlot``); offered one (``SlotOffered``), the queue's head takes it
in the commit that starts it. Every end of a started run gives its slot back and offers it on
(engine.run), so the run that releases a slot hands it to the next; nothing is polled per
queued run. A singleton is a key of one slot; a throttled key counts starts in a window, and
its queue's head waits on a timer of its own. A debounced run waits ``scheduled`` holding its
key, and later starts of the key give it their input. What each commit changes of a key is a
:class:`~stepwell.engine.slots.SlotChange` or a :class:`~stepwell.engine.slots.Pending`.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from stepwell import expressions
from stepwell.engine import slots
from stepwell.engine.commands import ScheduleTimer
from stepwell.engine.decision import Work
from stepwell.engine.events import Debounced, SlotOffered
from stepwell.engine.run import end_run, let_go_of_debounce
from stepwell.engine.slots import KeySlots


def assign(work: Work, priority: int | None) -> None:
    """Decide the new run's key and priority from its input (a start request's priority wins)."""
    definition = work.definition
    limits = definition.concurrency or definition.throttle or definition.singleton
    if limits is None:
        return
    run = work.touch_run()
    key = _rendered(work, limits.key, "")
    run.slot = {"key": slots.key_of(run.workflow, expressions.as_text(key))}
    if definition.concurrency is not None:
        if priority is None:
            priority = _priority(work, _rendered(work, definition.priority, 0))
        run.slot |= {"limit": definition.concurrency.limit, "priority": priority}
    elif definition.throttle is not None:
        if priority is None:
            priority = _priority(work, _rendered(work, definition.priority, 0))
        period = int(definition.throttle.period.total_seconds())
        run.slot |= {"limit": definition.throttle.limit, "priority": priority, "period": period}
    elif definition.singleton is not None:
        # The newest start wins or loses by time alone: its place is its start order.
        run.slot |= {"limit": 1, "priority": 0, "mode": definition.singleton.mode}


def free(work: Work, seen: KeySlots | None) -> bool:
    """A new run whose key was read as it is made (``seen``) takes a free slot in the commit
    that creates it when nobody waits in the key's queue (True: it starts now). A singleton
    and a throttled key always go through the queue (their offer decides more than a slot)."""
    slot = work.run.slot
    if seen is None or slot is None or not slots.reads_ahead(slot):
        return False
    if seen.head is not None or len(seen.held) >= int(slot["limit"]):
        return False
    run = work.touch_run()
    run.slot = slot = {**slot, "place": slots.place(int(slot["priority"]), work.now, run.id)}
    work.slot = replace(slots.change("take", slot, run.id, seen.changes), direct=True)
    return True


def queue(work: Work, seen: KeySlots | None = None) -> None:
    """The run joins its key's queue, and the key's free slots are offered; a new run whose
    key was read as it is made (``seen``, no slot free) joins it on the condition that no slot
    changed hands since, with no offer (every later release makes one)."""
    run = work.touch_run()
    assert run.slot is not None
    let_go_of_debounce(work)
    run.status = "queued"
    run.started_at = None  # it starts when it takes a slot
    # Nothing is due while it waits (a scheduled run's time has come) and nothing runs to
    # watch: the sweep never looks at a queued run, except a throttled head's timer.
    run.due_at = run.watch_at = None
    run.slot = {**run.slot, "place": slots.place(int(run.slot["priority"]), work.now, run.id)}
    work.slot = slots.change("queue", run.slot, run.id)
    if seen is not None and slots.reads_ahead(run.slot):
        work.slot = replace(work.slot, seen=seen.changes, direct=True)
    name = _key_name(work)
    limit = run.slot["limit"]
    bound = (
        f"at most {limit} starts within {timedelta(seconds=int(run.slot['period']))}"
        if "period" in run.slot
        else f"at most {limit} at once"
    )
    work.note(
        "run_queued",
        None,
        f"queued for a slot of key {name} ({bound}, priority {run.slot['priority']})",
    )
    if not work.slot.direct:
        work.emit(slots.offer(run.slot, newcomer=True))


def offered(work: Work, event: SlotOffered) -> bool:
    """A queued run offered a slot takes it and starts (the store refuses the commit if none
    is free, or if a slot changed hands since the offer read the key's changes); a singleton
    in ``skip`` mode offered a key that is held ends skipped. True when it starts."""
    run = work.run
    if run.status != "queued" or run.slot is None:
        return False
    if event.held and run.slot.get("mode") == "skip":
        message = f"skipped: run {event.held[0]} of key {_key_name(work)} is running (singleton)"
        work.note("run_skipped", None, message)
        end_run(work, "cancelled", {"type": "Skipped", "message": message})
        return False
    if "period" in run.slot:
        return _throttled(work, event)
    work.touch_run()
    work.slot = slots.change("take", run.slot, run.id, event.changes)
    return True


def _throttled(work: Work, event: SlotOffered) -> bool:
    """A throttled run starts if fewer than ``limit`` of its key's runs started within the
    period before now; otherwise it waits for the time the oldest of them leaves the window
    (its own timer: only the queue's head has one)."""
    run = work.run
    assert run.slot is not None
    limit, period = int(run.slot["limit"]), timedelta(seconds=int(run.slot["period"]))
    recent = event.recent[-limit:] if len(event.recent) >= limit else ()
    opens = datetime.fromisoformat(recent[0]) + period if recent else work.now
    if opens > work.now:
        if run.due_at != opens:
            work.touch_run().due_at = opens
            work.note(
                "run_throttled",
                None,
                f"throttled: {limit} runs of key {_key_name(work)} started within {period}; "
                f"it may start at {opens.isoformat()}",
            )
            work.emit(ScheduleTimer(run.id, None, opens))
        return False
    work.touch_run()
    latest = (*event.recent, work.now.isoformat())[-limit:]
    work.slot = slots.change("take", run.slot, run.id, event.changes, latest)
    return True


def wake(work: Work) -> None:
    """A queued run's timer (a throttled head's window opening): its key is offered again."""
    run = work.run
    if run.slot is not None and run.due_at is not None and run.due_at <= work.now:
        work.touch_run().due_at = None
        work.emit(slots.offer(run.slot))


def debounce_key(work: Work) -> None:
    """A new run of a workflow with ``debounce`` holds its key while it waits (its start is
    scheduled ``period`` ahead by :func:`stepwell.engine.core.start_run`)."""
    debounce = work.definition.debounce
    if debounce is None:
        return
    run = work.touch_run()
    key = expressions.as_text(_rendered(work, debounce.key, ""))
    run.debounce = slots.key_of(run.workflow, key)
    work.pending = slots.Pending("claim", run.debounce, run.id)


def debounced(work: Work, event: Debounced) -> None:
    """Another start of the key: the waiting run takes its input and waits the period again.
    A run that no longer waits changes nothing (the start makes a run of its own)."""
    run, debounce = work.run, work.definition.debounce
    if run.status != "scheduled" or run.debounce is None or debounce is None:
        return
    run = work.touch_run()
    run.input = event.input
    run.due_at = work.now + debounce.period
    work.note(
        "run_debounced",
        None,
        f"started again within {debounce.period}: the latest input, to start at "
        f"{run.due_at.isoformat()}",
    )
    work.emit(ScheduleTimer(run.id, None, run.due_at))


def _key_name(work: Work) -> str:
    """The key as its workflow's expression made it (the workflow's name for one key)."""
    run = work.run
    assert run.slot is not None
    return str(run.slot["key"]).partition("#")[2] or run.workflow


def _rendered(work: Work, template: Any, default: Any) -> Any:
    if template is None:
        return default
    try:
        return expressions.render(template, {"input": work.run.input})
    except expressions.ExpressionError as exc:
        work.note("flow_control_default", None, f"{exc}: {default!r} used")
        return default


def _priority(work: Work, value: Any) -> int:
    bound = slots.PRIORITY_BOUND
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or not -bound < value < bound:
        work.note("flow_control_default", None, f"priority {value!r} is not an integer: 0 used")
        return 0
    return value


def requeue(work: Work, why: dict[str, Any], what: str) -> bool:
    """An ended run of a keyed workflow started again (an operator's retry): it waits in its
    key's queue like a new start, ``why`` kept on it for when it takes a slot. False when the
    workflow has no key."""
    slot = work.run.slot
    if slot is None:
        return False
    run = work.touch_run()
    run.error, run.ended_at = None, None
    run.slot = {**slot, **why}
    work.note("run_status", None, f"queued: {what} waits for a slot", status="queued")
    queue(work)
    return True


def resumed(work: Work) -> dict[str, Any]:
    """What a run that just took a slot waited for besides its start (``requeue``'s reason,
    or a rerun's step), taken off its record."""
    run = work.run
    if run.slot is None:
        return {}
    kept = {k: v for k, v in run.slot.items() if k in WAITED}
    if kept:
        run = work.touch_run()
        assert run.slot is not None
        run.slot = {k: v for k, v in run.slot.items() if k not in WAITED}
    return kept


WAITED = ("retry", "by", "failed_at", "rerun")
"""What a run waiting for a slot keeps on it to resume with (engine.core)."""
