"""Large payloads go to S3 behind a pointer and come back transparently; no item is too big."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import dynamo_store, metered

from meter import item_wire_size
from stepwell.engine.decision import Decision
from stepwell.engine.state import RunState, StepState
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import wiring
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.payloads import MAX_ITEM_BYTES, PayloadTooLarge

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FIVE_MB = 5 * 1024 * 1024


def big_output(value: Any, ctx: Any) -> Any:
    return {"blob": "x" * FIVE_MB, "rows": list(range(1000))}


def measure(value: Any, ctx: Any) -> Any:
    return {"size": value["size"], "rows": value["rows"]}


def objects(s3: Any, bucket: str) -> dict[str, int]:
    found: dict[str, int] = {}
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket):
        found.update({o["Key"]: o["Size"] for o in page.get("Contents", [])})
    return found


def assert_items_fit(scan: Any) -> None:
    sizes = [item_wire_size(item) for item in scan()]
    assert sizes and max(sizes) <= MAX_ITEM_BYTES


def test_a_five_megabyte_output_works_end_to_end(
    store: DynamoStore, make_workflow: Any, scan: Any, s3: Any, tables: dict[str, str]
) -> None:
    definition = make_workflow(
        "big",
        {
            "produce": {"function": "Big"},
            "measure": {
                "function": "Measure",
                "depends_on": "produce",
                "input": {
                    "size": "${$length(steps.produce.output.blob)}",
                    "rows": "${$count(steps.produce.output.rows)}",
                },
            },
        },
        output={"data": "${steps.produce.output}", "measured": "${steps.measure.output}"},
    )
    world = InProcessWorld({"big": definition}, {"Big": big_output, "Measure": measure})
    world.store = world.orchestrator.store = store
    meter = metered(store)
    run_id = world.start("big", {}, run_id="big-1")
    world.run_until_idle()

    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run and run.error
    assert run.output["measured"] == {"size": FIVE_MB, "rows": 1000}
    assert run.output["data"] == big_output(None, None)
    fresh = dynamo_store()  # another process
    produced = {s.key: s for s in fresh.steps(run_id)}["produce"]
    assert produced.output == big_output(None, None)
    stored = objects(s3, tables["PayloadBucket"])
    assert any(k.startswith("runs/big-1/produce/1/output-") for k in stored)
    assert any(k.startswith("runs/big-1/~run/0/output-") for k in stored)
    assert max(stored.values()) > FIVE_MB
    assert_items_fit(scan)
    # Each distinct payload went up once, however many times its item was rewritten: the step's
    # output, the run's output, and the outbox holding run.completed (which carries the output).
    assert meter.reading().count("PutObject", "s3") == len(stored) == 3


def test_a_large_input_is_offloaded_once_and_read_back_everywhere(
    store: DynamoStore, make_workflow: Any, scan: Any, s3: Any, tables: dict[str, str]
) -> None:
    seen: list[Any] = []
    definition = make_workflow(
        "echo",
        {
            "first": {"function": "Keep", "input": "${input}"},
            "second": {"function": "Keep", "depends_on": "first", "input": "${input}"},
        },
    )
    world = InProcessWorld(
        {"echo": definition}, {"Keep": lambda value, ctx: seen.append(value) or len(value["rows"])}
    )
    world.store = world.orchestrator.store = store
    payload = {"rows": [{"id": i, "text": "é" * 20} for i in range(3000)]}
    assert len(codec.dumps(payload).encode()) > 32 * 1024
    run_id = world.start("echo", payload, run_id="in-1")
    world.run_until_idle()
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded" and run.input == payload
    assert seen == [payload, payload]
    keys = set(objects(s3, tables["PayloadBucket"]))
    assert {k.rsplit("-", 1)[0] for k in keys} == {
        "runs/in-1/~run/0/input",
        "runs/in-1/first/1/input",
        "runs/in-1/second/1/input",
    }
    assert_items_fit(scan)


def test_the_threshold_is_configurable(
    monkeypatch: pytest.MonkeyPatch, tables: dict[str, str], s3: Any
) -> None:
    monkeypatch.setenv("STEPWELL_PAYLOAD_THRESHOLD", "64")
    store = dynamo_store()
    run = RunState("small", "w", "v", "running", {"note": "just over sixty-four bytes " * 3}, T0)
    store.create(Decision(run=run, created=True))
    assert list(objects(s3, tables["PayloadBucket"])) != []
    loaded = store.get_run("small")
    assert loaded is not None and loaded.input == run.input


def test_the_payload_bucket_is_the_wirings_to_give(
    monkeypatch: pytest.MonkeyPatch, tables: dict[str, str], s3: Any
) -> None:
    # The table adapter makes no S3 client of its own, whatever the environment names: the
    # runtime's wiring gives it the bucket (STEPWELL_BUCKET), as it does every other adapter.
    monkeypatch.setenv("STEPWELL_BUCKET", tables["PayloadBucket"])
    monkeypatch.setenv("STEPWELL_PAYLOAD_THRESHOLD", "64")
    big = {"note": "just over sixty-four bytes " * 3}
    alone = DynamoStore(tables["StepwellTable"])
    with pytest.raises(PayloadTooLarge, match="STEPWELL_BUCKET"):
        alone.create(Decision(run=RunState("alone", "w", "v", "running", big, T0), created=True))
    assert list(objects(s3, tables["PayloadBucket"])) == []

    wired = wiring.from_environment(
        {"STEPWELL_TABLE": tables["StepwellTable"], "STEPWELL_BUCKET": tables["PayloadBucket"]}
    ).store
    wired.create(Decision(run=RunState("wired", "w", "v", "running", big, T0), created=True))
    assert [k for k in objects(s3, tables["PayloadBucket"]) if k.startswith("runs/wired/")]
    loaded = dynamo_store().get_run("wired")
    assert loaded is not None and loaded.input == big


def test_no_item_exceeds_the_limit_whatever_the_threshold(
    tables: dict[str, str], scan: Any
) -> None:
    store = dynamo_store(payload_threshold=10**9)
    chunk = "y" * 200_000
    step = StepState(key="a", input=chunk, output=chunk, item=chunk)
    run = RunState("huge", "w", "v", "running", chunk, T0, context={"c": chunk})
    store.create(Decision(run=run, steps={"a": step}, created=True))
    assert_items_fit(scan)
    state = store.load("huge", ["a"])
    assert state.run.input == chunk and state.run.context == {"c": chunk}
    assert state.steps["a"] == dataclasses.replace(step, rev=1)  # the store's revision


def test_a_transaction_stays_under_four_megabytes(tables: dict[str, str], scan: Any) -> None:
    store = dynamo_store(payload_threshold=300_000)
    steps = {f"s{i}": StepState(key=f"s{i}", output="z" * 250_000) for i in range(30)}
    run = RunState("wide", "w", "v", "running", None, T0)
    store.create(Decision(run=run, steps=steps, created=True))
    assert sum(item_wire_size(i) for i in scan()) <= 3_500_000
    loaded = store.load("wide", list(steps)).steps
    assert loaded == {k: dataclasses.replace(s, rev=1) for k, s in steps.items()}


def test_pointers_are_what_items_hold(store: DynamoStore, dynamodb: Any) -> None:
    run = RunState("p", "w", "v", "running", {"blob": "b" * 100_000}, T0)
    store.create(Decision(run=run, created=True))
    item = dynamodb.get_item(TableName=store.table, Key={"pk": {"S": "RUN#p"}, "sk": {"S": "RUN"}})
    pointer = json.loads(item["Item"]["input"]["S"])
    assert list(pointer) == ["$ref"] and pointer["$ref"].startswith("s3://stepwell-payloads-test/")
