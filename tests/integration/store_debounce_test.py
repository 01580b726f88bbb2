"""Debounced workflows on DynamoDB (moto): starts of one key close together make one run, which
starts ``period`` after the last of them with the last one's input; the key's hold is taken in
the run's creation and given back as it starts (or ends before it started)."""

from __future__ import annotations

import threading
from datetime import timedelta
from typing import Any

from stepwell.definition.models import Workflow
from stepwell.engine.events import CancelRequested
from stepwell.engine.state import State
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore


def hold(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"held": input.get("n")}


def debounced_world(store: DynamoStore) -> InProcessWorld:
    definition = Workflow.model_validate(
        {
            "name": "debounced",
            "debounce": {"key": "${input.document}", "period": "30s"},
            "steps": {"a": {"function": "Hold", "input": {"n": "${input.n}"}}},
        }
    )
    world = InProcessWorld({"debounced": definition}, {"Hold": hold})
    world.store = world.orchestrator.store = store
    return world


def runs_of(store: DynamoStore) -> list[str]:
    return [run.id for run in store.runs(workflow="debounced", limit=100).items]


def test_20_starts_within_10s_make_one_run_with_the_last_input_a_period_after_the_last(
    store: DynamoStore,
) -> None:
    world = debounced_world(store)
    ids = []
    for n in range(20):
        ids.append(world.start("debounced", {"document": "d1", "n": n}))
        last = world.clock.now()
        world.clock.advance(timedelta(milliseconds=500))
    other = world.start("debounced", {"document": "d2", "n": 100})
    assert set(ids) == {ids[0]} and other != ids[0]
    assert store.pending("debounced#d1") == ids[0]
    world.run_until_idle()
    assert sorted(runs_of(store)) == sorted([ids[0], other])
    run = store.get_run(ids[0])
    assert run is not None and run.status == "succeeded"
    assert run.input == {"document": "d1", "n": 19}
    assert run.started_at == last + timedelta(seconds=30)
    state: State = store.load(ids[0], ["a"])
    assert state.steps["a"].output == {"held": 19}
    assert store.pending("debounced#d1") is None and store.pending("debounced#d2") is None
    # Once it started, the key's next start makes a run of its own.
    again = world.start("debounced", {"document": "d1", "n": 20})
    assert again not in (ids[0], other) and store.pending("debounced#d1") == again


def test_a_waiting_run_cancelled_gives_its_key_back_and_never_starts(store: DynamoStore) -> None:
    world = debounced_world(store)
    first = world.start("debounced", {"document": "d1", "n": 1})
    world.send(first, CancelRequested("not needed"))
    assert store.pending("debounced#d1") is None
    second = world.start("debounced", {"document": "d1", "n": 2})
    world.run_until_idle()
    assert [store.get_run(i).status for i in (first, second)] == ["cancelled", "succeeded"]  # type: ignore[union-attr]


def test_two_starts_racing_on_a_free_key_make_one_run(store: DynamoStore) -> None:
    """Both find no run waiting and both create one: the key's claim, a condition in the
    creation's transaction, lets one through; the other gives its input to that run."""
    world = debounced_world(store)
    create = store.create
    both = threading.Barrier(2, timeout=30)
    calls: list[int] = []

    def together(decision: Any) -> None:
        calls.append(1)
        if len(calls) <= 2:
            both.wait()
        create(decision)

    store.create = together  # type: ignore[method-assign]
    ids: list[str] = []
    starts = [
        threading.Thread(
            target=lambda n=n: ids.append(world.start("debounced", {"document": "d1", "n": n}))
        )
        for n in range(2)
    ]
    for thread in starts:
        thread.start()
    for thread in starts:
        thread.join(30)
    store.create = create  # type: ignore[method-assign]
    assert len(ids) == 2 and ids[0] == ids[1] and len(calls) == 2
    assert runs_of(store) == [ids[0]]
