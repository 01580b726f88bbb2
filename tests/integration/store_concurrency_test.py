"""A concurrency key's slots and queue on DynamoDB (moto): the run that takes a slot does it in
the commit that starts it, on the condition that one is free; every end gives it back in the
run's own commit, and hands it to the queue's head."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from conftest import metered

from stepwell.definition.models import Workflow
from stepwell.engine.decision import Decision
from stepwell.engine.events import StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.store.dynamodb import DynamoStore


def hold(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"held": input.get("n")}


def world_on(store: DynamoStore, limit: int = 0, singleton: str = "") -> InProcessWorld:
    """A one-step workflow ``limited`` per ``customer``: ``limit`` runs at once, or a
    singleton in that mode."""
    flow: dict[str, Any] = (
        {"singleton": {"key": "${input.customer}", "mode": singleton}}
        if singleton
        else {
            "concurrency": {"key": "${input.customer}", "limit": limit},
            "priority": "${input.priority}",
        }
    )
    definition = Workflow.model_validate(
        {
            "name": "limited",
            **flow,
            "steps": {"a": {"function": "Hold", "input": {"n": "${input.n}"}}},
        }
    )
    world = InProcessWorld({"limited": definition}, {"Hold": hold})
    world.store = world.orchestrator.store = store
    return world


def test_runs_queue_past_the_limit_and_start_by_priority_as_slots_free(
    store: DynamoStore,
) -> None:
    world = world_on(store, 2)
    ids = [
        world.start("limited", {"customer": "acme", "n": n, "priority": p})
        for n, p in enumerate([0, 0, 1, 5, 1])
    ]
    statuses = [store.get_run(i).status for i in ids]  # type: ignore[union-attr]
    assert statuses == ["running", "running", "queued", "queued", "queued"]
    slots = store.slots("limited#acme")
    assert slots.held == tuple(sorted(ids[:2])) and slots.head == ids[3]
    order: list[str] = []
    while world.dispatched:
        command = world.dispatched.popleft()
        order.append(command.run_id)
        world._run_attempt(command)
    assert order == [ids[0], ids[1], ids[3], ids[2], ids[4]]
    assert {store.get_run(i).status for i in ids} == {"succeeded"}  # type: ignore[union-attr]
    slots = store.slots("limited#acme")
    assert slots.held == () and slots.head is None


def extra_requests(
    store: DynamoStore, world: InProcessWorld, name: str, input: Any
) -> Counter[str]:
    """What a second one-step run of ``name`` in ``world`` costs in requests more than the
    same run of a workflow without flow control (each measured after a first run of its
    workflow saved its definition)."""
    plain = InProcessWorld(
        {"plain": Workflow.model_validate({"name": "plain", "steps": {"a": {"function": "Hold"}}})},
        {"Hold": hold},
    )
    plain.store = plain.orchestrator.store = store
    figures = {}
    meter = metered(store)
    for workflow, played in (("plain", plain), (name, world)):
        played.start(workflow, input, run_id=f"{workflow}-0")
        while played.dispatched:
            played._run_attempt(played.dispatched.popleft())
        before = meter.reading()
        run_id = played.start(workflow, input, run_id=f"{workflow}-1")
        while played.dispatched:
            played._run_attempt(played.dispatched.popleft())
        assert store.get_run(run_id).status == "succeeded"  # type: ignore[union-attr]
        figures[workflow] = (meter.reading() - before).calls
    extra = figures[name] - figures["plain"]
    print(f"\nrequests of a one-step run: {dict(figures['plain'])}; {name} adds {dict(extra)}")
    return extra


def test_what_a_run_costs_in_requests_with_a_concurrency_key_and_without(
    store: DynamoStore,
) -> None:
    extra = extra_requests(store, world_on(store, 1), "limited", {"customer": "solo", "n": 1})
    # A run that finds a slot free takes it in the commit that creates it: its key read just
    # before (one Query), and the offer as it ends (one Query); nothing else.
    assert extra == Counter({"dynamodb:Query": 2})


def peak_at_once(runs: list[Any]) -> int:
    """The most runs whose recorded start-to-end spans overlap (an end and a start at one
    instant: the slot changed hands)."""
    moments = sorted(
        [(r.started_at, 1) for r in runs if r.started_at is not None]
        + [(r.ended_at, -1) for r in runs if r.ended_at is not None]
    )
    holding = peak = 0
    for _, change in moments:
        holding += change
        peak = max(peak, holding)
    return peak


def held_back(
    store: DynamoStore,
    take: Callable[[], object],
    meanwhile: Callable[[], object],
    releaser: str,
) -> None:
    """Run ``take`` in a thread; when the first take of a slot reaches its commit, hold that
    commit while ``meanwhile`` runs here, and let it land right after the commit that releases
    ``releaser``'s slot, before that release's own offer goes out."""
    commit = store.commit
    at_take, go = threading.Event(), threading.Event()

    def gated(decision: Decision, expected_seq: int) -> None:
        change = decision.slot
        if change is not None and change.op == "take" and not at_take.is_set():
            at_take.set()
            go.wait(30)
        commit(decision, expected_seq)
        if change is not None and change.op == "release" and change.run_id == releaser:
            go.set()
            taking.join(30)

    def run() -> None:
        try:
            take()
        finally:
            at_take.set()

    store.commit = gated  # type: ignore[method-assign]
    taking = threading.Thread(target=run)
    try:
        taking.start()
        assert at_take.wait(30)
        meanwhile()
        go.set()
        taking.join(30)
        assert not taking.is_alive()
    finally:
        store.commit = commit  # type: ignore[method-assign]


def finish(world: InProcessWorld) -> None:
    while world.dispatched:
        world.clock.advance(timedelta(seconds=1))
        world._run_attempt(world.dispatched.popleft())


def end_step(orchestrator: Orchestrator, world: InProcessWorld, run_id: str) -> None:
    """The run's one step succeeds, handled by ``orchestrator`` (another process's)."""
    [attempt] = [d for d in world.dispatched if d.run_id == run_id]
    world.dispatched.remove(attempt)
    orchestrator.handle(run_id, StepSucceeded("a", attempt.attempt, {}, token=attempt.token))


def test_a_run_queued_while_the_slots_are_held_never_starts_on_a_slot_freed_after_its_offer(
    store: DynamoStore,
) -> None:
    """Limit 2: A and B hold the key's slots, C waits. A new run D is queued and asks for an
    offer while both are held; before any start decided from it lands, A ends (in another
    process) at t0 + 1s. C must not start with a start time before A's end: the recorded spans
    would show 3 runs at once."""
    world = world_on(store, 2)
    other = Orchestrator(store, Ports(world, world, world, world), world.clock, world.workflows.get)
    a, b, c = (world.start("limited", {"customer": "acme", "n": n}) for n in range(3))
    assert [store.get_run(i).status for i in (a, b, c)] == ["running", "running", "queued"]  # type: ignore[union-attr]

    def a_ends_later() -> None:
        world.clock.advance(timedelta(seconds=1))
        end_step(other, world, a)

    held_back(store, lambda: world.start("limited", {"customer": "acme", "n": 3}), a_ends_later, a)
    finish(world)
    runs = [store.get_run(i) for i in (a, b, c)]
    assert {r.status for r in runs if r is not None} == {"succeeded"}
    assert peak_at_once(runs) == 2
    slots = store.slots("limited#acme")
    assert slots.held == () and slots.head is None


def test_a_start_offered_a_free_slot_never_lands_after_a_later_run_took_it_and_another_ended(
    store: DynamoStore,
) -> None:
    """Limit 2: A and B hold the key's slots, C waits. B ends and its offer decides C's start
    at t0; before C's commit lands, E (priority 9) is queued (C, still first in the queue, is
    about to take B's slot), and A ends at t0 + 1s: its offer gives E a slot. C's start must
    not land on the other with its time of t0: A, E and C would overlap."""
    world = world_on(store, 2)
    other = Orchestrator(store, Ports(world, world, world, world), world.clock, world.workflows.get)
    third = Orchestrator(store, Ports(world, world, world, world), world.clock, world.workflows.get)
    a, b, c = (world.start("limited", {"customer": "acme", "n": n}) for n in range(3))
    e: list[str] = []

    def e_takes_then_a_ends() -> None:
        e.append(world.start("limited", {"customer": "acme", "n": 4, "priority": 9}))
        assert store.get_run(e[0]).status == "queued"  # type: ignore[union-attr]
        world.clock.advance(timedelta(seconds=1))
        end_step(other, world, a)
        assert store.get_run(e[0]).status == "running"  # type: ignore[union-attr]

    held_back(store, lambda: end_step(third, world, b), e_takes_then_a_ends, a)
    finish(world)
    runs = [store.get_run(i) for i in (a, b, c, *e)]
    assert {r.status for r in runs if r is not None} == {"succeeded"}
    assert peak_at_once(runs) == 2
    slots = store.slots("limited#acme")
    assert slots.held == () and slots.head is None
