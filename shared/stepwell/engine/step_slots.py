"""Step-level ``concurrency``: at most ``limit`` attempts of a step per key at once, across
all runs.

The same keys as runs' (engine.slots): an attempt past the limit waits ``waiting_for: slot`` in
its key's queue, in start order, and the key's free slots are offered (``OfferSlot``); offered
one (``SlotOffered`` with the step's key), it takes it in the commit that dispatches it. Every
end of the attempt gives the slot back in its own commit and offers it on, so the attempt that
releases a slot hands it to the next: its success or failure, a retry (the new attempt queues
again), a timeout, a lease that ran out, a skip, a cancel, the run's end. Nothing is polled per
waiting attempt. Each change is written in the run's transaction with the step's record, so an
attempt holds a slot exactly while the step's record says ``slot: held``.
"""

from __future__ import annotations

from stepwell import expressions
from stepwell.definition.models import Step
from stepwell.engine import slots
from stepwell.engine.commands import OfferSlot
from stepwell.engine.decision import Work
from stepwell.engine.events import SlotOffered
from stepwell.engine.state import StepState, parse_key

HELD = "held"
"""A step's ``slot`` while its attempt holds one."""


def waits(work: Work, step: StepState, spec: Step) -> bool:
    """Whether the attempt about to start must wait for a slot of its step's key; if so, it
    joins the key's queue (the step waits) and the key's free slots are offered."""
    limits = spec.concurrency
    if limits is None or step.slot == HELD:
        return False
    if step.slot is not None:
        return True  # already waiting in the queue
    key = _key(work, step, spec)
    holder = _holder(work, step)
    step.slot = slots.place(0, work.now, holder)
    work.set_status(step, "waiting")
    step.waiting_for = "slot"
    step.due_at = None
    work.change_slot(slots.SlotChange("queue", key, holder, limits.limit, step.slot))
    work.note(
        "step_queued",
        step,
        f"waiting for a slot of key {_name(key)} (at most {limits.limit} at once)",
    )
    work.emit(OfferSlot(key, limits.limit))
    return True


def take(work: Work, event: SlotOffered) -> StepState | None:
    """A step waiting for a slot takes the one offered: the step to start its attempt now
    (the store refuses the commit if no slot is free, or if one changed hands since the offer
    read the key). None when the step no longer waits for one."""
    assert event.key is not None
    record = work.peek(event.key)
    if record is None or record.slot in (None, HELD):
        return None
    step = work.step(event.key)
    assert step is not None and step.slot is not None
    spec = work.spec(step.key)
    if work.run.terminal or step.terminal or spec.concurrency is None:
        let_go(work, step)  # cannot happen while records agree; never block the queue
        return None
    key, holder = _key(work, step, spec), _holder(work, step)
    change = slots.SlotChange("take", key, holder, spec.concurrency.limit, step.slot, event.changes)
    work.change_slot(change)
    step.slot = HELD
    return step


def let_go(work: Work, step: StepState) -> None:
    """Every end of an attempt of a step with ``concurrency`` passes here: a slot it holds is
    given back and offered on; a place in the queue is left."""
    if step.slot is None:
        return
    spec = work.spec(step.key)
    limits = spec.concurrency
    key, holder = _key(work, step, spec), _holder(work, step)
    limit = limits.limit if limits is not None else 1
    if step.slot == HELD:
        work.change_slot(slots.SlotChange("release", key, holder, limit, ""))
    else:
        work.change_slot(slots.SlotChange("leave", key, holder, limit, step.slot))
    step.slot = None
    # A leave frees nothing, but the one behind a head that leaves may have a slot waiting.
    work.emit(OfferSlot(key, limit))


def holder_of(holder: str) -> tuple[str, str | None]:
    """The run and step a key's holder or queued entry names (a run's own: no step)."""
    run_id, _, key = holder.partition("/")
    return run_id, key or None


def _holder(work: Work, step: StepState) -> str:
    # Run ids never hold '/' (the API addresses them in its paths).
    return f"{work.run.id}/{step.key}"


def _key(work: Work, step: StepState, spec: Step) -> str:
    """The step's key across runs: the workflow, the step, and its expression over the input."""
    assert spec.concurrency is not None
    value = ""
    if spec.concurrency.key:
        try:
            value = expressions.render(spec.concurrency.key, {"input": work.run.input})
        except expressions.ExpressionError as exc:
            work.note("flow_control_default", step, f"{exc}: one key for the step used")
            value = ""
    return slots.key_of(f"{work.run.workflow}/{parse_key(step.key)[0]}", expressions.as_text(value))


def _name(key: str) -> str:
    return key.partition("#")[2] or key.partition("#")[0]
