"""The request meter's arithmetic and the cost model, fed botocore events by hand (no AWS)."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from botocore.hooks import HierarchicalEmitter

import stepwell
from meter import (
    PRICES,
    Index,
    Reading,
    RequestMeter,
    TableShape,
    cost,
    index_writes,
)

TABLE = "t"
SHAPE = TableShape(("pk", "sk"), {"due": Index(("due_pk", "due_us"))})


class Calls:
    """A stand-in client: emits the two events the meter listens to, as botocore does."""

    def __init__(self, meter: RequestMeter) -> None:
        self.meta = SimpleNamespace(events=HierarchicalEmitter())
        meter.attach(self)

    def call(
        self, service: str, operation: str, params: dict[str, Any], parsed: Any = None
    ) -> None:
        context: dict[str, Any] = {}
        events = self.meta.events
        events.emit(f"before-parameter-build.{service}.{operation}", params=params, context=context)
        events.emit(f"after-call.{service}.{operation}", parsed=parsed or {}, context=context)


def item(sk: str, size: int = 0, **extra: dict[str, str]) -> dict[str, Any]:
    found: dict[str, Any] = {"pk": {"S": "RUN#1"}, "sk": {"S": sk}, **extra}
    if size:
        found["blob"] = {"S": "x" * size}
    return found


@pytest.fixture
def meter() -> RequestMeter:
    return RequestMeter().describe(TABLE, SHAPE)


def test_a_transaction_costs_two_units_per_kilobyte_of_each_item(meter: RequestMeter) -> None:
    Calls(meter).call(
        "dynamodb",
        "TransactWriteItems",
        {
            "TransactItems": [
                {"Put": {"TableName": TABLE, "Item": item("RUN", 1500)}},  # 2 KB
                {"Put": {"TableName": TABLE, "Item": item("STEP#a")}},  # 1 KB
                {"ConditionCheck": {"TableName": TABLE, "Key": item("STEP#b")}},
            ]
        },
    )
    spent = meter.reading()
    assert spent.writes == 1 and spent.items_written == 2
    assert spent.write_units == 2 * 2 + 2 * 1 + 2
    assert cost(spent).items["dynamodb_writes"] == pytest.approx(8 * PRICES.write_unit)


def test_eventually_consistent_reads_cost_half(meter: RequestMeter) -> None:
    calls = Calls(meter)
    found = {"Item": item("RUN", 5000)}  # 2 units of 4 KB
    calls.call("dynamodb", "GetItem", {"TableName": TABLE, "ConsistentRead": True}, found)
    calls.call("dynamodb", "GetItem", {"TableName": TABLE}, found)
    spent = meter.reading()
    assert (spent.reads, spent.items_read) == (2, 2)
    assert spent.read_units == 4 and spent.billed_read_units == 3


def test_index_writes_follow_the_index_key(meter: RequestMeter) -> None:
    calls = Calls(meter)

    def put(**due: dict[str, str]) -> float:
        before = meter.reading()
        calls.call("dynamodb", "PutItem", {"TableName": TABLE, "Item": item("STEP#a", **due)})
        return (meter.reading() - before).index_write_units

    at_1 = {"due_pk": {"S": "DUE#1"}, "due_us": {"N": "1"}}
    at_2 = {"due_pk": {"S": "DUE#1"}, "due_us": {"N": "2"}}
    assert put(**at_1) == 1  # enters the index
    assert put(**at_1) == 0  # unchanged keys: KEYS_ONLY needs no write
    assert put(**at_2) == 2  # moved: old entry deleted, new one written
    assert put() == 1  # leaves the index
    assert put() == 0


def test_a_failed_write_is_billed_but_changes_no_index(meter: RequestMeter) -> None:
    due = {"due_pk": {"S": "DUE#1"}, "due_us": {"N": "1"}}
    Calls(meter).call(
        "dynamodb",
        "PutItem",
        {"TableName": TABLE, "Item": item("STEP#a", **due)},
        {"Error": {"Code": "ConditionalCheckFailedException"}},
    )
    spent = meter.reading()
    assert spent.write_units == 1 and spent.failed_write_units == 1
    assert spent.index_write_units == 0 and spent.errors == {"dynamodb:PutItem": 1}


def test_an_update_is_billed_on_the_stored_item(meter: RequestMeter) -> None:
    calls = Calls(meter)
    calls.call("dynamodb", "PutItem", {"TableName": TABLE, "Item": item("STEP#a", 2500)})
    before = meter.reading()
    calls.call(
        "dynamodb",
        "UpdateItem",
        {
            "TableName": TABLE,
            "Key": item("STEP#a"),
            "UpdateExpression": "SET expires_at = :e",
            "ExpressionAttributeValues": {":e": {"N": "1700000000"}},
        },
    )
    spent = meter.reading() - before
    assert spent.write_units == 3  # the ~2.5 KB item, not the few bytes sent
    assert spent.index_write_units == 0


def test_events_and_messages_are_billed_per_64_kb(meter: RequestMeter) -> None:
    calls = Calls(meter)
    big = {"Source": "s", "DetailType": "d", "Detail": "x" * 70_000}
    calls.call("eventbridge", "PutEvents", {"Entries": [big, {"Source": "s", "Detail": "{}"}]})
    calls.call(
        "sqs",
        "SendMessageBatch",
        {"Entries": [{"MessageBody": "y" * 40_000}, {"MessageBody": "y" * 40_000}]},
    )
    spent = meter.reading()
    assert (spent.events_put, spent.event_chunks) == (2, 3)
    assert (spent.sqs_messages, spent.sqs_chunks) == (2, 2)


def test_cost_leaves_out_the_user_functions_and_free_requests() -> None:
    reading = Reading(
        invocations={"step-fn": 1000, "scheduler": 10},
        schedules_created=4,
    )
    reading.calls.update({"s3:PutObject": 2, "s3:GetObject": 5, "s3:DeleteObject": 9})
    priced = cost(reading, excluded_functions={"step-fn"})
    assert priced.items["lambda_requests"] == pytest.approx(10 * 0.20e-6)
    assert priced.items["scheduler"] == pytest.approx(4 * 1.00e-6)
    assert priced.items["s3"] == pytest.approx(2 * 5.00e-6 + 5 * 0.40e-6)
    per_million = priced.per_million(steps=1000)
    assert per_million["total"] == pytest.approx(priced.total * 1000)


def test_readings_add_and_subtract() -> None:
    a = Reading(write_units=3.0, largest_item=10, invocation_ms={"f": 5.0})
    a.calls["dynamodb:PutItem"] = 2
    b = Reading(write_units=1.0, largest_item=40, invocation_ms={"f": 1.0})
    b.calls["dynamodb:PutItem"] = 1
    total = a + b
    assert total.calls == {"dynamodb:PutItem": 3} and total.write_units == 4
    assert total.largest_item == 40 and total.invocation_ms == {"f": 6.0}
    spent = total - a
    assert spent.calls == {"dynamodb:PutItem": 1} and spent.invocation_ms == {"f": 1.0}


def test_an_index_that_projects_attributes_is_rewritten_on_every_change() -> None:
    assert index_writes(("k",), ("k",), keys_only=False, size=3000) == 3
    assert index_writes(("k",), ("j",), keys_only=False, size=3000) == 4
    assert index_writes(None, None, keys_only=False, size=3000) == 0


def test_the_meter_is_not_shipped() -> None:
    # It serves the benchmarks and the tests: the package, which is what the Lambda layer
    # carries, holds no part of it.
    assert importlib.util.find_spec("stepwell.store.meter") is None
    assert not list(Path(stepwell.__file__).parent.rglob("meter.py"))
