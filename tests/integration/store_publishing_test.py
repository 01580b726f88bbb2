"""Published workflows on DynamoDB (moto): the registry item, its owner condition, and the
triggers the engine wires with EventBridge rules and Scheduler schedules."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest
from conftest import client

from stepwell.definition.models import Workflow
from stepwell.runtime.aws.triggers import AwsTriggers, base_name
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.publishing import PublishRefused, Workflows, bind
from stepwell.store.dynamodb import DynamoStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
TRIGGER = "arn:aws:lambda:us-east-1:123456789012:function:stepwell-trigger"
ROLE = "arn:aws:iam::123456789012:role/stepwell-scheduler"
PREFIX = "stepwell-"


def orders(**triggers: Any) -> Workflow:
    workflow = Workflow.model_validate(
        {"name": "orders", "triggers": triggers, "steps": {"a": {"function": "AFunction"}}}
    )
    return bind(workflow, {"AFunction": "arn:aws:lambda:us-east-1:123456789012:function:a"}, None)


@pytest.fixture
def wiring(store: DynamoStore) -> AwsTriggers:
    events, scheduler = client("events"), client("scheduler")
    events.create_event_bus(Name="stepwell-bus")
    scheduler.create_schedule_group(Name="stepwell-timers")
    return AwsTriggers(
        events,
        scheduler,
        prefix=PREFIX,
        bus="stepwell-bus",
        function_arn=TRIGGER,
        group="stepwell-timers",
        role_arn=ROLE,
    )


def rules(bus: str = "stepwell-bus") -> dict[str, dict[str, Any]]:
    events = client("events")
    found = {}
    for rule in events.list_rules(EventBusName=bus)["Rules"]:
        targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus)["Targets"]
        found[rule["Name"]] = {"pattern": json.loads(rule["EventPattern"]), "targets": targets}
    return found


def schedules() -> dict[str, dict[str, Any]]:
    scheduler = client("scheduler")
    names = [s["Name"] for s in scheduler.list_schedules(GroupName="stepwell-timers")["Schedules"]]
    return {n: scheduler.get_schedule(Name=n, GroupName="stepwell-timers") for n in names}


def test_the_registry_item_holds_the_version_and_its_owner(store: DynamoStore) -> None:
    workflows = Workflows(store, FakeClock(T0))
    first = workflows.publish(orders(), "shop/Orders", "stepwell-workflow:orders")
    found = store.registration("orders")
    assert found is not None
    assert (found.version, found.owner, found.retired) == (first.version, "shop/Orders", False)
    with pytest.raises(PublishRefused, match="published by shop/Orders"):
        workflows.publish(orders(schedules=[]), "billing/Orders", "x")
    assert store.registrations()[0].name == "orders"
    assert workflows.retire("orders", "shop/Orders", "stepwell-workflow:orders")
    assert store.registration("orders").retired  # type: ignore[union-attr]
    # retired: another owner may take the name
    workflows.publish(orders(), "billing/Orders", "y")
    assert store.registration("orders").owner == "billing/Orders"  # type: ignore[union-attr]


def test_event_and_schedule_triggers_are_rules_and_schedules_the_engine_owns(
    store: DynamoStore, wiring: AwsTriggers
) -> None:
    workflows = Workflows(store, FakeClock(T0), wiring)
    workflows.publish(
        orders(
            events=[{"pattern": {"source": ["shop"], "detail-type": ["order.placed"]}}],
            schedules=[{"expression": "cron(0 6 * * ? *)", "input": {"daily": True}}],
        ),
        "shop/Orders",
        "p",
    )
    found = rules()
    assert list(found) == ["stepwell-orders-e0"]
    target = found["stepwell-orders-e0"]["targets"][0]
    assert target["Arn"] == TRIGGER
    assert target["InputTransformer"]["InputTemplate"] == (
        '{"workflow": "orders", "event": <aws.events.event.json>}'
    )
    assert found["stepwell-orders-e0"]["pattern"] == {
        "source": ["shop"],
        "detail-type": ["order.placed"],
    }
    (schedule,) = schedules().values()
    assert schedule["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert json.loads(schedule["Target"]["Input"]) == {
        "workflow": "orders",
        "input": {"daily": True},
        "time": "<aws.scheduler.scheduled-time>",
    }
    assert schedule["Target"]["RoleArn"] == ROLE

    # a new version with one trigger fewer: its rule goes, nothing else of others'
    client("events").put_rule(
        Name="stepwell-orders-archive-e0", EventBusName="stepwell-bus", EventPattern='{"a":[1]}'
    )
    workflows.publish(orders(schedules=[{"expression": "rate(1 hour)"}]), "shop/Orders", "p")
    assert list(rules()) == ["stepwell-orders-archive-e0"]
    (schedule,) = schedules().values()
    assert schedule["ScheduleExpression"] == "rate(1 hour)"

    assert workflows.retire("orders", "shop/Orders", "p")
    assert schedules() == {} and list(rules()) == ["stepwell-orders-archive-e0"]


def test_long_names_stay_within_64_characters_and_apart() -> None:
    a = base_name("a-very-long-engine-stack-name-", "x" * 60)
    b = base_name("a-very-long-engine-stack-name-", "x" * 59 + "y")
    assert len(a) + 4 <= 64 and len(b) + 4 <= 64 and a != b
