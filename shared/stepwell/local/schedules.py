"""Schedule expressions as EventBridge and EventBridge Scheduler read them, and when they fire.

* ``rate(5 minutes)``: every 5 minutes from the moment the schedule was created (the unit is
  singular for 1: ``rate(1 minute)``; minute, hour and day are the units).
* ``cron(minutes hours day-of-month month day-of-week year)``: six fields, one of
  day-of-month and day-of-week must be ``?``; ``, - * /`` everywhere, ``L`` and ``W`` in
  day-of-month, ``L`` and ``#`` in day-of-week (1-7 = SUN-SAT), month and day names.
* ``at(yyyy-mm-ddThh:mm:ss)``: once (EventBridge Scheduler only).

Times are read in the schedule's time zone (UTC unless ``ScheduleExpressionTimezone`` says
otherwise). ``parse`` and ``next_fire`` are pure. :class:`Schedules` keeps the schedules of a
local stack (the template's ``Schedule`` and ``ScheduleV2`` events, and those created through
the EventBridge Scheduler API) and fires them on the stack's clock.
"""

from __future__ import annotations

import calendar
import json
import re
import threading
import uuid
from collections.abc import Callable, Mapping
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


# -- the schedules of a local stack -----------------------------------------------------------


class SchedulerError(Exception):
    """A Scheduler API request refused: ``code`` is the API's error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Schedule:
    """One schedule: a template event (``Schedule``/``ScheduleV2``) or a Scheduler API one."""

    name: str
    group: str
    arn: str
    expression: str
    parsed: Expression
    timezone: str
    target: dict[str, Any]
    """``Arn`` (a function or a queue) and ``Input``; template events also carry ``Function``."""
    kind: str
    """``Schedule`` (an EventBridge rule), ``ScheduleV2`` or ``api``."""
    created: datetime
    enabled: bool = True
    delete_after: bool = False
    next_at: datetime | None = None
    fired: int = 0
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def one_time(self) -> bool:
        return isinstance(self.parsed, At)


Fire = Callable[[Schedule, datetime], None]


class Schedules:
    """The stack's schedules, fired on its clock.

    A recurring schedule whose time has passed fires once, however many of its times passed
    (after a virtual-time jump over days, a ``rate(1 minute)`` rule fires once, not 2,880
    times); EventBridge would have fired each one at its time.
    """

    def __init__(self, fire: Fire, *, account: str, region: str, groups: Mapping[str, str]) -> None:
        self._fire = fire
        self._account = account
        self._region = region
        self.groups = dict(groups)
        self.groups.setdefault("default", self._arn("schedule-group/default"))
        self._by_key: dict[tuple[str, str], Schedule] = {}
        self._lock = threading.Lock()
        self.on_change: Callable[[], None] = lambda: None

    def _arn(self, resource: str) -> str:
        return f"arn:aws:scheduler:{self._region}:{self._account}:{resource}"

    def add(self, schedule: Schedule, now: datetime) -> Schedule:
        """Add a schedule and compute its first time."""
        schedule.next_at = (
            next_fire(schedule.parsed, now, start=now, timezone=schedule.timezone)
            if schedule.enabled
            else None
        )
        if schedule.one_time and schedule.next_at is None and schedule.enabled:
            schedule.next_at = now  # an at() already past fires at once
        with self._lock:
            self._by_key[(schedule.group, schedule.name)] = schedule
        self.on_change()
        return schedule

    # -- the Scheduler API -------------------------------------------------------------------
    def create(
        self, params: Mapping[str, Any], now: datetime, targets: Callable[[str], bool]
    ) -> dict[str, Any]:
        """CreateSchedule. ``targets(arn)`` says whether the stack can deliver to an ARN."""
        group = self._group(params)
        with self._lock:
            if (group, str(params.get("Name") or "")) in self._by_key:
                raise SchedulerError(
                    "ConflictException", f"Schedule {params.get('Name')} already exists.", 409
                )
        schedule = self._schedule(params, now, targets, created=now)
        self.add(schedule, now)
        return {"ScheduleArn": schedule.arn}

    def update(
        self, params: Mapping[str, Any], now: datetime, targets: Callable[[str], bool]
    ) -> dict[str, Any]:
        """UpdateSchedule: every setting replaced by the request's, as the API does."""
        self._group(params)
        known = self._find(params)
        schedule = self._schedule(params, now, targets, created=known.created)
        self.add(schedule, now)
        return {"ScheduleArn": schedule.arn}

    def list_schedules(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListSchedules: the Scheduler's schedules (not the template's EventBridge rules), by
        group, name prefix and state, 100 a page unless MaxResults says fewer."""
        group = params.get("GroupName")
        if group is not None:
            self._group(params)
        prefix = str(params.get("NamePrefix") or "")
        state = params.get("State")
        found = sorted(
            (
                s
                for s in self.all()
                if s.kind != "Schedule"
                and (group is None or s.group == group)
                and s.name.startswith(prefix)
                and (state is None or ("ENABLED" if s.enabled else "DISABLED") == state)
            ),
            key=lambda s: (s.group, s.name),
        )
        start = int(params.get("NextToken") or 0)
        size = int(params.get("MaxResults") or 100)
        page = found[start : start + size]
        answer: dict[str, Any] = {
            "Schedules": [
                {
                    "Arn": s.arn,
                    "Name": s.name,
                    "GroupName": s.group,
                    "State": "ENABLED" if s.enabled else "DISABLED",
                    "Target": {"Arn": s.target.get("Arn")},
                    "CreationDate": s.created,
                }
                for s in page
            ]
        }
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        return answer

    def _group(self, params: Mapping[str, Any]) -> str:
        group = str(params.get("GroupName") or "default")
        if group not in self.groups:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule group {group} does not exist.", 404
            )
        return group

    def _schedule(
        self,
        params: Mapping[str, Any],
        now: datetime,
        targets: Callable[[str], bool],
        *,
        created: datetime,
    ) -> Schedule:
        """The schedule a Create or Update request describes."""
        name = str(params.get("Name") or "")
        group = self._group(params)
        expression = str(params.get("ScheduleExpression") or "")
        timezone = str(params.get("ScheduleExpressionTimezone") or "UTC")
        try:
            parsed = parse(expression)
            zone(timezone)
        except ScheduleExpressionError as exc:
            raise SchedulerError("ValidationException", str(exc)) from None
        target = dict(params.get("Target") or {})
        if not targets(str(target.get("Arn", ""))):
            raise SchedulerError(
                "ValidationException",
                f"The local stack delivers schedules to its functions and queues; it has no "
                f"target {target.get('Arn')!r}",
            )
        return Schedule(
            name=name,
            group=group,
            arn=self._arn(f"schedule/{group}/{name}"),
            expression=expression,
            parsed=parsed,
            timezone=timezone,
            target=target,
            kind="api",
            created=created,
            enabled=str(params.get("State") or "ENABLED") == "ENABLED",
            delete_after=str(params.get("ActionAfterCompletion") or "NONE") == "DELETE",
        )

    def get(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetSchedule."""
        schedule = self._find(params)
        return {
            "Arn": schedule.arn,
            "Name": schedule.name,
            "GroupName": schedule.group,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "Target": schedule.target,
            "FlexibleTimeWindow": {"Mode": "OFF"},
            "ActionAfterCompletion": "DELETE" if schedule.delete_after else "NONE",
            "CreationDate": schedule.created,
        }

    def delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteSchedule."""
        schedule = self._find(params)
        with self._lock:
            self._by_key.pop((schedule.group, schedule.name), None)
        return {}

    def _find(self, params: Mapping[str, Any]) -> Schedule:
        key = (str(params.get("GroupName") or "default"), str(params.get("Name") or ""))
        with self._lock:
            found = self._by_key.get(key)
        if found is None:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule {key[1]} does not exist.", 404
            )
        return found

    # -- firing ------------------------------------------------------------------------------
    def fire_due(self, now: datetime) -> int:
        """Fire every schedule whose time has come; returns how many fired."""
        with self._lock:
            due = [s for s in self._by_key.values() if s.next_at is not None and s.next_at <= now]
            for schedule in due:
                fired_at = schedule.next_at
                assert fired_at is not None
                schedule.extra["fired_at"] = fired_at
                if schedule.one_time:
                    schedule.next_at = None
                    if schedule.delete_after:
                        self._by_key.pop((schedule.group, schedule.name), None)
                else:
                    schedule.next_at = next_fire(
                        schedule.parsed, now, start=schedule.created, timezone=schedule.timezone
                    )
                schedule.fired += 1
        for schedule in due:
            self._fire(schedule, schedule.extra["fired_at"])
        return len(due)

    def next_due(self, *, one_time_only: bool = False) -> datetime | None:
        """When the next schedule fires (only ``at()`` ones when ``one_time_only``)."""
        with self._lock:
            return min(
                (
                    s.next_at
                    for s in self._by_key.values()
                    if s.next_at is not None and (s.one_time or not one_time_only)
                ),
                default=None,
            )

    def all(self) -> list[Schedule]:
        """Every schedule (template and API)."""
        with self._lock:
            return list(self._by_key.values())

    def snapshot(self) -> list[dict[str, Any]]:
        """The schedules created through the API, to keep across a restart (the template's
        are made again from the template)."""
        return [
            {
                "name": s.name,
                "group": s.group,
                "expression": s.expression,
                "timezone": s.timezone,
                "target": s.target,
                "created": s.created.isoformat(),
                "enabled": s.enabled,
                "delete_after": s.delete_after,
                "next_at": s.next_at.isoformat() if s.next_at else None,
                "fired": s.fired,
            }
            for s in self.all()
            if s.kind == "api"
        ]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Put back the schedules of :meth:`snapshot`, each due when it was."""
        with self._lock:
            for entry in saved:
                group, name = str(entry["group"]), str(entry["name"])
                next_at = entry.get("next_at")
                self._by_key[(group, name)] = Schedule(
                    name=name,
                    group=group,
                    arn=self._arn(f"schedule/{group}/{name}"),
                    expression=str(entry["expression"]),
                    parsed=parse(str(entry["expression"])),
                    timezone=str(entry["timezone"]),
                    target=dict(entry["target"]),
                    kind="api",
                    created=datetime.fromisoformat(entry["created"]),
                    enabled=bool(entry["enabled"]),
                    delete_after=bool(entry["delete_after"]),
                    next_at=datetime.fromisoformat(next_at) if next_at else None,
                    fired=int(entry.get("fired", 0)),
                )
        self.on_change()


def target_input(schedule: Schedule, when: datetime, account: str, region: str) -> str:
    """What a schedule delivers to its target: its Input, where EventBridge Scheduler replaces
    its context attributes (``<aws.scheduler.scheduled-time>`` ...), or the scheduled event."""
    raw = schedule.target.get("Input")
    if raw is None:
        return json.dumps(scheduled_event(schedule, when, account, region))
    text = str(raw)
    if schedule.kind == "Schedule":  # an EventBridge rule's Input is sent as it is
        return text
    attributes = {
        "<aws.scheduler.schedule-arn>": schedule.arn,
        "<aws.scheduler.scheduled-time>": _utc(when),
        "<aws.scheduler.execution-id>": str(uuid.uuid4()),
        "<aws.scheduler.attempt-number>": "1",
    }
    for name, value in attributes.items():
        text = text.replace(name, value)
    return text


def _utc(when: datetime) -> str:
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


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
        "time": _utc(when),
        "region": region,
        "resources": [schedule.arn],
        "detail": {},
    }
