"""ctx.for_each on DynamoDB and S3: a child costs what a YAML for_each child costs, whatever the
width; the replay runs twice however many items; a large item list is offloaded to S3.

Run with ``-s`` to print the figures.
"""

from __future__ import annotations

import json
from typing import Any

from conftest import dynamo_store, metered

from meter import Reading, RequestMeter
from stepwell.code.context import Context, MapFailed
from stepwell.definition.models import Workflow
from stepwell.engine.state import child_key
from stepwell.local.inprocess import InProcessWorld
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore


def label(line: dict[str, Any], ctx: Any) -> dict[str, Any]:
    if line.get("bad"):
        raise ValueError(f"line {line['n']} is bad")
    return {"n": line["n"], "label": f"L{line['n']}"}


def fan_out(ctx: Context, input: dict[str, Any]) -> Any:
    try:
        return ctx.for_each(
            "fan",
            function="Label",
            items=input["lines"],
            max_concurrency=4,
            tolerated_failures=input.get("tolerated", 0),
        )
    except MapFailed as failed:
        return {"failed": sorted(failed.errors), "results": failed.results}


def world_on(store: DynamoStore, name: str) -> InProcessWorld:
    definition = Workflow(name=name, steps={}, code="fan.py:fan_out", code_version="1")
    world = InProcessWorld({name: definition}, {"Label": label}, code={name: fan_out})
    world.store = world.orchestrator.store = store
    return world


def stored_item(dynamodb: Any, table: str, run_id: str, key: str) -> dict[str, Any]:
    """A step's item as DynamoDB holds it."""
    found: dict[str, Any] = dynamodb.get_item(
        TableName=table, Key={"pk": {"S": codec.run_pk(run_id)}, "sk": {"S": codec.step_sk(key)}}
    )["Item"]
    return found


def drive(world: InProcessWorld, meter: RequestMeter) -> tuple[list[Reading], list[Reading]]:
    """Run every dispatched attempt, metering each on its own: (children, replays)."""
    children, replays = [], []
    while world.dispatched:
        command = world.dispatched.popleft()
        before = meter.reading()
        world._run_attempt(command)
        (replays if command.key == "$workflow" else children).append(meter.reading() - before)
    return children, replays


def test_a_child_costs_the_same_whatever_the_items_and_the_replay_runs_twice(
    store: DynamoStore, dynamodb: Any
) -> None:
    figures = {}
    for items in (8, 40):
        name = f"code-fan-{items}"
        world = world_on(store, name)
        meter = metered(store)
        lines = [{"n": i, "note": "x" * 200} for i in range(items)]  # 2 to 9 KB of items
        run_id = world.start(name, {"lines": lines}, run_id=name)
        children, replays = drive(world, meter)
        run = store.get_run(run_id)
        assert run is not None and run.status == "succeeded", run and run.error
        assert run.output == [{"n": i, "label": f"L{i}"} for i in range(items)]
        assert len(replays) == 2  # the one that issued the fan-out, the one after it
        assert len(children) == items
        # A child's result: read the child, write it alone, count it on the parent (an atomic
        # add), then start the child of the slot it claimed: as for a YAML for_each child.
        refilling = children[: items - 4]
        figures[items] = {tuple(sorted(s.dynamodb_calls.items())) for s in refilling}
        # The items live in the payload store, however few: the parent that every count
        # updates (billed on its size) stays as small as a YAML fan-out's.
        parent = stored_item(dynamodb, store.table, run_id, "fan")
        assert codec.pointer_uri(parent["input"]["S"]) is not None
        # The last child's count settles the fan-out (the gather: a run-level commit, as for
        # YAML); no other child's end writes more than the child and its parent's counters.
        assert all(s.count("TransactWriteItems") == 0 for s in children[:-1])
        print(json.dumps({"items": items, "child": children[0].summary()}))
        records = {s.key for s in store.steps(run_id)}
        assert records == {"$workflow", "fan", *(child_key("fan", i) for i in range(items))}
    assert figures[8] == figures[40] == {(("BatchGetItem", 2), ("UpdateItem", 3))}


def test_a_large_item_list_is_offloaded_and_the_failure_comes_back_by_index(
    store: DynamoStore, s3: Any, tables: dict[str, str], dynamodb: Any
) -> None:
    world = world_on(store, "code-fan-big")
    lines = [{"n": i, "note": "é" * 400, "bad": i in (7, 30)} for i in range(120)]
    assert len(codec.dumps(lines).encode()) > 32 * 1024
    run_id = world.start("code-fan-big", {"lines": lines, "tolerated": 1}, run_id="fan-big")
    world.run_until_idle()
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run and run.error
    assert run.output["failed"] == [7, 30]
    results = run.output["results"]
    assert len(results) == 120 and results[0] == {"n": 0, "label": "L0"}
    assert results[7] is None and results[30] is None
    bucket = tables["PayloadBucket"]
    stored = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert any(k.startswith("runs/fan-big/fan/0/input-") for k in stored)
    item = stored_item(dynamodb, tables["StepwellTable"], run_id, "fan")
    assert codec.pointer_uri(item["input"]["S"]) is not None  # the item holds a pointer
    fan = {s.key: s for s in dynamo_store().steps(run_id)}["fan"]
    assert fan.input == json.loads(json.dumps(lines)) and fan.error is not None
    assert [e["index"] for e in fan.error["errors"]] == [7, 30]
