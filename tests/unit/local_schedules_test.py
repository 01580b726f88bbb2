"""rate(), cron() and at() as EventBridge reads them, and when they fall."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from stepwell.local.schedules import At, Rate, ScheduleExpressionError, next_fire, parse

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
