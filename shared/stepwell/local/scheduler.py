"""The schedules of a local stack, fired on its clock, and EventBridge Scheduler's API over them
(CreateSchedule, UpdateSchedule, GetSchedule, ListSchedules, DeleteSchedule) with the API's
shapes and errors.

Over 500 lines: the Scheduler API's operations share its validation and its errors.

Three kinds of schedule live here: the timer of an EventBridge rule with a schedule expression
(``Schedule``: the template's ``Schedule`` events and PutRule's; it fires the rule), the
template's ``ScheduleV2`` events, and the schedules made through the API (``api``). When each
first fires, as AWS does it:

* a rule's ``rate()`` one period after the rule was made;
* a Scheduler ``rate()`` at once, or at its ``StartDate``, then every period from there;
* ``cron()`` at its next time on or after the ``StartDate``; ``at()`` at its time (at once when
  that has passed).

A recurring schedule stops after its ``EndDate``. A ``FLEXIBLE`` time window fires at the start
of the window. When a Scheduler schedule fires, the context attributes in its target's
``Input`` (``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>``,
``<aws.scheduler.attempt-number>``, ``<aws.scheduler.schedule-arn>``) are replaced by their
values (:func:`~stepwell.local.schedules.target_input`).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.utils import parse_to_aware_datetime

from stepwell.local.errors import TemplateError
from stepwell.local.intercept import Operation, ServiceError
from stepwell.local.paging import BadToken, page
from stepwell.local.rules import DEFAULT_BUS, Rule
from stepwell.local.schedules import (
    At,
    Schedule,
    ScheduleExpressionError,
    parse,
    zone,
)
from stepwell.local.template import (
    ACCOUNT,
    REGION,
    FunctionSpec,
    Physical,
    ScheduleSource,
    Template,
)

RULES = "(rules)"
"""The group of EventBridge rules' timers (no Scheduler group can have that name)."""
START_GRACE = timedelta(minutes=5)
"""How far in the past a recurring schedule's StartDate may be."""
DEFAULT_RETRY = {"MaximumEventAgeInSeconds": 86400, "MaximumRetryAttempts": 185}
"""The retry policy a target gets when it names none."""


class SchedulerError(ServiceError):
    """A Scheduler API request refused: ``code`` is the API's error code, ``status`` its HTTP
    status."""


Fire = Callable[[Schedule, datetime], None]
ScheduleFilter = Callable[[FunctionSpec, ScheduleSource], bool]
"""Whether the stack runs a template's schedule event (``LocalStack(schedules=)``)."""


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
        """Add (or replace) a schedule and compute its first time."""
        schedule.next_at = schedule.first(now)
        with self._lock:
            self._by_key[(schedule.group, schedule.name)] = schedule
        self.on_change()
        return schedule

    def remove(self, group: str, name: str) -> None:
        """Forget a schedule (nothing if there is none)."""
        with self._lock:
            self._by_key.pop((group, name), None)
        self.on_change()

    # -- the Scheduler API -------------------------------------------------------------------
    def create(
        self, params: Mapping[str, Any], now: datetime, targets: Callable[[str], bool]
    ) -> dict[str, Any]:
        """CreateSchedule. ``targets(arn)`` says whether the stack can deliver to an ARN."""
        return self._put(self._schedule(params, now, targets), now, None)

    def update(
        self, params: Mapping[str, Any], now: datetime, targets: Callable[[str], bool]
    ) -> dict[str, Any]:
        """UpdateSchedule: every setting replaced by the request's (those it leaves out take
        their defaults, as on AWS)."""
        before = self._find(params)
        schedule = self._schedule(params, now, targets)
        schedule.created, schedule.modified, schedule.fired = before.created, now, before.fired
        return self._put(schedule, now, before)

    def _put(self, schedule: Schedule, now: datetime, before: Schedule | None) -> dict[str, Any]:
        """Keep a new schedule (``before`` None) or one that replaces ``before``."""
        key = (schedule.group, schedule.name)
        with self._lock:
            current = self._by_key.get(key)
            if before is None and current is not None:
                raise SchedulerError("ConflictException", f"Schedule {key[1]} already exists.", 409)
            if before is not None and current is not before:  # deleted meanwhile
                raise SchedulerError(
                    "ResourceNotFoundException", f"Schedule {key[1]} does not exist.", 404
                )
            schedule.next_at = schedule.first(now)
            self._by_key[key] = schedule
        self.on_change()
        return {"ScheduleArn": schedule.arn}

    def get(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """GetSchedule."""
        schedule = self._find(params)
        shown: dict[str, Any] = {
            "Arn": schedule.arn,
            "Name": schedule.name,
            "GroupName": schedule.group,
            "Description": schedule.description,
            "ScheduleExpression": schedule.expression,
            "ScheduleExpressionTimezone": schedule.timezone,
            "StartDate": schedule.start,
            "EndDate": schedule.end,
            "State": "ENABLED" if schedule.enabled else "DISABLED",
            "Target": {"RetryPolicy": DEFAULT_RETRY, **schedule.target},
            "FlexibleTimeWindow": schedule.window,
            "ActionAfterCompletion": "DELETE" if schedule.delete_after else "NONE",
            "KmsKeyArn": schedule.kms_key,
            "CreationDate": schedule.created,
            "LastModificationDate": schedule.modified or schedule.created,
        }
        return {k: v for k, v in shown.items() if v is not None}

    def list_schedules(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListSchedules: by group, name prefix and state, a page at a time."""
        group = params.get("GroupName")
        if group is not None and group not in self.groups:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule group {group} does not exist.", 404
            )
        prefix = str(params.get("NamePrefix") or "")
        state = params.get("State")
        found = [
            s
            for s in self.all()
            if s.kind != "Schedule"
            and (group is None or s.group == group)
            and s.name.startswith(prefix)
            and (state is None or (state == "ENABLED") == s.enabled)
        ]
        try:
            chosen, token = page(
                found,
                lambda s: f"{s.group}/{s.name}",
                params.get("NextToken"),
                int(params.get("MaxResults") or 100),
            )
        except BadToken as exc:
            raise SchedulerError("ValidationException", str(exc)) from None
        summaries = [
            {
                "Arn": s.arn,
                "Name": s.name,
                "GroupName": s.group,
                "State": "ENABLED" if s.enabled else "DISABLED",
                "CreationDate": s.created,
                "LastModificationDate": s.modified or s.created,
                "Target": {"Arn": s.target.get("Arn")},
            }
            for s in chosen
        ]
        return {"Schedules": summaries, **({"NextToken": token} if token else {})}

    def delete(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteSchedule."""
        schedule = self._find(params)
        self.remove(schedule.group, schedule.name)
        return {}

    def _find(self, params: Mapping[str, Any]) -> Schedule:
        key = (str(params.get("GroupName") or "default"), str(params.get("Name") or ""))
        if key[0] not in self.groups:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule group {key[0]} does not exist.", 404
            )
        with self._lock:
            found = self._by_key.get(key)
        if found is None:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule {key[1]} does not exist.", 404
            )
        return found

    def _schedule(
        self, params: Mapping[str, Any], now: datetime, targets: Callable[[str], bool]
    ) -> Schedule:
        """The schedule a CreateSchedule or UpdateSchedule request describes, checked as
        EventBridge Scheduler checks it."""
        name = str(params.get("Name") or "")
        group = str(params.get("GroupName") or "default")
        if group not in self.groups:
            raise SchedulerError(
                "ResourceNotFoundException", f"Schedule group {group} does not exist.", 404
            )
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
        start, end = _date(params.get("StartDate")), _date(params.get("EndDate"))
        if not isinstance(parsed, At):
            _check_dates(start, end, now)
        return Schedule(
            name=name,
            group=group,
            arn=self._arn(f"schedule/{group}/{name}"),
            expression=expression,
            parsed=parsed,
            timezone=timezone,
            target=target,
            kind="api",
            created=now,
            enabled=str(params.get("State") or "ENABLED") == "ENABLED",
            delete_after=str(params.get("ActionAfterCompletion") or "NONE") == "DELETE",
            description=params.get("Description"),
            start=start,
            end=end,
            window=_window(params.get("FlexibleTimeWindow")),
            kms_key=params.get("KmsKeyArn"),
        )

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
                    schedule.next_at = schedule.after(now)
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
        """Every schedule (rules' timers, the template's and the API's)."""
        with self._lock:
            return list(self._by_key.values())

    # -- across restarts ---------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """The schedules created through the API, to keep across a restart (the template's
        are made again from it, and rules' timers with their rules)."""
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
                "next_at": _iso(s.next_at),
                "fired": s.fired,
                "description": s.description,
                "start": _iso(s.start),
                "end": _iso(s.end),
                "window": s.window,
                "kms_key": s.kms_key,
                "modified": _iso(s.modified),
            }
            for s in self.all()
            if s.kind == "api"
        ]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Put back the schedules of :meth:`snapshot`, each due when it was (entries saved
        before schedules had dates, descriptions and windows take the defaults)."""
        with self._lock:
            for entry in saved:
                group, name = str(entry["group"]), str(entry["name"])
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
                    next_at=_time(entry.get("next_at")),
                    fired=int(entry.get("fired", 0)),
                    description=entry.get("description"),
                    start=_time(entry.get("start")),
                    end=_time(entry.get("end")),
                    window=dict(entry.get("window") or {"Mode": "OFF"}),
                    kms_key=entry.get("kms_key"),
                    modified=_time(entry.get("modified")),
                )
        self.on_change()


def build(
    template: Template,
    physical: Mapping[str, Physical],
    fire: Fire,
    on_change: Callable[[], None],
    sources: list[tuple[FunctionSpec, ScheduleSource]],
    now: datetime,
) -> Schedules:
    """The schedule groups, and the template's ``ScheduleV2`` events as schedules."""
    groups = {
        physical[k].ref: physical[k].attrs["Arn"]
        for k in template.of_type("AWS::Scheduler::ScheduleGroup")
        if k in physical
    }
    schedules = Schedules(fire, account=ACCOUNT, region=REGION, groups=groups)
    schedules.on_change = on_change
    for spec, event in sources:
        schedules.add(
            Schedule(
                name=event.rule_name,
                group="default",
                arn=f"arn:aws:scheduler:{REGION}:{ACCOUNT}:schedule/default/{event.rule_name}",
                expression=event.expression,
                parsed=parse(event.expression),
                timezone=event.timezone,
                target={"Arn": spec.arn, "Input": event.input},
                kind=event.kind,
                created=now,
                enabled=event.enabled,
            ),
            now,
        )
    return schedules


def template_schedules(
    functions: list[FunctionSpec], kind: str, runs: ScheduleFilter
) -> tuple[list[tuple[FunctionSpec, ScheduleSource]], list[str]]:
    """The template's schedule events of ``kind`` that the stack runs (those ``runs`` accepts),
    their expressions checked; and a note for each of the others, which are off."""
    found: list[tuple[FunctionSpec, ScheduleSource]] = []
    off: list[str] = []
    for spec in functions:
        for event in spec.events:
            if not isinstance(event, ScheduleSource) or event.kind != kind:
                continue
            try:
                parse(event.expression)
            except ValueError as exc:
                raise TemplateError(
                    f"function {spec.logical_id} event {event.name}: {exc}"
                ) from None
            if not runs(spec, event):
                off.append(f"schedule {event.rule_name} ({event.expression}) is off")
                continue
            found.append((spec, event))
    return found, off


def time_rule(schedules: Schedules, rule: Rule, gone: bool, now: Callable[[], datetime]) -> None:
    """A rule with a schedule expression has a timer of its own, made, changed and removed
    with the rule."""
    if rule.bus != DEFAULT_BUS:
        return  # only the default bus's rules have schedules
    if gone or rule.schedule is None:
        schedules.remove(RULES, rule.name)
        return
    at = now()
    schedules.add(
        Schedule(
            name=rule.name,
            group=RULES,
            arn=rule.arn,
            expression=rule.schedule,
            parsed=parse(rule.schedule),
            timezone="UTC",
            target={},
            kind="Schedule",
            created=rule.created or at,
            enabled=rule.enabled,
        ),
        at,
    )


def operations(
    schedules: Schedules, now: Callable[[], datetime], targets: Callable[[str], bool]
) -> dict[str, Operation]:
    """EventBridge Scheduler's schedule API, answered by the stack's schedules (a
    SchedulerError is the API's error answer)."""
    return {
        "scheduler.CreateSchedule": lambda p: schedules.create(p, now(), targets),
        "scheduler.UpdateSchedule": lambda p: schedules.update(p, now(), targets),
        "scheduler.GetSchedule": schedules.get,
        "scheduler.ListSchedules": schedules.list_schedules,
        "scheduler.DeleteSchedule": schedules.delete,
    }


def _date(value: Any) -> datetime | None:
    """A StartDate or EndDate as boto3 takes it (a datetime, ISO 8601 text, epoch seconds)."""
    if value is None:
        return None
    try:
        when: datetime = parse_to_aware_datetime(value)
    except (ValueError, TypeError):
        raise SchedulerError("ValidationException", f"{value!r} is not a date") from None
    return when.astimezone(UTC)


def _check_dates(start: datetime | None, end: datetime | None, now: datetime) -> None:
    if start is not None and start < now - START_GRACE:
        raise SchedulerError(
            "ValidationException", "The StartDate you specify cannot be earlier than 5 minutes ago."
        )
    if end is not None and end <= now:
        raise SchedulerError(
            "ValidationException",
            "The EndDate you specify cannot be earlier than the current time.",
        )
    if start is not None and end is not None and end <= start:
        raise SchedulerError(
            "ValidationException", "The EndDate you specify must be after the StartDate."
        )


def _window(value: Any) -> dict[str, Any]:
    window = dict(value or {"Mode": "OFF"})
    mode, minutes = window.get("Mode"), window.get("MaximumWindowInMinutes")
    if mode == "FLEXIBLE" and minutes is None:
        raise SchedulerError(
            "ValidationException",
            "FlexibleTimeWindow: MaximumWindowInMinutes is required when Mode is FLEXIBLE.",
        )
    if mode == "OFF" and minutes is not None:
        raise SchedulerError(
            "ValidationException",
            "FlexibleTimeWindow: MaximumWindowInMinutes is only for Mode FLEXIBLE.",
        )
    return window


def _iso(when: datetime | None) -> str | None:
    return when.isoformat() if when is not None else None


def _time(text: str | None) -> datetime | None:
    return datetime.fromisoformat(text) if text else None
