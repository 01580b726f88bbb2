"""Step-level ``concurrency`` on DynamoDB (moto): an attempt takes a slot of its step's key in
the transaction that dispatches it, on the condition that one is free; every end of it gives
the slot back in its own commit and hands it to the next attempt waiting."""

from __future__ import annotations

import random
from collections import Counter
from datetime import datetime, timedelta
from typing import Any

from store_concurrency_test import extra_requests

from stepwell.definition.models import Workflow
from stepwell.engine.events import CancelRequested, StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore

LIMIT = 3
KEY = "charge/charge#m1"


def world_on(store: DynamoStore) -> InProcessWorld:
    definition = Workflow.model_validate(
        {
            "name": "charge",
            "steps": {
                "charge": {
                    "function": "Charge",
                    "concurrency": {"key": "${input.merchant}", "limit": LIMIT},
                }
            },
        }
    )
    world = InProcessWorld({"charge": definition}, {"Charge": lambda input, context: input})
    world.store = world.orchestrator.store = store
    return world


def test_a_limit_of_3_across_50_runs_never_runs_more_than_3_attempts_at_once(
    store: DynamoStore,
) -> None:
    world = world_on(store)
    ids = [world.start("charge", {"merchant": "m1"}) for _ in range(50)]
    assert len(world.dispatched) == LIMIT
    assert len(store.slots(KEY).held) == LIMIT
    draw = random.Random(28)
    spans: list[tuple[datetime, datetime]] = []
    while world.dispatched:
        world.clock.advance(timedelta(seconds=draw.randint(1, 5)))
        command = draw.choice(list(world.dispatched))
        world.dispatched.remove(command)
        answer = StepSucceeded("charge", command.attempt, {}, token=command.token)
        world.send(command.run_id, answer)
        spans.append((command.dispatched_at, world.clock.now()))
    runs = [store.get_run(i) for i in ids]
    assert {r.status for r in runs if r is not None} == {"succeeded"}
    steps = [store.load(i, {"charge"}).steps["charge"] for i in ids]
    recorded = [(s.attempt_started_at, s.ended_at) for s in steps]
    assert len(spans) == 50 and sorted(recorded) == sorted(spans)  # type: ignore[type-var]
    # An end and a start at one instant: the slot changed hands (the end counts first).
    moments = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])
    holding = peak = 0
    for _, change in moments:
        holding += change
        peak = max(peak, holding)
    assert peak == LIMIT
    slots = store.slots(KEY)
    assert slots.held == () and slots.head is None


def test_a_run_s_end_gives_back_every_slot_its_attempts_hold_in_its_commit(
    store: DynamoStore,
) -> None:
    """A for_each of 4 items with a limit of 3: 3 attempts hold slots and 1 waits; the run's
    cancel releases the 3 (one update of the key) and takes the waiting one out of the queue."""
    definition = Workflow.model_validate(
        {
            "name": "charge",
            "steps": {
                "charge": {
                    "function": "Charge",
                    "for_each": "${input.items}",
                    "concurrency": {"key": "${input.merchant}", "limit": LIMIT},
                }
            },
        }
    )
    world = InProcessWorld({"charge": definition}, {"Charge": lambda input, context: input})
    world.store = world.orchestrator.store = store
    run_id = world.start("charge", {"merchant": "m1", "items": [1, 2, 3, 4]})
    assert len(world.dispatched) == LIMIT and store.slots(KEY).head is not None
    decision: Any = world.orchestrator.handle(run_id, CancelRequested("enough"))
    assert decision is not None
    assert sorted(c.op for c in decision.slot_changes) == ["leave", *["release"] * LIMIT]
    slots = store.slots(KEY)
    assert slots.held == () and slots.head is None
    assert store.get_run(run_id).status == "cancelled"  # type: ignore[union-attr]


def test_what_an_attempt_costs_in_requests_with_a_step_s_concurrency_and_without(
    store: DynamoStore,
) -> None:
    extra = extra_requests(store, world_on(store), "charge", {"merchant": "m1"})
    # The offer as the attempt queues (the key read, the step taken and dispatched in a commit
    # of the run, which reads the run), the look for a next one, the offer as it ends; its
    # queue, take and release ride in commits the step makes anyway (on the run, not alone).
    assert extra == Counter(
        {
            "dynamodb:Query": 3,
            "dynamodb:TransactWriteItems": 1,
            "dynamodb:GetItem": 1,
            "dynamodb:BatchGetItem": 1,
        }
    )
