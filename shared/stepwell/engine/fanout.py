"""for_each: one child per item, at most ``max_parallel`` at once, outputs gathered in order.

No lock on the run or the parent. A child's transitions (start, result, retry, timer) write the
child alone; its end is *counted* on the parent by one atomic update (:class:`CountItem`: add
to ``children_succeeded`` or ``children_failed`` and to the slot cursor ``next_child``, see
:func:`counted`), and what the returned counters say follows (:func:`after_count`): the slot
the count claimed starts its child, the count that brings the ended children to the total
settles the fan-out (gather, a run-level transition), and the count of the failure past the
tolerated ones fails it. However wide the fan-out, a child's end costs a bounded number of
requests and nothing waits for anything.

A child's record is written once it starts (on the condition that it does not exist yet), so
starting a fan-out of 10,000 items writes the parent alone. Its item comes from the parent's
``for_each`` list, rendered again from what never changes (the run's input, the outputs of
ended steps, the parent's start time) and kept in memory per process (:func:`items_of`).
A child without a timeout has no due time of its own: the watch also finds an attempt whose
lease ran out with no result.

A code-first ``ctx.for_each`` is this same fan-out: a task step issued with ``for_each``
``${items}``, evaluated over the step's own input (the items the code gave, see
``data.code_expression_data``); as a code-first step's definition lives on its record, each
child's goes on the child's (:func:`child_spec`), so its decisions read the child alone.

A count is carried out after the child's own write: an invocation that dies in between loses
the count (never doubles it: the child is already ended, so a repeated result is a duplicate),
and one that dies after a count loses the start of the slot it claimed. The parent's *watch*
(its due time, every :data:`WATCH` while it runs) finds both: when no count has happened for
:data:`SETTLE`, the children that ended before then are all counted or lost, so the parent's
counters are set to what the children say (on the condition that no count came in meanwhile),
and every child holding a slot that never started is started (its start is conditional on its
record, so a slow original start and the watch's never both win).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from datetime import datetime, timedelta
from typing import Any

from stepwell import expressions
from stepwell.definition.models import Step, Workflow
from stepwell.engine.attempts import DEFAULT_LEASE
from stepwell.engine.commands import CountItem, FollowUp
from stepwell.engine.decision import Work
from stepwell.engine.events import Event, FanoutSettled, ItemReady, LeaseExpired, SkipRequested
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.specs import parse_spec
from stepwell.engine.start import begin
from stepwell.engine.state import StepState, Usage, child_key, error_text, parse_key

WATCH = timedelta(minutes=5)
"""How often a running fan-out's parent looks for lost counts and lost starts."""
SETTLE = timedelta(minutes=2)
"""Longer than any result path takes from a child's write to its count: a child that ended
this long ago and is not counted was lost by a dead invocation."""
ITEMS_CACHED = 32
"""Rendered for_each lists a process keeps (the fan-outs it is serving)."""
_ITEMS: OrderedDict[tuple[str, ...], list[Any]] = OrderedDict()
_ITEMS_LOCK = threading.Lock()


def start(work: Work, parent: StepState, data: dict[str, Any]) -> None:
    """Evaluate the items and start the first ones (each in a decision of its own)."""
    spec = work.spec(parent.key)
    assert spec.for_each is not None
    items = expressions.render(spec.for_each, data, work.now)
    parent.started_at = work.now
    if not isinstance(items, list):
        fail_step(
            work,
            parent,
            "ForEachNotAList",
            f"step '{parent.key}': for_each gave {type(items).__name__}, not a list",
        )
        return
    parent.items_total = len(items)
    _keep(work, parent, items)
    work.set_status(parent, "running")
    work.note(
        "fanout_started",
        parent,
        f"{len(items)} items, {spec.max_parallel} at a time",
        items=len(items),
    )
    if not items:
        succeed(work, parent, [])
        return
    parent.next_child = min(spec.max_parallel, len(items))
    parent.due_at = work.now + WATCH
    for index in range(parent.next_child):
        work.emit(FollowUp(work.run.id, ItemReady(child_key(parent.key, index))))


def items_of(work: Work, parent: StepState) -> list[Any]:
    """The parent's ``for_each`` list: rendered again (at the parent's start time, from records
    that no longer change) unless this process has it."""
    key = _items_key(work, parent)
    with _ITEMS_LOCK:
        found = _ITEMS.get(key)
        if found is not None:
            _ITEMS.move_to_end(key)
            return found
    spec = work.spec(parent.key)
    data = work.driver.expression_data(work, parent.key)
    items = expressions.render(spec.for_each, data, parent.started_at)
    if not isinstance(items, list) or len(items) != parent.items_total:
        raise expressions.ExpressionError(
            str(spec.for_each),
            f"step '{parent.key}': for_each no longer gives the {parent.items_total} items it "
            "gave when the fan-out started",
        )
    _keep(work, parent, items)
    return items


def _items_key(work: Work, parent: StepState) -> tuple[str, ...]:
    """What makes a rendered list the same: the run (its id and secret) and the fan-out."""
    assert parent.started_at is not None
    run = work.run
    return (run.id, run.nonce, run.version, parent.key, parent.started_at.isoformat())


def _keep(work: Work, parent: StepState, items: list[Any]) -> None:
    with _ITEMS_LOCK:
        _ITEMS[_items_key(work, parent)] = items
        while len(_ITEMS) > ITEMS_CACHED:
            _ITEMS.popitem(last=False)


def on_ready(work: Work, event: ItemReady) -> None:
    """A child got a slot: write its record and begin it, unless it began already or its
    fan-out is over."""
    parent_key, index = parse_key(event.key)
    parent = work.peek(parent_key)
    if index is None or parent is None or parent.terminal or parent.items_total is None:
        return
    if work.peek(event.key) is not None or index >= parent.items_total:
        return  # started already (a repeated start, or the watch's and the count's both)
    try:
        item = items_of(work, parent)[index]
    except expressions.ExpressionError as exc:
        child = work.new_step(event.key, pending_deps=0)
        child.started_at = work.now
        fail_step(work, child, "ExpressionError", str(exc))
        return
    child = work.new_step(event.key, item=item, pending_deps=0, spec=child_spec(parent.spec))
    begin(work, child, work.driver.expression_data(work, parent_key, child))


FANOUT_FIELDS = ("for_each", "max_parallel", "tolerated_failures", "min_successful")
"""A fan-out's own fields: what its children's definition leaves out."""


def child_spec(spec: dict[str, Any] | None) -> dict[str, Any] | None:
    """A child's definition on its record: a code-first fan-out's (kept on its record) without
    the fan-out's fields, so each child's decisions read the child alone; None for a YAML
    fan-out's (its children's is the definition's step)."""
    if spec is None:
        return None
    return {name: value for name, value in spec.items() if name not in FANOUT_FIELDS}


def spec_in(definition: Workflow, parent: StepState) -> Step:
    """A fan-out's definition: its step in the definition, or (code-first) its record's."""
    found = definition.steps.get(parent.key)
    if found is not None:
        return found
    if parent.spec is None:
        raise KeyError(f"workflow {definition.name} has no step {parent.key!r}")
    return parse_spec(parent.spec)


def child_ended(work: Work, child: StepState) -> None:
    """Ask for the child's end to be counted on its parent (after this decision's commit)."""
    parent_key, index = parse_key(child.key)
    assert index is not None
    work.emit(
        CountItem(
            work.run.id,
            parent_key,
            index,
            child.status in ("succeeded", "skipped"),
            child.error if child.status not in ("succeeded", "skipped") else None,
            child.usage.cost_usd,
            child.usage.input_tokens,
            child.usage.output_tokens,
        )
    )


def counted(parent: StepState, count: CountItem, now: datetime) -> StepState | None:
    """The parent after ``count``, as a store's atomic update makes it: None (nothing changes)
    unless the parent is a running for_each; else one more ended child, one more slot handed
    out, the child's usage added and ``counted_at`` set. Stores implement exactly this."""
    if parent.status != "running" or parent.items_total is None:
        return None
    after = parent.copy()
    if count.succeeded:
        after.children_succeeded += 1
    else:
        after.children_failed += 1
    after.next_child += 1
    after.usage.add(Usage(count.cost_usd, count.input_tokens, count.output_tokens))
    after.counted_at = now
    return after


def after_count(definition: Workflow, parent: StepState, count: CountItem) -> list[Event]:
    """What the counters returned by a count call for: fail the fan-out (the failure past the
    tolerated ones), settle it (the last child ended), or start the child of the claimed
    slot. Pure: exactly one count sees each of these."""
    spec = spec_in(definition, parent)
    total = parent.items_total or 0
    tolerated, needed = spec.tolerated(total), spec.needed(total)
    if parent.children_failed > tolerated:
        if not count.succeeded and parent.children_failed == tolerated + 1:
            failure = {"index": count.index, "error": count.error}
            return [FanoutSettled(parent.key, failure)]
        return []  # already failing: start nothing more
    if needed is not None and parent.children_succeeded >= needed:
        # Enough succeeded: the count that got there settles it early, and nothing more starts.
        early = count.succeeded and parent.children_succeeded == needed
        return [FanoutSettled(parent.key)] if early else []
    if parent.children_ended >= total:
        return [FanoutSettled(parent.key)] if parent.children_ended == total else []
    slot = parent.next_child - 1
    return [ItemReady(child_key(parent.key, slot))] if slot < total else []


def on_settled(work: Work, event: FanoutSettled) -> None:
    """Every child has ended (gather), or one failed past the tolerated failures (fail)."""
    parent = work.peek(event.key)
    if parent is None or parent.terminal or parent.items_total is None or work.run.terminal:
        return
    spec = work.spec(event.key)
    step = work.step(event.key)
    assert step is not None
    total = step.items_total or 0
    tolerated, needed = spec.tolerated(total), spec.needed(total)
    if event.failure is not None or step.children_failed > tolerated:
        failure = event.failure or {}
        error = failure.get("error") or {"type": "ChildFailed", "message": "failed"}
        _fail(work, step, tolerated, failure.get("index"), error)
        if not work.run.terminal:  # its failure was caught: what still runs is not needed
            _stop_the_rest(work, step)
        return
    if step.children_ended == step.items_total:
        _gather(work, step)
    elif needed is not None and step.children_succeeded >= needed:
        work.note(
            "fanout_decided",
            step,
            f"{step.children_succeeded} of {total} items succeeded ({needed} needed): "
            "the others are skipped",
        )
        _gather(work, step)
        _stop_the_rest(work, step)


def _stop_the_rest(work: Work, parent: StepState) -> None:
    """The fan-out is decided: the children still running are skipped (each in a decision of
    its own); those never started never start."""
    assert parent.items_total is not None
    for index in range(min(parent.next_child, parent.items_total)):
        key = child_key(parent.key, index)
        child = work.peek(key)
        if child is not None and not child.terminal:
            work.emit(FollowUp(work.run.id, SkipRequested(key, by=f"{parent.key}, decided")))


def _fail(work: Work, parent: StepState, tolerated: int, index: Any, error: dict[str, Any]) -> None:
    """Fail the fan-out: its output holds the outputs of the children that succeeded (in item
    order, None elsewhere), its error the failed children's errors by index."""
    _add_usage_to_run(work, parent)
    started = min(parent.next_child, parent.items_total or 0)
    parent.output, failures = _outcomes(work, parent, started)
    which = f"item {index}" if index is not None else "an item"
    fail_step(
        work,
        parent,
        "ForEachFailed",
        f"{which} failed ({error_text(error)}); "
        f"{parent.children_failed} failed, {tolerated} tolerated",
        errors=failures,
    )


def _outcomes(
    work: Work, parent: StepState, started: int
) -> tuple[list[Any], list[dict[str, Any]]]:
    """The outputs of the first ``started`` children (None for the others) and the errors of
    the failed ones (``{"index", "type", "message"}``, and a Lambda's ``requestId`` and
    ``stackTrace``), read in one batch."""
    assert parent.items_total is not None
    keys = [child_key(parent.key, i) for i in range(started)]
    work.state.require(set(keys) - set(work.steps))
    outputs: list[Any] = [None] * parent.items_total
    failures: list[dict[str, Any]] = []
    for index, key in enumerate(keys):
        child = work.peek(key)
        if child is None:
            continue
        if child.status in ("succeeded", "skipped"):
            outputs[index] = child.output
        elif child.status == "failed":
            error = child.error or {}
            trace: dict[str, Any] = {k: error[k] for k in ("requestId", "stackTrace") if k in error}
            failures.append(
                {
                    "index": index,
                    "type": error.get("type", "StepFailed"),
                    "message": error.get("message", ""),
                    **trace,
                }
            )
    return outputs, failures


def _gather(work: Work, parent: StepState) -> None:
    """Every child ended, or enough succeeded: the parent's output is the children's outputs in
    item order (None for a failed one), the failures it tolerated are kept beside it."""
    assert parent.items_total is not None
    outputs, failures = _outcomes(work, parent, parent.items_total)
    parent.failed_items = failures or None
    _add_usage_to_run(work, parent)
    succeed(work, parent, outputs)


def _add_usage_to_run(work: Work, parent: StepState) -> None:
    """The children's usage, counted on the parent, joins the run's when the fan-out ends."""
    if parent.usage.cost_usd or parent.usage.input_tokens or parent.usage.output_tokens:
        work.touch_run().usage.add(parent.usage)


def reopen(work: Work, parent: StepState) -> None:
    """A redriven fan-out goes on: its slots are the children started so far (the count that
    failed it may have claimed one it never used), topped up to ``max_parallel``."""
    assert parent.items_total is not None
    keys = [child_key(parent.key, i) for i in range(parent.items_total)]
    work.state.require(set(keys) - set(work.steps))
    children = [work.peek(key) for key in keys]
    started = sum(1 for c in children if c is not None)
    active = sum(1 for c in children if c is not None and not c.terminal)
    mine = work.step(parent.key)
    assert mine is not None
    mine.next_child = started
    free = max(0, work.spec(parent.key).max_parallel - active)
    for index in range(started, min(parent.items_total, started + free)):
        mine.next_child += 1
        work.emit(FollowUp(work.run.id, ItemReady(keys[index])))


def watch(work: Work, parent: StepState) -> None:
    """The parent's timer while its children run: find attempts whose lease ran out, and (once
    no count has come in for a while) recount lost counts and restart lost starts."""
    parent.due_at = work.now + WATCH
    assert parent.items_total is not None
    keys = [child_key(parent.key, i) for i in range(parent.items_total)]
    work.state.require(set(keys) - set(work.steps))
    quiet_since = work.now - SETTLE
    quiet = parent.counted_at is None or parent.counted_at <= quiet_since
    succeeded = failed = 0
    unstarted: list[str] = []
    failure: dict[str, Any] | None = None
    for index, key in enumerate(keys):
        child = work.peek(key)
        if child is None:
            if index < parent.next_child:
                unstarted.append(key)
            continue
        started = child.attempt_started_at
        running = child.status == "running" and child.due_at is None and started is not None
        if running and started is not None and started + DEFAULT_LEASE <= work.now:
            work.emit(FollowUp(work.run.id, LeaseExpired(key, child.attempt)))
        if child.terminal and child.ended_at is not None and child.ended_at <= quiet_since:
            if child.status in ("succeeded", "skipped"):
                succeeded += 1
            else:
                failed += 1
                failure = failure or {"index": index, "error": child.error}
    if not quiet:
        return  # counts are coming in: a start in flight is not lost, a count may be
    lost = succeeded + failed - parent.children_ended
    if lost > 0:
        # No count came in since ``quiet_since``, so the counters hold only children that ended
        # before it: the difference was lost by invocations that died after the child's write.
        parent.children_succeeded = succeeded
        parent.children_failed = failed
        parent.next_child += lost
        work.note("fanout_recounted", parent, f"{lost} ended items were not counted", lost=lost)
        first = parent.next_child - lost
        unstarted += [
            child_key(parent.key, i) for i in range(first, min(parent.next_child, len(keys)))
        ]
    spec = work.spec(parent.key)
    if parent.children_failed > spec.tolerated(parent.items_total):
        # The count that went past the tolerance, or the settling after it, was lost.
        work.emit(FollowUp(work.run.id, FanoutSettled(parent.key, failure)))
        return
    needed = spec.needed(parent.items_total)
    enough = needed is not None and parent.children_succeeded >= needed
    if parent.children_ended >= parent.items_total or enough:
        work.emit(FollowUp(work.run.id, FanoutSettled(parent.key)))  # the settling was lost
        return
    for key in unstarted:
        work.emit(FollowUp(work.run.id, ItemReady(key)))
    if unstarted:
        work.note("fanout_restarted", parent, f"{len(unstarted)} items were not started")
