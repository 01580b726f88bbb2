"""rate(), cron() and at() as EventBridge reads them, and when the stack fires them."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from stepwell.local.schedules import (
    At,
    Rate,
    Schedule,
    ScheduleExpressionError,
    SchedulerError,
    Schedules,
    next_fire,
    parse,
    scheduled_event,
)

EVENTS = Path(__file__).resolve().parents[1] / "events"


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)  # type: ignore[misc]


# -- parsing ----------------------------------------------------------------------------------
def test_rates_take_singular_for_one_and_plural_for_more() -> None:
    assert parse("rate(1 minute)") == Rate(60)
    assert parse("rate(5 minutes)") == Rate(300)
    assert parse("rate(2 hours)") == Rate(7200)
    assert parse("rate(1 day)") == Rate(86400)
    for bad in ("rate(1 minutes)", "rate(5 minute)", "rate(0 minutes)", "rate(1 week)", "rate(x)"):
        with pytest.raises(ScheduleExpressionError):
            parse(bad)


@pytest.mark.parametrize(
    "bad",
    [
        "cron(0 6 * * *)",  # five fields
        "cron(0 6 * * * *)",  # neither day field is ?
        "cron(0 6 ? * ? *)",  # both are
        "cron(60 6 * * ? *)",
        "cron(0 24 * * ? *)",
        "cron(0 6 32 * ? *)",
        "cron(0 6 ? * 8 *)",
        "cron(0 6 ? FOO * *)",
        "every day",
        "at(2026-13-01T00:00:00)",
    ],
)
def test_bad_expressions_are_refused(bad: str) -> None:
    with pytest.raises(ScheduleExpressionError):
        parse(bad)


def test_at_is_a_local_wall_time() -> None:
    assert parse("at(2026-03-01T09:30:00)") == At(datetime(2026, 3, 1, 9, 30))


# -- next times -------------------------------------------------------------------------------
def test_a_rate_counts_from_its_start() -> None:
    start = utc(2026, 1, 1, 0, 0, 30)
    assert next_fire("rate(1 minute)", start, start=start) == utc(2026, 1, 1, 0, 1, 30)
    assert next_fire("rate(1 minute)", utc(2026, 1, 1, 0, 5, 0), start=start) == utc(
        2026, 1, 1, 0, 5, 30
    )
    assert next_fire("rate(1 minute)", utc(2026, 1, 1, 0, 5, 30), start=start) == utc(
        2026, 1, 1, 0, 6, 30
    )


@pytest.mark.parametrize(
    ("expression", "after", "expected"),
    [
        ("cron(0 6 * * ? *)", utc(2026, 1, 1, 5, 59), utc(2026, 1, 1, 6, 0)),
        ("cron(0 6 * * ? *)", utc(2026, 1, 1, 6, 0), utc(2026, 1, 2, 6, 0)),
        ("cron(0/15 * * * ? *)", utc(2026, 1, 1, 10, 7), utc(2026, 1, 1, 10, 15)),
        ("cron(5,35 14 * * ? *)", utc(2026, 1, 1, 14, 6), utc(2026, 1, 1, 14, 35)),
        # 2026-01-03 is a Saturday: weekdays skip to Monday the 5th.
        ("cron(0 9 ? * MON-FRI *)", utc(2026, 1, 2, 10, 0), utc(2026, 1, 5, 9, 0)),
        ("cron(0 9 ? * 2-6 *)", utc(2026, 1, 2, 10, 0), utc(2026, 1, 5, 9, 0)),
        ("cron(0 12 L * ? *)", utc(2026, 2, 3, 0, 0), utc(2026, 2, 28, 12, 0)),
        ("cron(0 10 ? * 6#3 *)", utc(2026, 1, 1, 0, 0), utc(2026, 1, 16, 10, 0)),  # 3rd Friday
        ("cron(15 10 ? * 6L 2026)", utc(2026, 1, 1, 0, 0), utc(2026, 1, 30, 10, 15)),  # last Fri
        ("cron(0 8 1W * ? *)", utc(2026, 2, 1, 0, 0), utc(2026, 2, 2, 8, 0)),  # Sun 1st -> Mon
        ("cron(0 8 15W * ? *)", utc(2026, 3, 1, 0, 0), utc(2026, 3, 16, 8, 0)),  # Sun -> Mon
        ("cron(0 0 1 JAN ? *)", utc(2026, 1, 1, 0, 0), utc(2027, 1, 1, 0, 0)),
        ("cron(0 0 1 1 ? 2025)", utc(2026, 1, 1, 0, 0), None),
    ],
)
def test_cron_finds_the_next_time(
    expression: str, after: datetime, expected: datetime | None
) -> None:
    assert next_fire(expression, after) == expected


def test_cron_reads_its_time_zone() -> None:
    # 06:00 in New York is 11:00 UTC in winter and 10:00 UTC in summer.
    assert next_fire("cron(0 6 * * ? *)", utc(2026, 1, 1), timezone="America/New_York") == utc(
        2026, 1, 1, 11, 0
    )
    assert next_fire("cron(0 6 * * ? *)", utc(2026, 7, 1), timezone="America/New_York") == utc(
        2026, 7, 1, 10, 0
    )
    with pytest.raises(ScheduleExpressionError, match="time zone"):
        next_fire("cron(0 6 * * ? *)", utc(2026, 1, 1), timezone="Mars/Olympus")


def test_at_fires_once() -> None:
    assert next_fire("at(2026-01-02T00:00:00)", utc(2026, 1, 1)) == utc(2026, 1, 2)
    assert next_fire("at(2026-01-02T00:00:00)", utc(2026, 1, 3)) is None


# -- the stack's schedules --------------------------------------------------------------------
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
