"""How a rule's target makes its input from an event: Input, InputPath, InputTransformer."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from stepwell.local.targets import Target, json_path, transform

EVENTS = Path(__file__).resolve().parents[1] / "events"
TRANSFORMER = {
    "InputPathsMap": {},
    "InputTemplate": '{"workflow": "order-fulfilment", "event": <aws.events.event>}',
}
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:trigger"


def fixture(name: str) -> Any:
    return json.loads((EVENTS / name).read_text())


def test_the_trigger_rule_hands_the_whole_event_to_the_trigger() -> None:
    event = fixture("eventBridgeOrderPlaced.json")
    payload = transform(TRANSFORMER, event, "arn:rule", "rule")
    assert json.loads(payload) == fixture("triggerOrderPlaced.json")


def test_placeholders_inside_strings_insert_text_and_outside_insert_json() -> None:
    event = fixture("eventBridgeOrderPlaced.json")
    transformer = {
        "InputPathsMap": {
            "order": "$.detail.order_id",
            "items": "$.detail.items",
            "first": "$.detail.items[0].sku",
            "kind": "$['detail-type']",
            "missing": "$.detail.nope",
        },
        "InputTemplate": (
            '{"text": "order <order> (<kind>) by \\"<first>\\"", "items": <items>, '
            '"missing": <missing>, "rule": "<aws.events.rule-name>"}'
        ),
    }
    assert json.loads(transform(transformer, event, "arn:rule", "my-rule")) == {
        "text": 'order o-2002 (order.placed) by "MOUSE"',
        "items": [{"sku": "MOUSE", "qty": 2, "price": 25.0}],
        "missing": None,
        "rule": "my-rule",
    }
    assert json_path(event, "$") == event


def test_the_trigger_template_of_a_published_workflow_hands_over_the_event() -> None:
    event = fixture("eventBridgeOrderPlaced.json")
    target = Target(
        "wf",
        FUNCTION,
        input_transformer={
            "InputTemplate": '{"workflow": "order-fulfilment", "event": <aws.events.event.json>}'
        },
    )
    rule = ("arn:aws:events:us-east-1:123456789012:rule/shop/wf-order", "wf-order")
    assert json.loads(target.payload(event, *rule)) == fixture("triggerOrderPlaced.json")
    detail = Target("p", FUNCTION, input_path="$.detail").payload(event, *rule)
    assert json.loads(detail) == event["detail"]
    assert Target("i", FUNCTION, input='{"fixed": 1}').payload(event, *rule) == b'{"fixed": 1}'
    assert json.loads(Target("e", FUNCTION).payload(event, *rule)) == event
