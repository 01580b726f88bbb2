"""Throttled workflows on DynamoDB (moto), under virtual time: at most ``limit`` runs of a key
start within any ``period``; the others wait queued, only the queue's head with a timer, and
none is dropped."""

from __future__ import annotations

from datetime import timedelta

from store_concurrency_test import hold

from stepwell.definition.models import Workflow
from stepwell.engine.events import CancelRequested
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore


def throttled_world(store: DynamoStore, limit: int) -> InProcessWorld:
    """A one-step workflow ``throttled``: at most ``limit`` starts per customer a minute."""
    definition = Workflow.model_validate(
        {
            "name": "throttled",
            "throttle": {"key": "${input.customer}", "limit": limit, "period": "1m"},
            "steps": {"a": {"function": "Hold", "input": {"n": "${input.n}"}}},
        }
    )
    world = InProcessWorld({"throttled": definition}, {"Hold": hold})
    world.store = world.orchestrator.store = store
    return world


def test_30_starts_with_5_a_minute_start_at_most_5_in_any_minute_and_all_succeed(
    store: DynamoStore,
) -> None:
    world = throttled_world(store, 5)
    ids = []
    for n in range(30):
        ids.append(world.start("throttled", {"customer": "acme", "n": n}))
        world.clock.advance(timedelta(seconds=1))
    other = world.start("throttled", {"customer": "other", "n": 0})
    assert store.get_run(other).status == "running"  # type: ignore[union-attr]  # its own key
    world.run_until_idle()
    runs = [store.get_run(i) for i in ids]
    assert all(r is not None and r.status == "succeeded" for r in runs)
    starts = [r.started_at for r in runs if r is not None and r.started_at is not None]
    assert len(starts) == 30 and starts == sorted(starts)  # in start order (one priority)
    # Any 6 consecutive starts span a minute or more: no minute holds more than 5.
    assert all(
        later - first >= timedelta(minutes=1)
        for first, later in zip(starts, starts[5:], strict=False)
    )
    slots = store.slots("throttled#acme")
    assert slots.held == () and slots.head is None and len(slots.recent) == 5


def test_the_throttled_head_cancelled_hands_its_wait_to_the_next(store: DynamoStore) -> None:
    """Only the queue's head has a timer: when it is cancelled, the run behind it gets one."""
    world = throttled_world(store, 1)
    first, head, behind = (world.start("throttled", {"customer": "acme", "n": n}) for n in range(3))
    assert [store.get_run(i).status for i in (first, head, behind)] == [
        "running",
        "queued",
        "queued",
    ]  # type: ignore[union-attr]
    world.send(head, CancelRequested("not needed"))
    world.run_until_idle()
    runs = [store.get_run(i) for i in (first, head, behind)]
    assert [r.status for r in runs if r is not None] == ["succeeded", "cancelled", "succeeded"]
    assert runs[2] is not None and runs[0] is not None and runs[2].started_at is not None
    assert runs[0].started_at is not None
    assert runs[2].started_at - runs[0].started_at == timedelta(minutes=1)
