"""The local stack's schedules and EventBridge Scheduler's API over them: what each request
gives back and refuses, and when a schedule fires."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.scheduler import SchedulerError, Schedules
from stepwell.local.schedules import Schedule, parse, scheduled_event, target_input

EVENTS = Path(__file__).resolve().parents[1] / "events"
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:echo"
ROLE = "arn:aws:iam::123456789012:role/scheduler"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


def schedules() -> tuple[Schedules, list[tuple[str, datetime]]]:
    fired: list[tuple[str, datetime]] = []
    found = Schedules(
        lambda schedule, when: fired.append((schedule.name, when)),
        account="123456789012",
        region="us-east-1",
        groups={"timers": "arn:aws:scheduler:us-east-1:123456789012:schedule-group/timers"},
    )
    return found, fired


def test_a_recurring_schedule_fires_once_after_a_long_jump() -> None:
    found, fired = schedules()
    start = utc(2026, 1, 1)
    sweep = Schedule(
        name="sweep",
        group="(rules)",
        arn="arn",
        expression="rate(1 minute)",
        parsed=parse("rate(1 minute)"),
        timezone="UTC",
        target={"Arn": "fn"},
        kind="Schedule",
        created=start,
    )
    found.add(sweep, start)
    assert found.fire_due(start + timedelta(seconds=59)) == 0
    assert found.fire_due(start + timedelta(days=2)) == 1
    assert fired == [("sweep", start + timedelta(minutes=1))]
    assert sweep.next_at == start + timedelta(days=2, minutes=1)
    assert found.next_due(one_time_only=True) is None


def test_one_time_schedules_through_the_api() -> None:
    found, fired = schedules()
    now = utc(2026, 1, 1)
    request = {
        "Name": "t-1",
        "GroupName": "timers",
        "ScheduleExpression": "at(2026-01-03T00:00:00)",
        "ScheduleExpressionTimezone": "UTC",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "DELETE",
        "Target": {"Arn": "queue-arn", "RoleArn": "role", "Input": "{}"},
    }
    created = found.create(request, now, lambda arn: arn == "queue-arn")
    assert created["ScheduleArn"].endswith(":schedule/timers/t-1")
    with pytest.raises(SchedulerError) as conflict:
        found.create(request, now, lambda arn: True)
    assert conflict.value.code == "ConflictException"
    assert found.get({"Name": "t-1", "GroupName": "timers"})["State"] == "ENABLED"
    assert found.next_due(one_time_only=True) == utc(2026, 1, 3)
    assert found.fire_due(utc(2026, 1, 3)) == 1
    assert fired == [("t-1", utc(2026, 1, 3))]
    with pytest.raises(SchedulerError) as gone:  # ActionAfterCompletion DELETE
        found.get({"Name": "t-1", "GroupName": "timers"})
    assert gone.value.code == "ResourceNotFoundException"


def test_the_api_refuses_what_the_scheduler_refuses() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    base = {"Name": "x", "ScheduleExpression": "at(2026-01-03T00:00:00)", "Target": {"Arn": "q"}}
    for request, code in (
        ({**base, "GroupName": "nope"}, "ResourceNotFoundException"),
        ({**base, "GroupName": "timers", "ScheduleExpression": "soon"}, "ValidationException"),
        (
            {**base, "GroupName": "timers", "Target": {"Arn": "arn:aws:sns:x"}},
            "ValidationException",
        ),
    ):
        with pytest.raises(SchedulerError) as refused:
            found.create(request, now, lambda arn: arn == "q")
        assert refused.value.code == code


def test_a_schedule_without_input_delivers_the_scheduled_event() -> None:
    expected = json.loads((EVENTS / "eventBridgeScheduledEvent.json").read_text())
    rule = Schedule(
        name="stepwell-local-SchedulerFunctionSweep",
        group="(rules)",
        arn=expected["resources"][0],
        expression="rate(1 minute)",
        parsed=parse("rate(1 minute)"),
        timezone="UTC",
        target={},
        kind="Schedule",
        created=utc(2026, 1, 1),
    )
    event = scheduled_event(rule, utc(2026, 1, 1, 6), "123456789012", "us-east-1")
    assert {**event, "id": expected["id"]} == expected


def recurring(name: str = "every-5", **overrides: Any) -> dict[str, Any]:
    return {
        "Name": name,
        "GroupName": "timers",
        "ScheduleExpression": "rate(5 minutes)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": FUNCTION, "RoleArn": ROLE, "Input": '{"n": 1}'},
        **overrides,
    }


def ours(arn: str) -> bool:
    return arn == FUNCTION


def test_a_scheduler_rate_starts_at_once_and_repeats_from_there() -> None:
    found, fired = schedules()
    now = utc(2026, 1, 1, 12, 0, 30)
    found.create(recurring(), now, ours)
    assert found.fire_due(now) == 1  # EventBridge Scheduler starts a rate schedule at once
    assert found.fire_due(now + timedelta(minutes=4)) == 0
    assert found.fire_due(now + timedelta(minutes=5)) == 1
    assert fired == [("every-5", now), ("every-5", now + timedelta(minutes=5))]


def test_a_rule_s_rate_fires_one_period_after_the_rule() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    found.add(
        Schedule(
            "r",
            "(rules)",
            "arn",
            "rate(5 minutes)",
            parse("rate(5 minutes)"),
            "UTC",
            {},
            "Schedule",
            created=now,
        ),
        now,
    )
    assert found.fire_due(now) == 0
    assert found.fire_due(now + timedelta(minutes=5)) == 1


def test_start_and_end_dates_bound_a_recurring_schedule() -> None:
    found, fired = schedules()
    now = utc(2026, 1, 1)
    found.create(
        recurring(
            StartDate="2026-01-01T01:00:00Z",  # as text, as boto3 takes it
            EndDate=utc(2026, 1, 1, 1, 12),
            ScheduleExpressionTimezone="Europe/Paris",
        ),
        now,
        ours,
    )
    assert found.next_due() == utc(2026, 1, 1, 1)
    for minute in (0, 5, 10, 15):
        found.fire_due(utc(2026, 1, 1, 1, minute))
    assert [when for _, when in fired] == [utc(2026, 1, 1, 1, m) for m in (0, 5, 10)]
    assert found.next_due() is None  # the next time is past the end date
    assert found.get({"Name": "every-5", "GroupName": "timers"})["EndDate"] == utc(
        2026, 1, 1, 1, 12
    )


def test_cron_through_the_api_reads_its_time_zone() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    found.create(
        recurring(
            "nine",
            ScheduleExpression="cron(0 9 ? * MON-FRI *)",
            ScheduleExpressionTimezone="Europe/Paris",
        ),
        now,
        ours,
    )
    assert found.next_due() == utc(2026, 1, 1, 8)  # 09:00 in Paris, a Thursday in winter
    found.fire_due(utc(2026, 1, 1, 8))
    assert found.next_due() == utc(2026, 1, 2, 8)  # Friday, then no weekend
    found.fire_due(utc(2026, 1, 2, 8))
    assert found.next_due() == utc(2026, 1, 5, 8)


def test_context_attributes_are_filled_in_the_target_s_input() -> None:
    found, _ = schedules()
    found.create(
        recurring(
            Target={
                "Arn": FUNCTION,
                "RoleArn": ROLE,
                "Input": json.dumps(
                    {
                        "workflow": "nightly",
                        "time": "<aws.scheduler.scheduled-time>",
                        "id": "<aws.scheduler.execution-id>",
                        "attempt": "<aws.scheduler.attempt-number>",
                        "schedule": "<aws.scheduler.schedule-arn>",
                    }
                ),
            }
        ),
        utc(2026, 1, 1),
        ours,
    )
    (schedule,) = found.all()
    first = json.loads(target_input(schedule, utc(2026, 1, 1, 6, 5)) or "")
    second = json.loads(target_input(schedule, utc(2026, 1, 1, 6, 10)) or "")
    assert first["time"] == "2026-01-01T06:05:00Z"
    assert first["attempt"] == "1"
    assert first["schedule"] == "arn:aws:scheduler:us-east-1:123456789012:schedule/timers/every-5"
    assert len(first["id"]) == 16 and first["id"] != second["id"]
    assert first["workflow"] == "nightly"


def test_update_replaces_every_setting_and_keeps_when_it_was_made() -> None:
    found, _ = schedules()
    made, later = utc(2026, 1, 1), utc(2026, 1, 2)
    found.create(recurring(Description="old"), made, ours)
    found.fire_due(made)
    answer = found.update(
        recurring(ScheduleExpression="rate(1 hour)", State="DISABLED"), later, ours
    )
    assert answer["ScheduleArn"].endswith(":schedule/timers/every-5")
    shown = found.get({"Name": "every-5", "GroupName": "timers"})
    assert shown["ScheduleExpression"] == "rate(1 hour)"
    assert shown["State"] == "DISABLED" and "Description" not in shown  # left out: the default
    assert (shown["CreationDate"], shown["LastModificationDate"]) == (made, later)
    assert found.next_due() is None  # disabled
    with pytest.raises(SchedulerError) as missing:
        found.update(recurring("nope"), later, ours)
    assert missing.value.code == "ResourceNotFoundException" and missing.value.status == 404


def test_get_shows_what_aws_shows() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    found.create(recurring(Description="every five minutes"), now, ours)
    assert found.get({"Name": "every-5", "GroupName": "timers"}) == {
        "Arn": "arn:aws:scheduler:us-east-1:123456789012:schedule/timers/every-5",
        "Name": "every-5",
        "GroupName": "timers",
        "Description": "every five minutes",
        "ScheduleExpression": "rate(5 minutes)",
        "ScheduleExpressionTimezone": "UTC",
        "State": "ENABLED",
        "Target": {
            "Arn": FUNCTION,
            "RoleArn": ROLE,
            "Input": '{"n": 1}',
            "RetryPolicy": {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185},
        },
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "ActionAfterCompletion": "NONE",
        "CreationDate": now,
        "LastModificationDate": now,
    }


def test_list_by_group_prefix_and_state_a_page_at_a_time() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    for name in ("wf-a-1", "wf-a-2", "wf-a-3", "wf-b-1"):
        found.create(recurring(name), now, ours)
    found.create(recurring("wf-a-off", State="DISABLED"), now, ours)
    found.create({**recurring("elsewhere"), "GroupName": "default"}, now, ours)
    found.add(  # a rule's timer is no Scheduler schedule
        Schedule(
            "rule",
            "(rules)",
            "arn",
            "rate(1 minute)",
            parse("rate(1 minute)"),
            "UTC",
            {},
            "Schedule",
            created=now,
        ),
        now,
    )
    first = found.list_schedules(
        {"GroupName": "timers", "NamePrefix": "wf-a-", "State": "ENABLED", "MaxResults": 2}
    )
    assert [s["Name"] for s in first["Schedules"]] == ["wf-a-1", "wf-a-2"]
    assert first["Schedules"][0]["Target"] == {"Arn": FUNCTION}
    second = found.list_schedules(
        {
            "GroupName": "timers",
            "NamePrefix": "wf-a-",
            "State": "ENABLED",
            "NextToken": first["NextToken"],
        }
    )
    assert [s["Name"] for s in second["Schedules"]] == ["wf-a-3"] and "NextToken" not in second
    assert len(found.list_schedules({})["Schedules"]) == 6
    for request, code in (
        ({"GroupName": "nope"}, "ResourceNotFoundException"),
        ({"NextToken": "not a token!"}, "ValidationException"),
    ):
        with pytest.raises(SchedulerError) as refused:
            found.list_schedules(request)
        assert refused.value.code == code


def test_dates_and_windows_are_checked_as_the_scheduler_checks_them() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1, 12)
    for overrides, words in (
        ({"StartDate": utc(2026, 1, 1, 11, 50)}, "cannot be earlier than 5 minutes ago"),
        ({"EndDate": utc(2026, 1, 1, 11)}, "cannot be earlier than the current time"),
        ({"StartDate": utc(2026, 1, 2), "EndDate": utc(2026, 1, 1, 13)}, "after the StartDate"),
        ({"FlexibleTimeWindow": {"Mode": "FLEXIBLE"}}, "MaximumWindowInMinutes is required"),
        ({"ScheduleExpressionTimezone": "Mars/Olympus"}, "unknown time zone"),
    ):
        with pytest.raises(SchedulerError, match=words) as refused:
            found.create(recurring(**overrides), now, ours)
        assert refused.value.code == "ValidationException"
    # A one-time schedule ignores its dates, as on AWS.
    found.create(
        recurring("once", ScheduleExpression="at(2026-01-03T00:00:00)", StartDate=utc(2020, 1, 1)),
        now,
        ours,
    )


def test_api_schedules_are_kept_across_a_restart_with_their_settings() -> None:
    found, _ = schedules()
    now = utc(2026, 1, 1)
    found.create(
        recurring(
            Description="kept",
            StartDate=utc(2026, 1, 1, 1),
            EndDate=utc(2026, 2, 1),
            FlexibleTimeWindow={"Mode": "FLEXIBLE", "MaximumWindowInMinutes": 10},
        ),
        now,
        ours,
    )
    saved = json.loads(json.dumps(found.snapshot()))  # as state.json holds it
    again, _ = schedules()
    again.restore(saved)
    assert again.get({"Name": "every-5", "GroupName": "timers"}) == found.get(
        {"Name": "every-5", "GroupName": "timers"}
    )
    assert again.next_due() == utc(2026, 1, 1, 1)


def test_schedules_saved_before_they_had_dates_are_read() -> None:
    """An entry as a state file of format 1 holds it."""
    found, _ = schedules()
    found.restore(
        [
            {
                "name": "t-1",
                "group": "timers",
                "expression": "at(2026-01-03T00:00:00)",
                "timezone": "UTC",
                "target": {"Arn": "queue-arn", "Input": "{}"},
                "created": "2026-01-01T00:00:00+00:00",
                "enabled": True,
                "delete_after": True,
                "next_at": "2026-01-03T00:00:00+00:00",
                "fired": 0,
            }
        ]
    )
    shown = found.get({"Name": "t-1", "GroupName": "timers"})
    assert shown["FlexibleTimeWindow"] == {"Mode": "OFF"} and "StartDate" not in shown
    assert found.next_due(one_time_only=True) == utc(2026, 1, 3)


def test_an_at_schedule_through_the_api_reads_its_time_zone() -> None:
    found, fired = schedules()
    now = utc(2026, 1, 1)
    found.create(
        recurring(
            "once",
            ScheduleExpression="at(2026-01-01T09:00:00)",
            ScheduleExpressionTimezone="America/New_York",
        ),
        now,
        ours,
    )
    assert found.next_due(one_time_only=True) == utc(2026, 1, 1, 14)  # what virtual time jumps to
    assert found.fire_due(utc(2026, 1, 1, 14)) == 1 and found.next_due() is None
    assert fired == [("once", utc(2026, 1, 1, 14))]
