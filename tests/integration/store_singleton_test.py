"""Singleton workflows on DynamoDB (moto): one run per key at once. In ``skip`` mode a start
while one runs ends skipped; in ``cancel_previous`` mode it cancels the running one (and any
older start still waiting) and starts once the slot is given back."""

from __future__ import annotations

import itertools

from store_concurrency_test import world_on

from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore


def status(store: DynamoStore, run_id: str) -> str:
    run = store.get_run(run_id)
    assert run is not None
    return run.status


def finish(world: InProcessWorld, run_id: str) -> None:
    """The run's attempt runs to its end (the others stay running)."""
    [attempt] = [d for d in world.dispatched if d.run_id == run_id]
    world.dispatched.remove(attempt)
    world._run_attempt(attempt)


def test_skip_ends_a_start_while_a_run_of_its_key_runs_and_lets_other_keys_run(
    store: DynamoStore,
) -> None:
    world = world_on(store, singleton="skip")
    first = world.start("limited", {"customer": "a", "n": 1})
    skipped = world.start("limited", {"customer": "a", "n": 2})
    other = world.start("limited", {"customer": "b", "n": 3})
    assert [status(store, i) for i in (first, skipped, other)] == [
        "running",
        "cancelled",
        "running",
    ]
    run = store.get_run(skipped)
    assert (
        run is not None
        and run.started_at is None
        and run.error
        == {
            "type": "Skipped",
            "message": f"skipped: run {first} of key a is running (singleton)",
        }
    )
    kinds = [e.type for e in store.timeline(skipped).items]
    assert "run_skipped" in kinds and "run_started" not in kinds
    finish(world, first)
    later = world.start("limited", {"customer": "a", "n": 4})
    assert status(store, first) == "succeeded" and status(store, later) == "running"
    finish(world, later)
    finish(world, other)
    for key in ("limited#a", "limited#b"):
        slots = store.slots(key)
        assert slots.held == () and slots.head is None


def test_cancel_previous_cancels_the_running_run_and_the_newest_start_runs(
    store: DynamoStore,
) -> None:
    world = world_on(store, singleton="cancel_previous")
    runs = [world.start("limited", {"customer": "a", "n": n}) for n in range(4)]
    assert [status(store, i) for i in runs] == ["cancelled"] * 3 + ["running"]
    for older, newer in itertools.pairwise(runs):
        run = store.get_run(older)
        assert run is not None and run.error is not None
        assert f"superseded by run {newer} of its key" in run.error["message"]
    while world.dispatched:  # the cancelled runs' attempts end too: their results change nothing
        world._run_attempt(world.dispatched.popleft())
    assert [status(store, i) for i in runs] == ["cancelled"] * 3 + ["succeeded"]
    slots = store.slots("limited#a")
    assert slots.held == () and slots.head is None
