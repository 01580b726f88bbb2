"""for_each: one child per item, at most ``max_parallel`` at once, outputs gathered in order.

The parent keeps a cursor (``next_child``) and counters; a child's end touches only the child and
the parent, whatever the number of items. Children are written when the fan-out starts, as
idempotent records outside the decision's transaction (``Work.bulk``), so starting 10,000 items
does not need a 10,000-item transaction.
"""

from __future__ import annotations

from typing import Any

from stepwell import expressions
from stepwell.engine import flow
from stepwell.engine.commands import ContinueRun
from stepwell.engine.decision import MAX_STEP_WRITES, Work
from stepwell.engine.state import StepState, child_key, parse_key


def start(work: Work, parent: StepState, data: dict[str, Any]) -> None:
    """Evaluate the items, write the children, and start the first ones."""
    spec = work.spec(parent.key)
    assert spec.for_each is not None
    items = expressions.render(spec.for_each, data, work.now)
    parent.started_at = work.now
    if not isinstance(items, list):
        flow.fail_step(
            work,
            parent,
            "ForEachNotAList",
            f"step '{parent.key}': for_each gave {type(items).__name__}, not a list",
        )
        return
    parent.items_total = len(items)
    work.set_status(parent, "running")
    work.note(
        "fanout_started",
        parent,
        f"{len(items)} items, {spec.max_parallel} at a time",
        items=len(items),
    )
    if not items:
        flow.succeed(work, parent, [])
        return
    for index, item in enumerate(items):
        key = child_key(parent.key, index)
        work.bulk[key] = StepState(key=key, item=item, pending_deps=0)
    parent.children_created = len(items)
    fill(work, parent)


def fill(work: Work, parent: StepState) -> None:
    """Start children while there are free slots; go on in a Continue when the decision is full."""
    spec = work.spec(parent.key)
    assert parent.items_total is not None
    while parent.next_child < parent.items_total and parent.children_active < spec.max_parallel:
        if len(work.steps) >= MAX_STEP_WRITES:
            work.emit(ContinueRun(work.run.id, parent.key))
            return
        key = child_key(parent.key, parent.next_child)
        parent.next_child += 1
        child = work.step(key)
        if child is None or child.status != "pending":
            continue
        parent.children_active += 1
        data = flow.expression_data(work, parent.key, child)
        flow.begin(work, child, data)
        if parent.terminal or work.run.terminal:
            return


def child_ended(work: Work, child: StepState) -> None:
    """Count a child's end on its parent; fail, refill, or gather."""
    parent_key = parse_key(child.key)[0]
    parent = work.step(parent_key)
    if parent is None or parent.terminal or parent.items_total is None:
        return
    spec = work.spec(parent_key)
    parent.children_active -= 1
    if child.status in ("succeeded", "skipped"):
        parent.children_succeeded += 1
    else:
        parent.children_failed += 1
    if parent.children_failed > spec.tolerated_failures:
        error = child.error or {"type": "ChildFailed", "message": child.status}
        flow.fail_step(
            work,
            parent,
            "ForEachFailed",
            f"item {child.index} failed ({error.get('type')}: {error.get('message')}); "
            f"{parent.children_failed} failed, {spec.tolerated_failures} tolerated",
        )
        return
    if parent.children_succeeded + parent.children_failed == parent.items_total:
        _gather(work, parent)
        return
    fill(work, parent)


def _gather(work: Work, parent: StepState) -> None:
    """Every child ended: the parent's output is the children's outputs in item order."""
    assert parent.items_total is not None
    keys = [child_key(parent.key, i) for i in range(parent.items_total)]
    work.state.require(set(keys) - set(work.steps))
    outputs = []
    for key in keys:
        child = work.peek(key)
        done = child is not None and child.status in ("succeeded", "skipped")
        outputs.append(child.output if done and child is not None else None)
    flow.succeed(work, parent, outputs)
