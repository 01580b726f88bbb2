"""The EventBridge Scheduler API of the local stack beyond one-time timers: what publishing a
workflow's schedule triggers asks of it (update a schedule in place, list a workflow's
schedules to remove those it no longer has) and what a recurring schedule delivers."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stepwell.local.schedules import Schedule, SchedulerError, Schedules, parse, target_input

ACCOUNT, REGION = "123456789012", "us-east-1"
GROUP = "engine-timers"
TRIGGER = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:engine-trigger"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


@pytest.fixture
def found() -> Schedules:
    return Schedules(
        lambda schedule, when: None,
        account=ACCOUNT,
        region=REGION,
        groups={GROUP: f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule-group/{GROUP}"},
    )


def request(name: str, expression: str, **more: Any) -> dict[str, Any]:
    """A CreateSchedule or UpdateSchedule request, as the engine's trigger wiring sends it."""
    return {
        "Name": name,
        "GroupName": GROUP,
        "ScheduleExpression": expression,
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "State": "ENABLED",
        "Target": {"Arn": TRIGGER, "RoleArn": "role", "Input": '{"workflow": "orders"}'},
        **more,
    }


def to_trigger(arn: str) -> bool:
    return arn == TRIGGER


def test_a_schedule_is_updated_in_place(found: Schedules) -> None:
    created = found.create(request("orders-s0", "rate(1 hour)"), utc(2026, 1, 1), to_trigger)
    assert found.next_due() == utc(2026, 1, 1, 1)
    changed = request("orders-s0", "cron(0 6 * * ? *)", State="DISABLED")
    changed["Target"] = {**changed["Target"], "Input": '{"workflow": "orders", "input": 1}'}
    updated = found.update(changed, utc(2026, 1, 1, 0, 30), to_trigger)
    assert updated == created
    shown = found.get({"Name": "orders-s0", "GroupName": GROUP})
    assert shown["ScheduleExpression"] == "cron(0 6 * * ? *)"
    assert shown["State"] == "DISABLED"
    assert shown["Target"]["Input"] == '{"workflow": "orders", "input": 1}'
    assert shown["CreationDate"] == utc(2026, 1, 1)  # created once; updated since
    assert found.next_due() is None  # disabled
    assert len(found.all()) == 1
    with pytest.raises(SchedulerError) as missing:
        found.update(request("orders-s1", "rate(1 hour)"), utc(2026, 1, 1), to_trigger)
    assert missing.value.code == "ResourceNotFoundException"
    with pytest.raises(SchedulerError) as refused:
        found.update(request("orders-s0", "every hour"), utc(2026, 1, 1), to_trigger)
    assert refused.value.code == "ValidationException"


def test_schedules_are_listed_by_group_prefix_and_state_a_page_at_a_time(
    found: Schedules,
) -> None:
    now = utc(2026, 1, 1)
    for name in ("orders-s1", "orders-s0", "order-returns-s0"):
        found.create(request(name, "rate(1 day)"), now, to_trigger)
    found.create(request("orders-s2", "rate(1 day)", State="DISABLED"), now, to_trigger)
    # A template's rate(1 minute) rule is an EventBridge rule, not a Scheduler schedule.
    found.add(
        Schedule(
            name="orders-sweep",
            group="(rules)",
            arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/orders-sweep",
            expression="rate(1 minute)",
            parsed=parse("rate(1 minute)"),
            timezone="UTC",
            target={"Arn": TRIGGER},
            kind="Schedule",
            created=now,
        ),
        now,
    )

    def names(**params: Any) -> list[str]:
        return [s["Name"] for s in found.list_schedules(params)["Schedules"]]

    assert names(GroupName=GROUP, NamePrefix="orders-s") == ["orders-s0", "orders-s1", "orders-s2"]
    assert names(NamePrefix="orders-") == ["orders-s0", "orders-s1", "orders-s2"]
    assert names(GroupName=GROUP, State="DISABLED") == ["orders-s2"]
    (listed,) = found.list_schedules({"NamePrefix": "order-returns"})["Schedules"]
    assert listed == {
        "Arn": f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/{GROUP}/order-returns-s0",
        "Name": "order-returns-s0",
        "GroupName": GROUP,
        "State": "ENABLED",
        "Target": {"Arn": TRIGGER},
        "CreationDate": now,
    }
    first = found.list_schedules({"GroupName": GROUP, "NamePrefix": "orders", "MaxResults": 2})
    assert [s["Name"] for s in first["Schedules"]] == ["orders-s0", "orders-s1"]
    rest = found.list_schedules(
        {"GroupName": GROUP, "NamePrefix": "orders", "NextToken": first["NextToken"]}
    )
    assert [s["Name"] for s in rest["Schedules"]] == ["orders-s2"]
    assert "NextToken" not in rest
    with pytest.raises(SchedulerError) as unknown:
        found.list_schedules({"GroupName": "elsewhere"})
    assert unknown.value.code == "ResourceNotFoundException"


def test_a_schedule_s_input_gets_the_scheduler_s_context_attributes(found: Schedules) -> None:
    """The engine's schedule triggers send ``<aws.scheduler.scheduled-time>``: each tick's time
    makes its run id, so a tick delivered twice starts one run and each tick its own."""
    body = {"workflow": "orders", "time": "<aws.scheduler.scheduled-time>"}
    found.create(
        request(
            "orders-s0",
            "rate(1 hour)",
            Target={
                "Arn": TRIGGER,
                "Input": json.dumps({**body, "from": "<aws.scheduler.schedule-arn>"}),
            },
        ),
        utc(2026, 1, 1),
        to_trigger,
    )
    (schedule,) = found.all()
    first = json.loads(target_input(schedule, utc(2026, 1, 1, 1), ACCOUNT, REGION))
    second = json.loads(target_input(schedule, utc(2026, 1, 1, 2), ACCOUNT, REGION))
    assert first == {"workflow": "orders", "time": "2026-01-01T01:00:00Z", "from": schedule.arn}
    assert second["time"] == "2026-01-01T02:00:00Z"
    # An EventBridge rule's Input goes as it is; no Input, the scheduled event.
    rule = Schedule(
        name="sweep",
        group="(rules)",
        arn=f"arn:aws:events:{REGION}:{ACCOUNT}:rule/sweep",
        expression="rate(1 minute)",
        parsed=parse("rate(1 minute)"),
        timezone="UTC",
        target={"Arn": TRIGGER, "Input": '{"at": "<aws.scheduler.scheduled-time>"}'},
        kind="Schedule",
        created=utc(2026, 1, 1),
    )
    assert target_input(rule, utc(2026, 1, 1), ACCOUNT, REGION) == rule.target["Input"]
    rule.target = {"Arn": TRIGGER}
    event = json.loads(target_input(rule, utc(2026, 1, 1, 6), ACCOUNT, REGION))
    assert (event["detail-type"], event["time"]) == ("Scheduled Event", "2026-01-01T06:00:00Z")
