"""The critical path ``make bench`` prints (``benchmarks/critical_path.py``): from the requests
each step-function invocation made, in order, as the meter kept them per thread."""

from __future__ import annotations

import threading
from types import SimpleNamespace
from typing import Any

from botocore.hooks import HierarchicalEmitter

import critical_path
from meter import RequestMeter

STEP = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:UpdateItem", "lambda:Invoke"]


def _meter() -> tuple[RequestMeter, Any]:
    meter = RequestMeter()
    client = SimpleNamespace(meta=SimpleNamespace(events=HierarchicalEmitter()))
    meter.attach(client)
    return meter, client.meta.events


def _call(events: Any, name: str) -> None:
    service, operation = name.split(":")
    events.emit(f"before-parameter-build.{service}.{operation}", params={}, context={})


def test_the_meter_keeps_each_threads_requests_in_order_while_tracing() -> None:
    meter, events = _meter()
    _call(events, "dynamodb:GetItem")
    assert meter.trail() == []  # not tracing
    meter.tracing = True
    other: list[str] = []

    def elsewhere() -> None:
        _call(events, "sqs:SendMessage")
        other.extend(meter.trail())

    for name in STEP:
        _call(events, name)
    thread = threading.Thread(target=elsewhere)
    thread.start()
    thread.join()
    assert meter.trail() == STEP
    assert other == ["sqs:SendMessage"]
    assert meter.trail() == []


def test_a_chain_takes_the_common_step_between_the_first_and_the_last() -> None:
    first, last = ["dynamodb:TransactWriteItems", *STEP], ["dynamodb:UpdateItem"]
    found = critical_path.of_chain([first, STEP, STEP, ["dynamodb:GetItem", *STEP], last])
    assert found["requests"] == STEP
    assert (found["dynamodb_requests"], found["invokes"]) == (3, 1)
    assert found["dynamodb_ms_service_side_under"] == 30
    assert found["dynamodb_ms_observed"] == [30, 60]


def test_a_fan_in_is_the_child_that_started_the_join() -> None:
    count = ["dynamodb:BatchGetItem", "dynamodb:UpdateItem", "dynamodb:UpdateItem"]
    ending = [*count, "dynamodb:BatchGetItem", "dynamodb:UpdateItem", "lambda:Invoke"]
    found = critical_path.of_fan_in([count, count, ending, count, ["dynamodb:UpdateItem"]])
    assert found["requests"] == ending
    assert found["dynamodb_requests"] == 5
    assert found["other_children_requests_median"] == 3


def test_the_printed_table_names_its_sources_and_what_is_not_published() -> None:
    results = {
        "workloads": {
            "W1": {"critical_path": critical_path.of_chain([STEP, STEP, STEP])},
            "W2": {"error": "exit 1"},
        }
    }
    text = "\n".join(critical_path.lines(results))
    assert "| W1 (a step to the next) | dynamodb:BatchGetItem -> " in text
    assert "| 3 | < 30 ms | 30-60 ms | 1 |" in text
    assert "W2 (" not in text
    assert critical_path.DYNAMODB_SERVICE.source in text
    assert critical_path.DYNAMODB_OBSERVED.source in text
    assert "No published or widely measured p50" in text
    assert critical_path.lines({"workloads": {}}) == []
