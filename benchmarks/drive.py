"""The W2/W4 fan-out driven one event at a time: the store's own cost per item, no contention.

Through the local stack, a fan-out's children report at once and their commits on the run
item conflict (see docs/performance.md). This drives the same workflow through the in-process
world (the real orchestrator, engine and DynamoDB store on moto, one event at a time), so the
requests and bytes per item show what the store itself spends as the fan-out grows, and which
item grows with it. Not part of ``make bench`` (1,000 items take about 40 s)::

    python benchmarks/drive.py 100 1000
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections import defaultdict
from typing import Any

import boto3
from moto import mock_aws

from meter import RequestMeter, TableShape, cost, item_wire_size
from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld
from stepwell.local.quick_moto import quick_moto
from stepwell.runtime.aws.payloads import S3PayloadStore
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.tables import create_from_template
from workloads import NOOP, ROOT, fanout

TABLE, BUCKET, REGION = "bench", "bench-payloads", "us-east-1"


def kind(sk: str) -> str:
    """What an item is, from its sort key: run, timeline, step, for_each child."""
    if sk.startswith("STEP#"):
        return "child" if "[" in sk else "step"
    return sk.split("#", maxsplit=1)[0].lower()


def drive(items: int) -> dict[str, Any]:
    """One fan-out of ``items`` items, start to end; its requests and item sizes."""
    dynamodb = boto3.client("dynamodb", region_name=REGION)
    s3 = boto3.client("s3", region_name=REGION)
    create_from_template(
        ROOT / "shared" / "stepwell" / "stack" / "template.yaml",
        dynamodb,
        s3,
        {"StepwellTable": TABLE, "PayloadBucket": BUCKET},
    )
    store = DynamoStore(TABLE, payloads=S3PayloadStore(s3, BUCKET))
    meter = RequestMeter().attach(store.client).attach(s3)
    described = dynamodb.describe_table(TableName=TABLE)["Table"]
    meter.describe(TABLE, TableShape.from_description(described))
    sizes: dict[str, list[int]] = defaultdict(list)

    def committed(params: Any = None, **_: Any) -> None:
        for entry in params.get("TransactItems", []):
            if "Put" in entry:
                found = entry["Put"]["Item"]
                sizes[kind(found["sk"]["S"])].append(item_wire_size(found))

    store.m.client.meta.events.register(
        "before-parameter-build.dynamodb.TransactWriteItems", committed
    )
    workflow = Workflow.model_validate(fanout())
    world = InProcessWorld(
        {workflow.name: workflow}, {NOOP: lambda value, ctx: {"n": value["n"] + 1}}
    )
    world.store = store
    world.orchestrator.store = store
    t0 = time.perf_counter()
    run_id = world.start(workflow.name, {"items": list(range(items))})
    world.run_until_idle()
    wall = time.perf_counter() - t0
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    spent = meter.reading()
    steps = items + 1
    return {
        "items": items,
        "wall_s": round(wall, 2),
        "requests_per_step": round(sum(spent.calls.values()) / steps, 3),
        "write_units_per_step": round((spent.write_units + spent.index_write_units) / steps, 2),
        "cost_per_million_steps": round(cost(spent).per_million(steps)["total"], 2),
        "committed_item_bytes": {
            k: {"count": len(v), "mean": sum(v) // len(v), "max": max(v)}
            for k, v in sorted(sizes.items())
        },
        "largest_item_bytes": spent.largest_item,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("items", type=int, nargs="+")
    args = parser.parse_args()
    os.environ.update({"AWS_ACCESS_KEY_ID": "bench", "AWS_SECRET_ACCESS_KEY": "bench"})
    for items in args.items:
        with mock_aws(), quick_moto():
            print(json.dumps(drive(items)))


if __name__ == "__main__":
    main()
