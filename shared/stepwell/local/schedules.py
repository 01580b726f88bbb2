"""Schedule expressions as EventBridge and EventBridge Scheduler read them, and when they fire.

* ``rate(5 minutes)``: every 5 minutes from the schedule's start (the unit is singular for 1:
  ``rate(1 minute)``; minute, hour and day are the units).
* ``cron(minutes hours day-of-month month day-of-week year)``: six fields, one of
  day-of-month and day-of-week must be ``?``; ``, - * /`` everywhere, ``L`` and ``W`` in
  day-of-month, ``L`` and ``#`` in day-of-week (1-7 = SUN-SAT), month and day names.
* ``at(yyyy-mm-ddThh:mm:ss)``: once (EventBridge Scheduler only).

Times are read in the schedule's time zone (UTC unless ``ScheduleExpressionTimezone`` says
otherwise). A :class:`Schedule` is one schedule: its expression, when it fires next and what it
sends then (:func:`target_input`, :func:`scheduled_event`). All of it is pure;
:mod:`stepwell.local.scheduler` keeps the schedules of a local stack and fires them on its clock.
"""

from __future__ import annotations

import calendar
import re
import uuid
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_RATE = re.compile(r"rate\(\s*(\d+)\s+(minute|minutes|hour|hours|day|days)\s*\)")
_CRON = re.compile(r"cron\((.*)\)")
_AT = re.compile(r"at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)")
_MONTHS = {m.upper(): i for i, m in enumerate(calendar.month_abbr) if m}
_DAYS = {"SUN": 1, "MON": 2, "TUE": 3, "WED": 4, "THU": 5, "FRI": 6, "SAT": 7}
_UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
SEARCH_YEARS = 5
"""How far ahead a cron expression is searched for its next time before it counts as never."""


class ScheduleExpressionError(ValueError):
    """Not a schedule expression EventBridge would accept."""


@dataclass(frozen=True)
class Rate:
    """``rate(value unit)``: a fixed interval from the schedule's start."""

    seconds: int


@dataclass(frozen=True)
class Cron:
    """``cron(...)``: the sets of values each field allows (day rules kept as text)."""

    minutes: frozenset[int]
    hours: frozenset[int]
    day_of_month: str
    months: frozenset[int]
    day_of_week: str
    years: frozenset[int] | None
    """None: every year."""


@dataclass(frozen=True)
class At:
    """``at(...)``: one local wall-clock time."""

    when: datetime
    """Naive: read in the schedule's time zone."""


Expression = Rate | Cron | At


def parse(expression: str) -> Expression:
    """Parse a rate, cron or at expression; raise ScheduleExpressionError saying what is wrong."""
    text = expression.strip()
    if text.startswith("rate("):
        match = _RATE.fullmatch(text)
        if not match:
            raise ScheduleExpressionError(
                f"{expression!r}: a rate is rate(VALUE UNIT) with UNIT minute(s), hour(s) or day(s)"
            )
        value, unit = int(match.group(1)), match.group(2)
        if value < 1:
            raise ScheduleExpressionError(f"{expression!r}: the rate must be at least 1")
        if (value == 1) != (not unit.endswith("s")):
            raise ScheduleExpressionError(
                f"{expression!r}: write rate(1 {unit.rstrip('s')}) for one and "
                f"rate(N {unit.rstrip('s')}s) for more"
            )
        return Rate(value * _UNIT_SECONDS[unit.rstrip("s")])
    if text.startswith("cron("):
        match = _CRON.fullmatch(text)
        if not match:
            raise ScheduleExpressionError(f"{expression!r}: a cron expression is cron(six fields)")
        return _cron(expression, match.group(1).split())
    if text.startswith("at("):
        match = _AT.fullmatch(text)
        if not match:
            raise ScheduleExpressionError(f"{expression!r}: write at(yyyy-mm-ddThh:mm:ss)")
        try:
            return At(datetime.fromisoformat(match.group(1)))
        except ValueError as exc:
            raise ScheduleExpressionError(f"{expression!r}: {exc}") from None
    raise ScheduleExpressionError(f"{expression!r}: not a rate(), cron() or at() expression")


def zone(name: str | None) -> ZoneInfo:
    """The time zone a schedule is read in."""
    try:
        return ZoneInfo(name or "UTC")
    except (ZoneInfoNotFoundError, ValueError):
        raise ScheduleExpressionError(f"unknown time zone {name!r}") from None


def next_fire(
    expression: Expression | str,
    after: datetime,
    *,
    start: datetime | None = None,
    timezone: str | None = "UTC",
) -> datetime | None:
    """The first time strictly after ``after`` (aware) at which the schedule fires, in UTC.

    ``start`` is when a rate schedule was created (its times are start + k * rate); None for an
    ``at()`` already past or a cron expression with no time left within :data:`SEARCH_YEARS`.
    """
    parsed = parse(expression) if isinstance(expression, str) else expression
    after = after.astimezone(UTC)
    if isinstance(parsed, Rate):
        origin = (start or after).astimezone(UTC)
        if after < origin:
            return origin + timedelta(seconds=parsed.seconds)
        periods = int((after - origin).total_seconds() // parsed.seconds) + 1
        return origin + timedelta(seconds=periods * parsed.seconds)
    tz = zone(timezone)
    if isinstance(parsed, At):
        when = parsed.when.replace(tzinfo=tz).astimezone(UTC)
        return when if when > after else None
    return _next_cron(parsed, after, tz)


# -- cron -------------------------------------------------------------------------------------


def _cron(expression: str, fields: list[str]) -> Cron:
    if len(fields) != 6:
        raise ScheduleExpressionError(
            f"{expression!r}: cron takes six fields (minutes hours day-of-month month "
            f"day-of-week year), not {len(fields)}"
        )
    minutes, hours, dom, month, dow, year = fields
    if (dom == "?") == (dow == "?"):
        raise ScheduleExpressionError(
            f"{expression!r}: one of day-of-month and day-of-week must be '?', and only one"
        )
    _check_dom(expression, dom)
    _check_dow(expression, dow)
    return Cron(
        minutes=_values(expression, "minutes", minutes, 0, 59),
        hours=_values(expression, "hours", hours, 0, 23),
        day_of_month=dom.upper(),
        months=_values(expression, "month", month, 1, 12, _MONTHS),
        day_of_week=dow.upper(),
        years=None if year == "*" else _values(expression, "year", year, 1970, 2199),
    )


def _values(
    expression: str,
    name: str,
    field: str,
    low: int,
    high: int,
    names: dict[str, int] | None = None,
) -> frozenset[int]:
    """The values a plain field (``*``, ``a-b``, ``a,b``, ``*/n``, ``a/n``, ``a-b/n``) allows."""
    found: set[int] = set()
    for part in field.upper().split(","):
        base, _, step_text = part.partition("/")
        try:
            step = int(step_text) if step_text else 1
            if base in ("*", "?"):
                first, last = low, high
            elif "-" in base:
                a, b = base.split("-", 1)
                first, last = _number(a, names), _number(b, names)
            else:
                first = _number(base, names)
                last = high if step_text else first
        except ValueError:
            raise ScheduleExpressionError(f"{expression!r}: bad {name} field {field!r}") from None
        if step < 1 or not (low <= first <= high and low <= last <= high) or first > last:
            raise ScheduleExpressionError(
                f"{expression!r}: {name} field {field!r} is outside {low}-{high}"
            )
        found.update(range(first, last + 1, step))
    return frozenset(found)


def _number(text: str, names: dict[str, int] | None) -> int:
    if names and text in names:
        return names[text]
    return int(text)


def _check_dom(expression: str, field: str) -> None:
    text = field.upper()
    if text in ("?", "*", "L", "LW") or re.fullmatch(r"\d{1,2}W", text):
        return
    _values(expression, "day-of-month", text, 1, 31)


def _check_dow(expression: str, field: str) -> None:
    text = field.upper()
    if text in ("?", "*", "L"):
        return
    if re.fullmatch(r"([1-7]|[A-Z]{3})L", text) or re.fullmatch(r"([1-7]|[A-Z]{3})#[1-5]", text):
        _number(re.split(r"[L#]", text)[0], _DAYS)
        return
    _values(expression, "day-of-week", text, 1, 7, _DAYS)


def _aws_weekday(day: date) -> int:
    """1 = Sunday ... 7 = Saturday."""
    return (day.weekday() + 1) % 7 + 1


def _day_matches(cron: Cron, day: date) -> bool:
    if day.month not in cron.months or (cron.years is not None and day.year not in cron.years):
        return False
    last = calendar.monthrange(day.year, day.month)[1]
    dom, dow = cron.day_of_month, cron.day_of_week
    if dom != "?":
        if dom == "*":
            return True
        if dom == "L":
            return day.day == last
        if dom.endswith("W"):
            target = last if dom == "LW" else min(int(dom[:-1]), last)
            return day.day == _nearest_weekday(day.year, day.month, target, last)
        return day.day in _values("", "day-of-month", dom, 1, 31)
    if dow == "*":
        return True
    weekday = _aws_weekday(day)
    if dow == "L":
        return weekday == 7
    if dow.endswith("L"):
        return weekday == _number(dow[:-1], _DAYS) and day.day + 7 > last
    if "#" in dow:
        wanted, nth = dow.split("#")
        return weekday == _number(wanted, _DAYS) and (day.day - 1) // 7 + 1 == int(nth)
    return weekday in _values("", "day-of-week", dow, 1, 7, _DAYS)


def _nearest_weekday(year: int, month: int, target: int, last: int) -> int:
    """The weekday (Mon-Fri) nearest ``target`` within the month, as cron's ``W`` means."""
    weekday = date(year, month, target).weekday()
    if weekday < 5:
        return target
    if weekday == 5:  # Saturday: Friday before, or Monday after when the 1st
        return target - 1 if target > 1 else target + 2
    return target + 1 if target < last else target - 2  # Sunday


def _next_cron(cron: Cron, after: datetime, tz: ZoneInfo) -> datetime | None:
    local = after.astimezone(tz).replace(tzinfo=None, second=0, microsecond=0)
    earliest = local + timedelta(minutes=1)
    times = sorted((h, m) for h in cron.hours for m in cron.minutes)
    day = earliest.date()
    for _ in range(366 * SEARCH_YEARS):
        if _day_matches(cron, day):
            for hour, minute in times:
                candidate = datetime(day.year, day.month, day.day, hour, minute)
                if candidate >= earliest:
                    fired = candidate.replace(tzinfo=tz).astimezone(UTC)
                    if fired > after:
                        return fired
        day += timedelta(days=1)
    return None


# -- a schedule, when it fires and what it sends ---------------------------------------------

_TICK = timedelta(microseconds=1)


@dataclass
class Schedule:
    """One schedule: a rule's timer, a template ``ScheduleV2`` event or a Scheduler API one."""

    name: str
    group: str
    arn: str
    expression: str
    parsed: Expression
    timezone: str
    target: dict[str, Any]
    """``Arn`` (a function or a queue) and ``Input`` (a rule's timer has none: its rule's
    targets are what it fires)."""
    kind: str
    """``Schedule`` (an EventBridge rule's), ``ScheduleV2`` or ``api``."""
    created: datetime
    enabled: bool = True
    delete_after: bool = False
    next_at: datetime | None = None
    fired: int = 0
    description: str | None = None
    start: datetime | None = None
    end: datetime | None = None
    window: dict[str, Any] = field(default_factory=lambda: {"Mode": "OFF"})
    kms_key: str | None = None
    modified: datetime | None = None
    """When UpdateSchedule last changed it (None: never)."""
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def one_time(self) -> bool:
        return isinstance(self.parsed, At)

    def after(self, moment: datetime) -> datetime | None:
        """The first time strictly after ``moment`` at which it fires (None: never again)."""
        parsed = self.parsed
        if self.one_time:
            return next_fire(parsed, moment, timezone=self.timezone)
        if isinstance(parsed, Rate) and self.kind != "Schedule":
            origin = self.start or self.modified or self.created
            when = origin if moment < origin else next_fire(parsed, moment, start=origin)
        else:
            if self.start is not None:
                moment = max(moment, self.start - _TICK)
            when = next_fire(parsed, moment, start=self.created, timezone=self.timezone)
        return None if when is None or (self.end is not None and when > self.end) else when

    def first(self, now: datetime) -> datetime | None:
        """When it fires first, made or changed ``now``."""
        if not self.enabled:
            return None
        if self.one_time:
            return self.after(now) or now  # an at() already past fires at once
        if isinstance(self.parsed, Rate) and self.kind != "Schedule":
            return self.after(now - _TICK)  # a Scheduler rate starts at once
        return self.after(now)


def target_input(schedule: Schedule, when: datetime) -> str | None:
    """The target's Input as the schedule delivers it at ``when``: EventBridge Scheduler
    replaces its context attributes (a rule's timer has no Input: its targets make theirs)."""
    raw = schedule.target.get("Input")
    if raw is None or schedule.kind == "Schedule":
        return None if raw is None else str(raw)
    attributes = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "<aws.scheduler.execution-id>": uuid.uuid4().hex[:16],
        "<aws.scheduler.attempt-number>": "1",
    }
    text = str(raw)
    for name, value in attributes.items():
        text = text.replace(name, value)
    return text


def scheduled_event(
    schedule: Schedule, when: datetime, account: str, region: str
) -> dict[str, Any]:
    """The event a schedule without Input delivers (EventBridge's ``Scheduled Event``)."""
    source = "aws.events" if schedule.kind == "Schedule" else "aws.scheduler"
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": "Scheduled Event",
        "source": source,
        "account": account,
        "time": when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [schedule.arn],
        "detail": {},
    }
