"""EventBridge rules made through the API in the local stack: what the engine makes for a
published workflow's event triggers (its own AwsTriggers, against the stack's buses) starts the
workflow when a matching event is put, and goes when the workflow is retired."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from botocore.exceptions import ClientError

from stepwell.definition.models import Workflow
from stepwell.local.clock import StackClock
from stepwell.local.events import EventBuses, Rule, RuleError
from stepwell.local.template import RuleSource
from stepwell.runtime.aws.triggers import AwsTriggers
from stepwell.runtime.clock import FakeClock

ACCOUNT, REGION = "123456789012", "us-east-1"
BUS = "engine-bus"
TRIGGER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:engine-trigger"


class Delivered(list[tuple[str, dict[str, Any], str]]):
    """``(function, payload, source)`` of each asynchronous invoke."""

    def __call__(self, function: str, payload: bytes, source: str) -> None:
        self.append((function, json.loads(payload), source))


@pytest.fixture
def delivered() -> Delivered:
    return Delivered()


@pytest.fixture
def buses(delivered: Delivered) -> EventBuses:
    template_rule = Rule(
        RuleSource("Lost", BUS, {"source": ["lambda"]}, rule_name="engine-LostInvocations"),
        "engine-scheduler",
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/engine-LostInvocations",
    )
    return EventBuses(
        {BUS: f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/{BUS}"},
        [template_rule],
        delivered,
        StackClock(virtual=True, wall=FakeClock(datetime(2026, 1, 1, tzinfo=UTC))),
        account=ACCOUNT,
        region=REGION,
        targets=lambda arn: arn == TRIGGER,
    )


class _Client:
    """The EventBridge client the engine's trigger wiring calls, answered by ``buses`` (as the
    local stack's interception does: keyword arguments in, ClientError for a refusal)."""

    def __init__(self, buses: EventBuses) -> None:
        self._buses = buses

    def __getattr__(self, name: str) -> Callable[..., dict[str, Any]]:
        method = getattr(self._buses, name)

        def call(**params: Any) -> dict[str, Any]:
            try:
                answer: dict[str, Any] = method(params)
            except RuleError as exc:
                error = {"Error": {"Code": exc.code, "Message": str(exc)}}
                raise ClientError(error, name) from None  # type: ignore[arg-type]
            return answer

        return call


def orders(*patterns: dict[str, Any], bus: str | None = None) -> Workflow:
    return Workflow.model_validate(
        {
            "name": "orders",
            "triggers": {"events": [{"pattern": p, "bus": bus} for p in patterns]},
            "steps": {"a": {"function": "AFunction"}},
        }
    )


def put(buses: EventBuses, detail_type: str, bus: str = BUS) -> dict[str, Any]:
    return buses.put(
        {"EventBusName": bus, "Source": "shop", "DetailType": detail_type, "Detail": "{}"}
    )


class _NoSchedules:
    """The Scheduler of a workflow with no schedule triggers (wiring lists them to remove)."""

    def list_schedules(self, **_: Any) -> dict[str, Any]:
        return {"Schedules": []}


def wiring(buses: EventBuses) -> AwsTriggers:
    return AwsTriggers(
        _Client(buses),
        _NoSchedules(),
        prefix="engine-",
        bus=BUS,
        function_arn=TRIGGER,
        group="engine-timers",
        role_arn="role",
    )


def test_a_published_event_trigger_starts_its_workflow(
    buses: EventBuses, delivered: Delivered
) -> None:
    triggers = wiring(buses)
    triggers.wire(orders({"source": ["shop"], "detail-type": ["order.placed"]}))
    event = put(buses, "order.placed")
    put(buses, "order.cancelled")  # matches no rule
    assert delivered == [(TRIGGER, {"workflow": "orders", "event": event}, "rule engine-orders-e0")]
    # Published again with another pattern: the same rule, changed; its target kept.
    delivered.clear()
    triggers.wire(
        orders({"source": ["shop"], "detail-type": ["order.cancelled"]}),
        orders({"source": ["shop"], "detail-type": ["order.placed"]}),
    )
    put(buses, "order.placed")
    cancelled = put(buses, "order.cancelled")
    assert delivered == [
        (TRIGGER, {"workflow": "orders", "event": cancelled}, "rule engine-orders-e0")
    ]
    # Retired: its rule is gone, the template's stays.
    triggers.unwire(orders({"source": ["shop"]}))
    delivered.clear()
    put(buses, "order.cancelled")
    assert delivered == []
    assert [r["Name"] for r in buses.list_rules({"EventBusName": BUS})["Rules"]] == [
        "engine-LostInvocations"
    ]


def test_rules_are_listed_described_and_kept_across_a_restart(
    buses: EventBuses, delivered: Delivered
) -> None:
    wiring(buses).wire(orders({"source": ["warehouse"]}, {"detail-type": ["x"]}))
    listed = buses.list_rules({"EventBusName": BUS, "NamePrefix": "engine-orders-"})
    assert [r["Name"] for r in listed["Rules"]] == ["engine-orders-e0", "engine-orders-e1"]
    assert listed["Rules"][0] == {
        "Name": "engine-orders-e0",
        "Arn": f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/engine-orders-e0",
        "EventPattern": '{"source": ["warehouse"]}',
        "State": "ENABLED",
        "EventBusName": BUS,
        "Description": "Starts Stepwell workflow orders",
    }
    page = buses.list_rules({"EventBusName": BUS, "Limit": 2})
    assert [r["Name"] for r in page["Rules"]] == ["engine-LostInvocations", "engine-orders-e0"]
    rest = buses.list_rules({"EventBusName": BUS, "NextToken": page["NextToken"]})
    assert [r["Name"] for r in rest["Rules"]] == ["engine-orders-e1"]
    described = buses.describe_rule({"EventBusName": BUS, "Name": "engine-orders-e1"})
    assert described["EventPattern"] == '{"detail-type": ["x"]}'
    (target,) = buses.list_targets_by_rule({"EventBusName": BUS, "Rule": "engine-orders-e1"})[
        "Targets"
    ]
    assert target["Arn"] == TRIGGER
    # What the stack saves, another stack's buses take back: the rule delivers there.
    again = Delivered()
    restarted = EventBuses(
        dict(buses.buses),
        [],
        again,
        StackClock(virtual=True, wall=FakeClock(datetime(2026, 1, 2, tzinfo=UTC))),
        account=ACCOUNT,
        region=REGION,
        targets=lambda arn: arn == TRIGGER,
    )
    restarted.restore_rules(json.loads(json.dumps(buses.rules_made())))
    event = put(restarted, "x")
    assert again == [(TRIGGER, {"workflow": "orders", "event": event}, "rule engine-orders-e1")]


def test_what_eventbridge_refuses_is_refused(buses: EventBuses) -> None:
    rule = {"EventBusName": BUS, "Name": "engine-r", "EventPattern": '{"source": ["shop"]}'}
    for params, code in (
        ({**rule, "EventBusName": "nope"}, "ResourceNotFoundException"),
        ({**rule, "Name": "no spaces"}, "ValidationException"),
        ({**rule, "EventPattern": "{"}, "InvalidEventPatternException"),
        ({**rule, "EventPattern": "[]"}, "InvalidEventPatternException"),
        ({**rule, "ScheduleExpression": "rate(1 hour)"}, "ValidationException"),
    ):
        with pytest.raises(RuleError) as refused:
            buses.put_rule(params)
        assert refused.value.code == code, params
    buses.put_rule(rule)
    failed = buses.put_targets(
        {
            "EventBusName": BUS,
            "Rule": "engine-r",
            "Targets": [
                {"Id": "trigger", "Arn": TRIGGER},
                {"Id": "elsewhere", "Arn": "arn:aws:sns:us-east-1:123456789012:topic"},
            ],
        }
    )
    assert failed["FailedEntryCount"] == 1
    assert failed["FailedEntries"][0]["TargetId"] == "elsewhere"
    with pytest.raises(RuleError, match="has targets"):
        buses.delete_rule({"EventBusName": BUS, "Name": "engine-r"})
    with pytest.raises(RuleError) as missing:
        buses.put_targets({"EventBusName": BUS, "Rule": "engine-none", "Targets": []})
    assert missing.value.code == "ResourceNotFoundException"
    buses.remove_targets({"EventBusName": BUS, "Rule": "engine-r", "Ids": ["trigger"]})
    assert buses.delete_rule({"EventBusName": BUS, "Name": "engine-r"}) == {}
    assert buses.delete_rule({"EventBusName": BUS, "Name": "engine-r"}) == {}  # gone already
