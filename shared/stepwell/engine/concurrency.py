"""Runs of a workflow with ``concurrency``: at most ``limit`` per key hold a slot at once.

A run is created ``queued`` in its key's queue and asks for its key's free slots to be offered
(``OfferSlot``); offered one (``SlotOffered``), the queue's head takes it in the commit that
starts it. Every end of a started run gives its slot back and offers it on (engine.run), so the
run that releases a slot hands it to the next; nothing is polled per queued run. What each
commit changes of the key is a :class:`~stepwell.engine.slots.SlotChange`.
"""

from __future__ import annotations

from typing import Any

from stepwell import expressions
from stepwell.engine import slots
from stepwell.engine.decision import Work


def assign(work: Work, priority: int | None) -> None:
    """Decide the new run's key and priority from its input (a start request's priority wins)."""
    concurrency = work.definition.concurrency
    if concurrency is None:
        return
    run = work.touch_run()
    key = _rendered(work, concurrency.key, "")
    if priority is None:
        priority = _priority(work, _rendered(work, work.definition.priority, 0))
    run.slot = {
        "key": slots.key_of(run.workflow, expressions.as_text(key)),
        "limit": concurrency.limit,
        "priority": priority,
    }


def queue(work: Work) -> None:
    """The run joins its key's queue, and the key's free slots are offered."""
    run = work.touch_run()
    assert run.slot is not None
    run.status = "queued"
    run.slot = {**run.slot, "place": slots.place(int(run.slot["priority"]), work.now, run.id)}
    work.slot = slots.change("queue", run.slot, run.id)
    name = str(run.slot["key"]).partition("#")[2] or run.workflow
    work.note(
        "run_queued",
        None,
        f"queued for a slot of key {name} (at most {run.slot['limit']} at once, "
        f"priority {run.slot['priority']})",
    )
    work.emit(slots.offer(run.slot))


def take(work: Work, seen: int) -> bool:
    """A queued run offered a slot takes it (the store refuses the commit if none is free, or
    if a slot changed hands since the offer read the key's ``seen`` changes)."""
    run = work.run
    if run.status != "queued" or run.slot is None:
        return False
    work.touch_run()
    work.slot = slots.change("take", run.slot, run.id, seen)
    return True


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
