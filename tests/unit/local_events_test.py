"""EventBridge locally: events as delivered, rules matched, SQS records."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from stepwell.local.clock import StackClock
from stepwell.local.events import EventBuses
from stepwell.local.lambdas import InvokeResult
from stepwell.local.queues import LocalQueue, QueueMapping
from stepwell.local.rules import Rule, Rules
from stepwell.local.targets import Target
from stepwell.local.template import QueueSource, QueueSpec
from stepwell.runtime.clock import FakeClock

EVENTS = Path(__file__).resolve().parents[1] / "events"
TRANSFORMER = {
    "InputPathsMap": {},
    "InputTemplate": '{"workflow": "order-fulfilment", "event": <aws.events.event>}',
}


def fixture(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def clock() -> StackClock:
    # Virtual time over a wall clock that stands still: only jumps move it.
    return StackClock(virtual=True, wall=FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))


def test_put_events_records_matches_and_delivers() -> None:
    delivered: list[tuple[str, bytes, str]] = []
    rules = Rules(
        {"shop-bus": "arn:aws:events:us-east-1:123456789012:event-bus/shop-bus"},
        account="123456789012",
        region="us-east-1",
    )
    rules.add(
        Rule(
            "r1",
            "shop-bus",
            "arn:r1",
            pattern={"source": ["shop"]},
            targets=[Target("t", "arn:trigger", input_transformer=TRANSFORMER)],
        )
    )
    rules.add(
        Rule("r2", "default", "arn:r2", pattern={"source": ["shop"]}, targets=[Target("t", "x")])
    )
    buses = EventBuses(
        rules,
        lambda target, payload, source: delivered.append((target, payload, source)),
        clock(),
    )
    seen: list[dict[str, Any]] = []
    buses.listen(seen.append)
    detail = fixture("eventBridgeOrderPlaced.json")["detail"]
    response = buses.put_events(
        [
            {
                "EventBusName": "shop-bus",
                "Source": "shop",
                "DetailType": "order.placed",
                "Detail": json.dumps(detail),
            },
            {"EventBusName": "shop-bus", "Source": "shop", "DetailType": "x", "Detail": "[1]"},
            {"EventBusName": "nope", "Source": "shop", "DetailType": "x", "Detail": "{}"},
        ]
    )
    assert response["FailedEntryCount"] == 2
    assert [e.get("ErrorCode") for e in response["Entries"]] == [
        None,
        "MalformedDetail",
        "NotFoundException",
    ]
    (event,) = seen
    expected = fixture("eventBridgeOrderPlaced.json")
    assert set(event) == set(expected)
    assert {k: event[k] for k in ("detail-type", "source", "account", "region", "detail")} == {
        k: expected[k] for k in ("detail-type", "source", "account", "region", "detail")
    }
    assert event["time"] == "2026-01-01T00:00:00Z"
    ((function, payload, source),) = delivered  # only the rule on shop-bus
    assert function == "arn:trigger" and source == "rule r1"
    assert json.loads(payload) == {"workflow": "order-fulfilment", "event": event}
    assert buses.events("order.placed") == [event]


# -- queues -----------------------------------------------------------------------------------
def queue_pair(stack_clock: StackClock) -> tuple[LocalQueue, LocalQueue]:
    dead = LocalQueue(
        QueueSpec("Dlq", "dlq", "https://q/dlq", "arn:dlq", {}), stack_clock, "us-east-1"
    )
    redrive = json.dumps({"deadLetterTargetArn": "arn:dlq", "maxReceiveCount": 2})
    queue = LocalQueue(
        QueueSpec(
            "Q", "q", "https://q/q", "arn:q", {"VisibilityTimeout": "180", "RedrivePolicy": redrive}
        ),
        stack_clock,
        "us-east-1",
    )
    queue.dead_letter = dead
    return queue, dead


def test_delay_seconds_run_on_the_stack_s_clock() -> None:
    stack_clock = clock()
    queue, _ = queue_pair(stack_clock)
    queue.send("later", 300)
    assert queue.receive(10) == []
    assert queue.next_visible() == stack_clock.now() + timedelta(seconds=300)
    stack_clock.jump_to(stack_clock.now() + timedelta(seconds=301))
    (message,) = queue.receive(10)
    record = queue.record(message)
    expected = fixture("sqsTimerEvent.json")["Records"][0]
    assert set(record) == set(expected)
    assert set(record["attributes"]) == set(expected["attributes"])
    assert (record["body"], record["eventSource"], record["eventSourceARN"]) == (
        "later",
        "aws:sqs",
        "arn:q",
    )


def test_failed_batch_items_come_back_after_the_visibility_timeout_then_go_to_the_dlq() -> None:
    stack_clock = clock()
    queue, dead = queue_pair(stack_clock)
    queue.send("good", 0)
    queue.send("poison", 0)
    calls: list[dict[str, Any]] = []

    def invoke(event: dict[str, Any], done: Any) -> None:
        calls.append(event)
        failures = [
            {"itemIdentifier": r["messageId"]} for r in event["Records"] if r["body"] == "poison"
        ]
        done(InvokeResult(200, json.dumps({"batchItemFailures": failures}).encode(), "req"))

    source = QueueSource("Timers", "arn:q", batch_size=10, report_batch_item_failures=True)
    mapping = QueueMapping(queue, "fn", source, invoke)
    assert mapping.poll()
    assert [r["body"] for r in calls[0]["Records"]] == ["good", "poison"]
    assert len(queue) == 1 and queue.visible() == 0  # the poison message waits out its timeout
    stack_clock.jump_to(stack_clock.now() + timedelta(seconds=180))
    assert mapping.poll()
    assert calls[1]["Records"][0]["attributes"]["ApproximateReceiveCount"] == "2"
    stack_clock.jump_to(stack_clock.now() + timedelta(seconds=180))
    assert not mapping.poll()  # received twice already: moved to the dead-letter queue
    assert len(queue) == 0 and len(dead) == 1


def test_a_function_error_or_a_bad_response_fails_the_whole_batch() -> None:
    stack_clock = clock()
    queue, _ = queue_pair(stack_clock)
    queue.send("a", 0)
    queue.send("b", 0)
    source = QueueSource("Timers", "arn:q", report_batch_item_failures=True)
    error = InvokeResult(200, b'{"errorType": "Boom"}', "req", "Unhandled")
    QueueMapping(queue, "fn", source, lambda event, done: done(error)).poll()
    assert len(queue) == 2
    stack_clock.jump_to(stack_clock.now() + timedelta(seconds=180))
    bad = InvokeResult(200, b'{"batchItemFailures": [{"itemIdentifier": "not-in-batch"}]}', "req")
    QueueMapping(queue, "fn", source, lambda event, done: done(bad)).poll()
    assert len(queue) == 2
    stack_clock.jump_to(stack_clock.now() + timedelta(seconds=180))
    fine = InvokeResult(200, b"null", "req")
    QueueMapping(queue, "fn", source, lambda event, done: done(fine)).poll()
    assert len(queue) == 0
