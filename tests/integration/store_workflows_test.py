"""Whole example workflows run on the DynamoDB store (moto) as they run in memory."""

from __future__ import annotations

from typing import Any

from orders import HANDLERS
from pipeline import HANDLERS as PIPELINE

from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.memory import MemoryStore

ORDER = {
    "order_id": "o-1",
    "customer": "ann@example.com",
    "items": [{"sku": f"sku-{i}", "qty": 1 + i, "price": 300.0} for i in range(4)],
}


def on(world: InProcessWorld, store: Any) -> InProcessWorld:
    world.store = store
    world.orchestrator.store = store
    return world


def order_world(example: Any, store: Any) -> InProcessWorld:
    definition = example("order-fulfilment")
    return on(
        InProcessWorld(
            {definition.name: definition},
            dict(HANDLERS),
            approver=lambda c: ApprovalDecided(c.key, c.attempt, True, "finance@example.com"),
        ),
        store,
    )


def test_order_fulfilment_runs_on_dynamodb_as_in_memory(example: Any, store: DynamoStore) -> None:
    results = {}
    for name, backend in (("dynamodb", store), ("memory", MemoryStore())):
        world = order_world(example, backend)
        run_id = world.start("order-fulfilment", ORDER)
        world.run_until_idle()
        run = backend.get_run(run_id)
        assert run is not None
        steps = {s.key: (s.status, s.attempt, s.output) for s in backend.steps(run_id)}
        types = [e.type for e in backend.timeline(run_id, limit=1000).items]
        results[name] = (run.status, run.output, steps, types, run.seq)
    assert results["dynamodb"] == results["memory"]
    status, output, steps, _, _ = results["dynamodb"]
    assert status == "succeeded"
    assert output["total"] == 3000.0 and len(output["reservations"]) == 4
    assert steps["charge"][:2] == ("succeeded", 2)  # retried once, with backoff
    assert steps["approve"][0] == "succeeded"


def test_a_pipeline_with_a_child_run_runs_on_dynamodb_as_in_memory(
    example: Any, store: DynamoStore
) -> None:
    definitions = {d.name: d for d in (example("data-pipeline"), example("publish-report"))}
    results = {}
    for name, backend in (("dynamodb", store), ("memory", MemoryStore())):
        world = on(InProcessWorld(definitions, dict(PIPELINE)), backend)
        run_id = world.start("data-pipeline", {"source": "s3://example/daily/"})
        world.run_until_idle()
        run = backend.get_run(run_id)
        assert run is not None
        publish = {s.key: s for s in backend.steps(run_id)}["publish"]
        assert publish.child_run_id is not None
        child = backend.get_run(publish.child_run_id)
        assert child is not None and child.parent is not None
        results[name] = (run.status, run.output, child.status, child.parent.run_id, child.output)
    assert results["dynamodb"] == results["memory"]
    assert results["dynamodb"][0] == results["dynamodb"][2] == "succeeded"
