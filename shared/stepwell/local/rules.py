"""EventBridge rules of the local stack: the template's, and those made while it runs through
EventBridge's API (PutRule, PutTargets, RemoveTargets, DeleteRule, DescribeRule, ListRules,
ListTargetsByRule, EnableRule, DisableRule), with the API's shapes and errors.

A rule is an event pattern on a bus, a schedule expression (on the default bus only), or both,
and up to five targets, each making its input from the event in its own way
(:mod:`stepwell.local.targets`). :class:`~stepwell.local.events.EventBuses` matches every event
against its bus's rules; the stack fires scheduled rules on its clock. Rules made through the
API are kept across restarts (:meth:`Rules.snapshot`); the template's are made again from the
template.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from stepwell.local.intercept import ServiceError
from stepwell.local.paging import BadToken, page
from stepwell.local.schedules import At, ScheduleExpressionError, parse
from stepwell.local.targets import Target, json_path
from stepwell.local.template import FunctionSpec, RuleSource, ScheduleSource
from stepwell.patterns import InvalidPattern, check

TARGETS_PER_RULE = 5
"""EventBridge's quota of targets on one rule."""
DEFAULT_BUS = "default"


class RuleError(ServiceError):
    """An EventBridge API request refused: ``code`` is the API's error code (HTTP 400, as
    EventBridge answers every error)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(code, message, 400)


@dataclass
class Rule:
    """One rule: its pattern and/or schedule, its state and its targets."""

    name: str
    bus: str
    arn: str
    pattern: dict[str, Any] | None = None
    pattern_text: str | None = None
    """The pattern as PutRule gave it (DescribeRule shows it back unchanged)."""
    schedule: str | None = None
    state: str = "ENABLED"
    description: str | None = None
    role_arn: str | None = None
    targets: list[Target] = field(default_factory=list)
    created: datetime | None = None
    """When its schedule was set (a rate counts from it)."""
    from_template: bool = False

    @property
    def enabled(self) -> bool:
        """ENABLED (or ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS)."""
        return self.state != "DISABLED"

    def describe(self) -> dict[str, Any]:
        """As DescribeRule (and each entry of ListRules) shows it."""
        shown: dict[str, Any] = {
            "Name": self.name,
            "Arn": self.arn,
            "EventPattern": self.pattern_text,
            "ScheduleExpression": self.schedule,
            "State": self.state,
            "Description": self.description,
            "RoleArn": self.role_arn,
            "EventBusName": self.bus,
        }
        return {k: v for k, v in shown.items() if v is not None}


def bus_name(name_or_arn: str | None) -> str:
    """The bus a request names (by name or ARN; the default bus when none)."""
    if not name_or_arn:
        return DEFAULT_BUS
    return name_or_arn.rsplit("/", 1)[-1] if name_or_arn.startswith("arn:") else name_or_arn


class Rules:
    """The rules of the stack's buses, by bus and name, and EventBridge's rule API over them."""

    def __init__(
        self,
        buses: Mapping[str, str],
        *,
        account: str,
        region: str,
        delivers_to: Callable[[str], bool] = lambda _arn: True,
    ) -> None:
        self.buses = dict(buses)
        """bus name -> ARN (``default`` always exists)."""
        self.buses.setdefault(
            DEFAULT_BUS, f"arn:aws:events:{region}:{account}:event-bus/{DEFAULT_BUS}"
        )
        self.account = account
        self.region = region
        self._delivers_to = delivers_to
        self._by_bus: dict[str, dict[str, Rule]] = {name: {} for name in self.buses}
        self._lock = threading.Lock()
        self.on_change: Callable[[Rule, bool], None] = lambda _rule, _gone: None
        """Called with a rule after PutRule, EnableRule, DisableRule or a restore (``False``)
        and after DeleteRule (``True``): the stack keeps scheduled rules' timers with it."""

    def arn(self, bus: str, name: str) -> str:
        """A rule's ARN (the default bus's rules have no bus in theirs)."""
        where = name if bus == DEFAULT_BUS else f"{bus}/{name}"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{where}"

    def add(self, rule: Rule) -> None:
        """Add a rule of the template (checked already)."""
        with self._lock:
            self._by_bus.setdefault(rule.bus, {})[rule.name] = rule
        self.on_change(rule, False)

    def matching(self, bus: str) -> list[Rule]:
        """The enabled rules with an event pattern on ``bus``."""
        with self._lock:
            found = list(self._by_bus.get(bus, {}).values())
        return [r for r in found if r.enabled and r.pattern is not None]

    def find(self, bus: str, name: str) -> Rule | None:
        """A rule by bus and name."""
        with self._lock:
            return self._by_bus.get(bus, {}).get(name)

    def all(self) -> list[Rule]:
        """Every rule, of every bus."""
        with self._lock:
            return [rule for rules in self._by_bus.values() for rule in rules.values()]

    # -- the API -----------------------------------------------------------------------------
    def put_rule(self, params: Mapping[str, Any], now: datetime) -> dict[str, Any]:
        """PutRule: create the rule, or change it (its targets stay)."""
        name = str(params["Name"])
        bus = self._bus(params.get("EventBusName"))
        text = params.get("EventPattern")
        schedule = params.get("ScheduleExpression")
        if not text and not schedule:
            raise RuleError(
                "ValidationException",
                "Parameter(s) EventPattern or ScheduleExpression must be specified.",
            )
        pattern = _pattern(str(text)) if text else None
        if schedule:
            _check_schedule(str(schedule), bus)
        with self._lock:
            before = self._by_bus[bus].get(name)
            rule = Rule(
                name=name,
                bus=bus,
                arn=self.arn(bus, name),
                pattern=pattern,
                pattern_text=str(text) if text else None,
                schedule=str(schedule) if schedule else None,
                state=str(params.get("State") or "ENABLED"),
                description=params.get("Description"),
                role_arn=params.get("RoleArn"),
                targets=before.targets if before is not None else [],
                created=before.created
                if before is not None and before.schedule == schedule
                else now,
                from_template=before.from_template if before is not None else False,
            )
            self._by_bus[bus][name] = rule
        self.on_change(rule, False)
        return {"RuleArn": rule.arn}

    def delete_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteRule: a rule must lose its targets first; deleting what is not there is done."""
        bus = bus_name(params.get("EventBusName"))
        with self._lock:
            rule = self._by_bus.get(bus, {}).get(str(params["Name"]))
            if rule is None:
                return {}
            if rule.targets:
                raise RuleError(
                    "ValidationException", "Rule can't be deleted since it has targets."
                )
            del self._by_bus[bus][rule.name]
        self.on_change(rule, True)
        return {}

    def describe_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DescribeRule."""
        rule = self._rule(params.get("EventBusName"), str(params["Name"]))
        return {**rule.describe(), "CreatedBy": self.account}

    def list_rules(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListRules: a bus's rules by name, optionally those whose name starts with
        ``NamePrefix``, a page at a time."""
        bus = self._bus(params.get("EventBusName"))
        prefix = str(params.get("NamePrefix") or "")
        with self._lock:
            found = [r for r in self._by_bus[bus].values() if r.name.startswith(prefix)]
        chosen, token = _page(found, lambda r: r.name, params)
        return {"Rules": [r.describe() for r in chosen], **_next(token)}

    def enable_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """EnableRule."""
        return self._set_state(params, "ENABLED")

    def disable_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DisableRule."""
        return self._set_state(params, "DISABLED")

    def put_targets(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """PutTargets: add targets, or replace those of the same Id."""
        rule = self._rule(params.get("EventBusName"), str(params["Rule"]))
        targets = [self._target(entry) for entry in params["Targets"]]
        with self._lock:
            kept = {t.id: t for t in rule.targets}
            kept.update((t.id, t) for t in targets)
            if len(kept) > TARGETS_PER_RULE:
                raise RuleError(
                    "LimitExceededException",
                    f"The requested resource exceeds the maximum number allowed: a rule has at "
                    f"most {TARGETS_PER_RULE} targets.",
                )
            rule.targets = list(kept.values())
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def remove_targets(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """RemoveTargets (an Id the rule does not have is no error)."""
        rule = self._rule(params.get("EventBusName"), str(params["Rule"]))
        gone = {str(i) for i in params["Ids"]}
        with self._lock:
            rule.targets = [t for t in rule.targets if t.id not in gone]
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def list_targets_by_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListTargetsByRule, a page at a time."""
        rule = self._rule(params.get("EventBusName"), str(params["Rule"]))
        chosen, token = _page(list(rule.targets), lambda t: t.id, params)
        return {"Targets": [t.to_api() for t in chosen], **_next(token)}

    # -- across restarts ---------------------------------------------------------------------
    def snapshot(self) -> list[dict[str, Any]]:
        """The rules made through the API, to keep across a restart."""
        return [
            {
                "name": r.name,
                "bus": r.bus,
                "pattern": r.pattern_text,
                "schedule": r.schedule,
                "state": r.state,
                "description": r.description,
                "role_arn": r.role_arn,
                "targets": [t.to_api() for t in r.targets],
                "created": r.created.isoformat() if r.created else None,
            }
            for r in self.all()
            if not r.from_template
        ]

    def restore(self, saved: list[dict[str, Any]]) -> None:
        """Put back the rules of :meth:`snapshot` (a rule on a bus the template no longer has
        is dropped, as its bus would have taken it along)."""
        for entry in saved:
            bus, name = str(entry["bus"]), str(entry["name"])
            if bus not in self.buses:
                continue
            text = entry.get("pattern")
            created = entry.get("created")
            rule = Rule(
                name=name,
                bus=bus,
                arn=self.arn(bus, name),
                pattern=json.loads(text) if text else None,
                pattern_text=text,
                schedule=entry.get("schedule"),
                state=str(entry.get("state") or "ENABLED"),
                description=entry.get("description"),
                role_arn=entry.get("role_arn"),
                targets=[Target.from_api(t) for t in entry.get("targets") or []],
                created=datetime.fromisoformat(created) if created else None,
            )
            with self._lock:
                self._by_bus[bus][name] = rule
            self.on_change(rule, False)

    # -- helpers -----------------------------------------------------------------------------
    def _bus(self, name_or_arn: str | None) -> str:
        bus = bus_name(name_or_arn)
        if bus not in self.buses:
            raise RuleError("ResourceNotFoundException", f"Event bus {bus} does not exist.")
        return bus

    def _rule(self, bus_or_arn: str | None, name: str) -> Rule:
        bus = self._bus(bus_or_arn)
        found = self.find(bus, name)
        if found is None:
            raise RuleError(
                "ResourceNotFoundException", f"Rule {name} does not exist on EventBus {bus}."
            )
        return found

    def _set_state(self, params: Mapping[str, Any], state: str) -> dict[str, Any]:
        rule = self._rule(params.get("EventBusName"), str(params["Name"]))
        with self._lock:
            rule.state = state
        self.on_change(rule, False)
        return {}

    def _target(self, entry: Mapping[str, Any]) -> Target:
        """A target of PutTargets, checked as EventBridge checks it."""
        target = Target.from_api(entry)
        ways = [target.input, target.input_path, target.input_transformer]
        if sum(w is not None for w in ways) > 1:
            raise RuleError(
                "ValidationException",
                f"Target {target.id}: only one of Input, InputPath, or InputTransformer must be "
                "provided.",
            )
        if target.input is not None:
            try:
                json.loads(target.input)
            except ValueError:
                raise RuleError(
                    "ValidationException",
                    f"Target {target.id}: Parameter Input is not valid JSON: {target.input!r}",
                ) from None
        paths = [target.input_path] if target.input_path else []
        paths += list((target.input_transformer or {}).get("InputPathsMap", {}).values())
        for path in paths:
            try:
                json_path({}, str(path))
            except ValueError as exc:
                raise RuleError(
                    "ValidationException", f"Target {target.id}: invalid InputPath: {exc}"
                ) from None
        if not self._delivers_to(target.arn):
            raise RuleError(
                "ValidationException",
                f"Parameter {target.arn} is not valid. Reason: the local stack delivers events "
                "to its own functions and queues, and has none of that ARN.",
            )
        return target


def _pattern(text: str) -> dict[str, Any]:
    """An EventPattern, parsed and checked (InvalidEventPatternException with the reason)."""
    try:
        pattern = json.loads(text)
        check(pattern)
    except ValueError as exc:  # InvalidPattern, or not JSON at all
        reason = exc if isinstance(exc, InvalidPattern) else f"the pattern is not JSON ({exc})"
        raise RuleError(
            "InvalidEventPatternException", f"Event pattern is not valid. Reason: {reason}"
        ) from None
    result: dict[str, Any] = pattern
    return result


def _check_schedule(expression: str, bus: str) -> None:
    if bus != DEFAULT_BUS:
        raise RuleError(
            "ValidationException", "ScheduleExpression is supported only on the default event bus."
        )
    try:
        if isinstance(parse(expression), At):
            raise ScheduleExpressionError(
                f"{expression!r}: rules take rate() or cron(); at() is EventBridge Scheduler's"
            )
    except ScheduleExpressionError as exc:
        raise RuleError(
            "ValidationException", f"Parameter ScheduleExpression is not valid. Reason: {exc}"
        ) from None


def _page(items: list[Any], key: Callable[[Any], str], params: Mapping[str, Any]) -> Any:
    try:
        return page(items, key, params.get("NextToken"), int(params.get("Limit") or 100))
    except BadToken as exc:
        raise RuleError("ValidationException", str(exc)) from None


def _next(token: str | None) -> dict[str, str]:
    return {"NextToken": token} if token else {}


# -- rules of the template --------------------------------------------------------------------


def template_rule(
    rules: Rules, source: RuleSource | ScheduleSource, function: FunctionSpec
) -> Rule:
    """The rule an ``EventBridgeRule`` or ``Schedule`` event of a function makes (its one
    target is the function, with the Id SAM gives it); its pattern is checked as PutRule
    checks one."""
    if isinstance(source, RuleSource):
        bus = bus_name(source.bus)
        text = json.dumps(source.pattern)
        pattern: dict[str, Any] | None = _pattern(text)
        schedule = None
        target = Target(
            id=f"{function.logical_id}{source.name}LambdaTarget",
            arn=function.arn,
            input=source.input,
            input_path=source.input_path,
            input_transformer=source.input_transformer,
        )
    else:
        bus, text, pattern, schedule = DEFAULT_BUS, None, None, source.expression
        target = Target(
            id=f"{function.logical_id}{source.name}LambdaTarget",
            arn=function.arn,
            input=source.input,
        )
    return Rule(
        name=source.rule_name,
        bus=bus,
        arn=rules.arn(bus, source.rule_name),
        pattern=pattern,
        pattern_text=text,
        schedule=schedule,
        state="ENABLED" if source.enabled else "DISABLED",
        targets=[target],
        from_template=True,
    )
