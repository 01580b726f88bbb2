"""EventBridge rules and Scheduler schedules made while the stack runs, with boto3, as a
workflow's triggers are made when it is published: they deliver to the stack's functions as the
template's rules and schedules do, stop when deleted, and outlive a restart.

The target is ``functions/echo.py``: it puts what it received on the default bus (detail-type
``echo``), where the test reads it. Each check that nothing more arrived waits first for a
delivery that must arrive (a rule or schedule left in place), then for the stack to be idle.
(That they outlive a restart: ``durable_state_test.py``.)"""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import boto3
import pytest
from botocore.exceptions import ClientError
from conftest import local_stack, workflows_folder
from e2e_helpers import ECHO, echo_template, echoes, wait_for_echoes

from stepwell.local.stack import LocalStack
from stepwell.local.template import ACCOUNT, REGION, STACK

START = datetime(2026, 3, 2, tzinfo=UTC)
"""A Monday in winter: Paris is UTC+1."""
PARIS = ZoneInfo("Europe/Paris")
ROLE = f"arn:aws:iam::{ACCOUNT}:role/{STACK}-SchedulerRole"
BUS = f"{STACK}-Stepwell-bus"
ORDERS = {"source": ["e2e.shop"], "detail-type": ["order.placed"]}
TRIGGER = '{"workflow": "order-fulfilment", "event": <aws.events.event.json>}'
"""The input a published workflow's event trigger gives the trigger function."""
NIGHTLY = json.dumps(
    {
        "workflow": "nightly-report",
        "time": "<aws.scheduler.scheduled-time>",
        "execution": "<aws.scheduler.execution-id>",
        "attempt": "<aws.scheduler.attempt-number>",
        "schedule": "<aws.scheduler.schedule-arn>",
    }
)


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """template.yaml plus the echo function, virtual time from :data:`START`."""
    folder = tmp_path_factory.mktemp("rules")
    with local_stack(
        workflows_folder(folder), template=echo_template(folder / "template"), start_time=START
    ) as started:
        yield started


def put_order(n: int) -> None:
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": "e2e.shop",
                "DetailType": "order.placed",
                "Detail": json.dumps({"order": n}),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def add_rule(name: str, target: dict[str, Any]) -> None:
    events = boto3.client("events")
    events.put_rule(Name=name, EventBusName=BUS, EventPattern=json.dumps(ORDERS))
    events.put_targets(Rule=name, EventBusName=BUS, Targets=[{"Id": "echo", "Arn": ECHO, **target}])


def test_a_rule_made_with_boto3_delivers_until_it_is_deleted(stack: LocalStack) -> None:
    events = boto3.client("events")
    add_rule("wf-order-fulfilment", {"InputTransformer": {"InputTemplate": TRIGGER}})
    add_rule("control", {"Input": '{"control": true}'})
    assert events.describe_rule(Name="wf-order-fulfilment", EventBusName=BUS)["Arn"] == (
        f"arn:aws:events:{REGION}:{ACCOUNT}:rule/{BUS}/wf-order-fulfilment"
    )
    before = len(echoes(stack))

    put_order(1)
    got = wait_for_echoes(stack, before + 2)[before:]
    (placed,) = [e for e in stack.events("order.placed") if e["detail"] == {"order": 1}]
    assert {"control": True} in got
    assert {"workflow": "order-fulfilment", "event": placed} in got  # the whole event, as JSON

    events.remove_targets(Rule="wf-order-fulfilment", EventBusName=BUS, Ids=["echo"])
    events.delete_rule(Name="wf-order-fulfilment", EventBusName=BUS)
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.describe_rule(Name="wf-order-fulfilment", EventBusName=BUS)
    put_order(2)
    wait_for_echoes(stack, before + 3)  # the control rule still delivers
    assert stack.wait_idle()
    assert echoes(stack)[before + 2 :] == [{"control": True}]  # the deleted rule did not


def test_the_rule_api_refuses_as_eventbridge_does(stack: LocalStack) -> None:
    events = boto3.client("events")
    with pytest.raises(events.exceptions.InvalidEventPatternException, match="numeric"):
        events.put_rule(Name="bad", EventPattern='{"n": [{"numeric": [">", "x"]}]}')
    with pytest.raises(ClientError, match="regular expression pattern") as refused:
        events.put_rule(Name="no spaces", EventPattern=json.dumps(ORDERS))
    assert refused.value.response["Error"]["Code"] == "ValidationException"
    with pytest.raises(events.exceptions.ResourceNotFoundException):
        events.put_targets(Rule="nope", Targets=[{"Id": "t", "Arn": ECHO}])


def test_a_recurring_schedule_made_with_boto3_fires_in_its_time_zone_until_deleted(
    stack: LocalStack,
) -> None:
    scheduler = boto3.client("scheduler")
    local = stack.clock.now().astimezone(PARIS)
    first = local.replace(hour=2, minute=30, second=0, microsecond=0)
    if first <= local:
        first += timedelta(days=1)
    scheduler.create_schedule(
        Name="wf-nightly-report",
        ScheduleExpression="cron(30 2 * * ? *)",
        ScheduleExpressionTimezone="Europe/Paris",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": ECHO, "RoleArn": ROLE, "Input": NIGHTLY},
    )
    scheduler.create_schedule(
        Name="control",
        ScheduleExpression="rate(1 hour)",
        FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": ECHO, "RoleArn": ROLE, "Input": '{"control": true}'},
    )
    before = len(echoes(stack))
    assert wait_for_echoes(stack, before + 1)[before:] == [{"control": True}]  # rate: at once
    listed = scheduler.list_schedules(NamePrefix="wf-")["Schedules"]
    assert [s["Name"] for s in listed] == ["wf-nightly-report"]

    for day in range(2):
        stack.advance(to=first + timedelta(days=day))
        got = wait_for_echoes(stack, before + 2 * (day + 1) + 1)
        (nightly,) = [e for e in got[before:] if "workflow" in e][day:]
        when = (first + timedelta(days=day)).astimezone(UTC)
        assert when.hour == 1  # 02:30 in Paris
        assert nightly == {
            "workflow": "nightly-report",
            "time": when.strftime("%Y-%m-%dT%H:%M:%SZ"),
            "execution": nightly["execution"],
            "attempt": "1",
            "schedule": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/wf-nightly-report",
        }
        assert len(nightly["execution"]) == 16

    scheduler.delete_schedule(Name="wf-nightly-report")
    count = len(echoes(stack))
    stack.advance(to=first + timedelta(days=3))
    wait_for_echoes(stack, count + 1)  # the control schedule still fires
    assert stack.wait_idle()
    assert echoes(stack)[count:] == [{"control": True}]  # the deleted schedule did not
    scheduler.delete_schedule(Name="control")
