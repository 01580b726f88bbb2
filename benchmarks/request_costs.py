"""What each request of a W1 step costs on the local stack's moto, beside the storage floor's.

    python benchmarks/request_costs.py [--count 300]

One process, one in-process moto with the local stack's shortcuts (``quick_moto``, requests
serialized as in the stack), one boto3 client: the CPU time (``time.process_time``) of
``count`` sends of each request, after 20 sends to warm up, in milliseconds per send. The
requests are those a W1 step makes, as Stepwell's store sends them (the step started, the
step's result, the read of the run and the steps around it), and the floor's two
(:func:`floor_step`, which ``workloads.Bench.floor`` loops over). Nothing else runs, so the
figures move much less with the machine's load than a workload's; they leave out everything
around a request (the Lambda emulator, the engine, pynamodb building the request).

W1 in ``make bench`` runs :func:`measure` on its own stack's table after its samples: a W1
step's three requests sent bare, the ceiling beside the floor (``report.ceiling``).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from collections.abc import Callable
from typing import Any

import boto3
from moto import mock_aws

from stepwell.local.quick_moto import quick_moto
from stepwell.local.resources import serialized_moto

TABLE = "bench"
AT = "2026-12-06T21:38:15.799962+00:00"


def _table(client: Any) -> None:
    keys = (("pk", "HASH"), ("sk", "RANGE"))
    client.create_table(
        TableName=TABLE,
        KeySchema=[{"AttributeName": name, "KeyType": kind} for name, kind in keys],
        AttributeDefinitions=[{"AttributeName": name, "AttributeType": "S"} for name, _ in keys],
        BillingMode="PAY_PER_REQUEST",
    )


def _entry(kind: str, step: int, message: str) -> dict[str, Any]:
    line = {"at": AT, "type": kind, "step": f"s{step}", "attempt": 1, "message": message}
    return {"L": [{"S": json.dumps(line, separators=(",", ":"))}]}


def floor_step(client: Any, table: str, run: str, i: int) -> None:
    """One step of the storage floor: a conditional PutItem (the step started), then a
    conditional UpdateItem (its result)."""
    key = {"pk": {"S": f"FLOOR#{run}"}, "sk": {"S": f"STEP#{i:05d}"}}
    client.put_item(
        TableName=table,
        Item={**key, "status": {"S": "running"}, "attempt": {"N": "1"}},
        ConditionExpression="attribute_not_exists(pk)",
    )
    client.update_item(
        TableName=table,
        Key=key,
        UpdateExpression="SET #s = :done, #o = :output",
        ConditionExpression="#s = :running",
        ExpressionAttributeNames={"#s": "status", "#o": "output"},
        ExpressionAttributeValues={
            ":done": {"S": "succeeded"},
            ":running": {"S": "running"},
            ":output": {"S": json.dumps({"n": i + 1})},
        },
    )


def _step_key(run: str, i: int) -> dict[str, Any]:
    return {"pk": {"S": f"COSTS#{run}"}, "sk": {"S": f"STEP#{i:05d}"}}


def started(client: Any, table: str, run: str, i: int) -> None:
    """A W1 step started: its item created by one conditional UpdateItem."""
    names = ["pk", "step_key", "status", "attempt", "token", "pending_deps", "deps_ended", "input"]
    names += ["started_at", "attempt_started_at", "kind", "expires_at", "tl", "wid", "rev"]
    values = [
        {"S": f"s{i}"},
        {"S": "running"},
        {"N": "1"},
        {"S": "1f0260e22fa0af0887c2e0cf"},
        {"N": "0"},
        {"S": json.dumps([f"s{i - 1}"])},
        {"S": json.dumps({"n": i})},
        {"S": AT},
        {"S": AT},
        {"S": "step"},
        {"N": "1835905095"},
        {"L": []},
        _entry("step_dispatched", i, "attempt 1 -> BenchNoopFunction"),
        {"S": "wIQ245UEbVyB"},
        {"N": "1"},
    ]
    sets = ", ".join(f"#{n} = :{n - 1}" for n in range(1, 12))
    client.update_item(
        TableName=table,
        Key=_step_key(run, i),
        ConditionExpression="attribute_not_exists (#0)",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        UpdateExpression=f"SET {sets}, #12 = list_append (if_not_exists (#12, :11), :12), "
        "#13 = :13 ADD #14 :14",
        ExpressionAttributeNames={f"#{n}": name for n, name in enumerate(names)},
        ExpressionAttributeValues={f":{n}": value for n, value in enumerate(values)},
    )


def ended(client: Any, table: str, run: str, i: int) -> None:
    """A W1 step's result: one conditional UpdateItem of its item, on its revision."""
    client.update_item(
        TableName=table,
        Key=_step_key(run, i),
        ConditionExpression="#0 = :0",
        ReturnValuesOnConditionCheckFailure="ALL_OLD",
        UpdateExpression="SET #1 = :1, #2 = :2, #3 = :3, "
        "#4 = list_append (if_not_exists (#4, :4), :5), #5 = :6 ADD #0 :7",
        ExpressionAttributeNames={
            "#0": "rev",
            "#1": "status",
            "#2": "output",
            "#3": "ended_at",
            "#4": "tl",
            "#5": "wid",
        },
        ExpressionAttributeValues={
            ":0": {"N": "1"},
            ":1": {"S": "succeeded"},
            ":2": {"S": json.dumps({"n": i + 1})},
            ":3": {"S": AT},
            ":4": {"L": []},
            ":5": _entry("step_completed", i, json.dumps({"n": i + 1})),
            ":6": {"S": "q81zs0lJcSRG"},
            ":7": {"N": "1"},
        },
    )


def read(client: Any, table: str, run: str, i: int) -> None:
    """A W1 step's read: the run's item and the steps around it, in one BatchGetItem."""
    keys = [{"pk": {"S": f"COSTS#{run}"}, "sk": {"S": "RUN"}}]
    keys += [_step_key(run, s) for s in (i - 1, i, i + 1, 99_999)]
    client.batch_get_item(
        RequestItems={table: {"ConsistentRead": True, "Keys": keys}},
        ReturnConsumedCapacity="TOTAL",
    )


def _run_item(client: Any, table: str, run: str) -> None:
    attributes = {name: {"S": f"{name}-value"} for name in "abcdefghijklmnopqrst"}
    key = {"pk": {"S": f"COSTS#{run}"}, "sk": {"S": "RUN"}}
    client.put_item(TableName=table, Item={**key, **attributes})


def measure(client: Any, table: str, run: str, count: int) -> dict[str, float]:
    """CPU milliseconds per send of each request (and of a W1 step's three, and the floor's
    step), sent through ``client`` to ``table``, on items of their own (keyed by ``run``)."""
    _run_item(client, table, run)
    sends: list[tuple[str, Callable[[Any, str, str, int], None]]] = [
        ("floor step (2 requests)", floor_step),
        ("W1 step started", started),
        ("W1 step's result", ended),
        ("W1 step's read", read),
    ]
    figures: dict[str, float] = {}
    for name, send in sends:
        for i in range(count + 1, count + 21):  # warm-up, on items of their own
            send(client, table, run, i)
        c0 = time.process_time()
        for i in range(1, count + 1):
            send(client, table, run, i)
        figures[name] = round((time.process_time() - c0) / count * 1000, 3)
    figures["W1 step (3 requests)"] = round(
        sum(figures[k] for k in ("W1 step started", "W1 step's result", "W1 step's read")), 3
    )
    figures["floor / W1 step"] = round(
        figures["floor step (2 requests)"] / figures["W1 step (3 requests)"], 3
    )
    return figures


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--count", type=int, default=300)
    args = parser.parse_args()
    for name, value in (
        ("AWS_DEFAULT_REGION", "us-east-1"),
        ("AWS_ACCESS_KEY_ID", "testing"),
        ("AWS_SECRET_ACCESS_KEY", "testing"),
    ):
        os.environ.setdefault(name, value)
    with mock_aws(), serialized_moto(), quick_moto():
        client = boto3.client("dynamodb")
        _table(client)
        print(json.dumps(measure(client, TABLE, "costs", args.count), indent=1))


if __name__ == "__main__":
    main()
