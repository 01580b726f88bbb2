"""A concurrency key's slots and queue on DynamoDB (moto): the run that takes a slot does it in
the commit that starts it, on the condition that one is free; every end gives it back in the
run's own commit, and hands it to the queue's head."""

from __future__ import annotations

from collections import Counter
from typing import Any

import pytest
from conftest import metered

from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore


def hold(input: dict[str, Any], context: Any) -> dict[str, Any]:
    return {"held": input.get("n")}


def world_on(store: DynamoStore, limit: int) -> InProcessWorld:
    definition = Workflow.model_validate(
        {
            "name": "limited",
            "concurrency": {"key": "${input.customer}", "limit": limit},
            "priority": "${input.priority}",
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
    assert store.slots_held("limited#acme") == sorted(ids[:2])
    assert store.queue_head("limited#acme") == ids[3]
    order: list[str] = []
    while world.dispatched:
        command = world.dispatched.popleft()
        order.append(command.run_id)
        world._run_attempt(command)
    assert order == [ids[0], ids[1], ids[3], ids[2], ids[4]]
    assert {store.get_run(i).status for i in ids} == {"succeeded"}  # type: ignore[union-attr]
    assert store.slots_held("limited#acme") == []
    assert store.queue_head("limited#acme") is None


def test_what_a_run_costs_in_requests_with_a_concurrency_key_and_without(
    store: DynamoStore, capsys: pytest.CaptureFixture[str]
) -> None:
    plain = InProcessWorld(
        {"plain": Workflow.model_validate({"name": "plain", "steps": {"a": {"function": "Hold"}}})},
        {"Hold": hold},
    )
    plain.store = plain.orchestrator.store = store
    figures = {}
    meter = metered(store)
    for name, world in (("plain", plain), ("limited", world_on(store, 1))):
        world.start(name, {"customer": "solo", "n": 0}, run_id=f"{name}-0")  # definition saved
        while world.dispatched:
            world._run_attempt(world.dispatched.popleft())
        before = meter.reading()
        run_id = world.start(name, {"customer": "solo", "n": 1}, run_id=f"{name}-1")
        while world.dispatched:
            world._run_attempt(world.dispatched.popleft())
        assert store.get_run(run_id).status == "succeeded"  # type: ignore[union-attr]
        figures[name] = (meter.reading() - before).calls
    extra = figures["limited"] - figures["plain"]
    with capsys.disabled():
        print(
            f"\nrequests of a one-step run: {dict(figures['plain'])}; a concurrency key adds "
            f"{dict(extra)}"
        )
    # The offer at its creation: the queue's head read, the run read and started in a commit
    # of its own (its outbox cleared in another), the queue read again (nobody waits); the
    # offer at its end: the queue read once.
    assert extra == Counter(
        {
            "dynamodb:Query": 3,
            "dynamodb:TransactWriteItems": 2,
            "dynamodb:GetItem": 2,
            "dynamodb:BatchGetItem": 1,
        }
    )
