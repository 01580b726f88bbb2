"""EventBridge: PutEvents on the template's buses, rules matched, targets invoked.

Each entry becomes the event EventBridge delivers (``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), is kept in the bus's
log (the CLI reads ``approval.requested`` from it), handed to listeners, and matched against
every rule on its bus with EventBridge's own pattern semantics (:mod:`stepwell.patterns`). A
matching rule's target function is invoked asynchronously with the rule's ``Input``,
``InputPath`` or ``InputTransformer`` applied (``<aws.events.event>`` and the other reserved
variables included).

The rules are the template's (its functions' ``EventBridgeRule`` events) and those made through
the API (``PutRule``, ``PutTargets`` ... as the engine makes them for a published workflow's
event triggers).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stepwell.local.clock import StackClock
from stepwell.local.template import RuleSource
from stepwell.patterns import matches

ENTRY_LIMIT = 256 * 1024
LOG_LIMIT = 20_000


def event_time(when: datetime) -> str:
    """An event's ``time`` as EventBridge writes it (UTC, whole seconds, ``Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass(frozen=True)
class Rule:
    """A rule of the template and the function it targets."""

    source: RuleSource
    function: str
    arn: str


@dataclass
class ApiRule:
    """A rule made through the API (``PutRule``) and the targets put on it."""

    name: str
    bus: str
    arn: str
    pattern: dict[str, Any]
    enabled: bool = True
    description: str = ""
    targets: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Target Id -> the target as ``PutTargets`` gave it (``Arn``, ``Input``, ``InputPath``,
    ``InputTransformer``)."""

    def sources(self) -> list[tuple[RuleSource, str]]:
        """Each target as a rule source and the ARN of the function it invokes."""
        return [
            (
                RuleSource(
                    target_id,
                    self.bus,
                    self.pattern,
                    target.get("Input"),
                    target.get("InputPath"),
                    target.get("InputTransformer"),
                    self.enabled,
                    self.name,
                ),
                str(target.get("Arn", "")),
            )
            for target_id, target in self.targets.items()
        ]


class RuleError(Exception):
    """A rules API request refused: ``code`` is the API's error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


_RULE_NAME = re.compile(r"[.\-_A-Za-z0-9]{1,64}")


class EventEntryError(Exception):
    """An entry PutEvents refuses (reported per entry, as EventBridge does)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Deliver = Callable[[str, bytes, str], None]
"""``(function name, payload, source description)``: an asynchronous invoke."""


class EventBuses:
    """The template's buses, their rules and a log of every event put on them."""

    def __init__(
        self,
        buses: Mapping[str, str],
        rules: list[Rule],
        deliver: Deliver,
        clock: StackClock,
        *,
        account: str,
        region: str,
        targets: Callable[[str], bool] = lambda arn: False,
    ) -> None:
        self.buses = dict(buses)
        """bus name -> ARN (``default`` always exists)."""
        self.buses.setdefault("default", f"arn:aws:events:{region}:{account}:event-bus/default")
        self.rules = rules
        self._deliver = deliver
        self._targets = targets
        """Whether a rule made through the API can deliver to an ARN (one of the functions)."""
        self._api_rules: dict[tuple[str, str], ApiRule] = {}
        self._clock = clock
        self.account = account
        self.region = region
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        """Every event put, in order, with ``_bus`` naming its bus."""
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self.delivery_errors: deque[str] = deque(maxlen=1000)

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event from now on (synchronously, inside the
        PutEvents call, so the stack is still busy while it runs); returns an unsubscribe."""
        with self._lock:
            self._listeners.append(listener)

        def unsubscribe() -> None:
            with self._lock:
                if listener in self._listeners:
                    self._listeners.remove(listener)

        return unsubscribe

    def bus_name(self, name_or_arn: str | None) -> str:
        """The bus an entry names (by name or ARN; the default bus when none)."""
        if not name_or_arn:
            return "default"
        if name_or_arn.startswith("arn:"):
            return name_or_arn.rsplit("/", 1)[-1]
        return name_or_arn

    def put_events(self, entries: list[dict[str, Any]]) -> dict[str, Any]:
        """PutEvents: ``{"FailedEntryCount", "Entries": [{"EventId"} | {"ErrorCode", ...}]}``."""
        results: list[dict[str, Any]] = []
        for entry in entries:
            try:
                event = self.put(entry)
                results.append({"EventId": event["id"]})
            except EventEntryError as exc:
                results.append({"ErrorCode": exc.code, "ErrorMessage": str(exc)})
        failed = sum(1 for r in results if "ErrorCode" in r)
        return {"FailedEntryCount": failed, "Entries": results}

    def put(self, entry: Mapping[str, Any]) -> dict[str, Any]:
        """Put one entry; returns the event as delivered."""
        bus = self.bus_name(entry.get("EventBusName"))
        if bus not in self.buses:
            raise EventEntryError("NotFoundException", f"Event bus {bus} does not exist.")
        for key in ("Source", "DetailType", "Detail"):
            if not entry.get(key):
                raise EventEntryError("InvalidArgument", f"Parameter {key} is not valid.")
        try:
            detail = json.loads(entry["Detail"])
        except ValueError:
            raise EventEntryError("MalformedDetail", "Detail is malformed.") from None
        if not isinstance(detail, dict):
            raise EventEntryError("MalformedDetail", "Detail is malformed.")
        if len(json.dumps(entry, default=str).encode()) > ENTRY_LIMIT:
            raise EventEntryError("InvalidArgument", "Event size exceeded 256 KB.")
        when = entry.get("Time")
        event = {
            "version": "0",
            "id": str(uuid.uuid4()),
            "detail-type": str(entry["DetailType"]),
            "source": str(entry["Source"]),
            "account": self.account,
            "time": event_time(when if isinstance(when, datetime) else self._clock.now()),
            "region": self.region,
            "resources": list(entry.get("Resources") or []),
            "detail": detail,
        }
        self.log.append({**event, "_bus": bus})
        with self._lock:
            listeners = list(self._listeners)
        for listener in listeners:
            try:
                listener(event)
            except Exception as exc:  # a listener's bug must not fail the PutEvents call
                self.delivery_errors.append(f"listener {listener!r}: {type(exc).__name__}: {exc}")
        for rule in self.rules:
            if rule.source.enabled and self.bus_name(rule.source.bus) == bus:
                self._send(rule.source, rule.function, rule.arn, event)
        with self._lock:
            made = [r for r in self._api_rules.values() if r.bus == bus and r.enabled]
        for api_rule in made:
            for source, function in api_rule.sources():
                self._send(source, function, api_rule.arn, event)
        return event

    def _send(
        self, source: RuleSource, function: str, rule_arn: str, event: dict[str, Any]
    ) -> None:
        """Invoke ``function`` with what the rule gives it, when ``event`` matches."""
        if not matches(source.pattern, event):
            return
        try:
            payload = target_input(source, event, rule_arn)
        except ValueError as exc:
            self.delivery_errors.append(f"rule {source.rule_name}: {exc}")
            return
        self._deliver(function, payload, f"rule {source.rule_name}")

    # -- the rules API -------------------------------------------------------------------------
    def put_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """PutRule: a rule with an event pattern (made, or changed keeping its targets)."""
        bus = self._bus_of(params)
        name = str(params.get("Name") or "")
        if not _RULE_NAME.fullmatch(name):
            raise RuleError("ValidationException", f"Rule name {name!r} is not valid.")
        if params.get("ScheduleExpression"):
            raise RuleError(
                "ValidationException",
                "the local stack runs rules with an EventPattern; a schedule is an EventBridge "
                "Scheduler schedule (CreateSchedule)",
            )
        try:
            pattern = json.loads(str(params.get("EventPattern") or ""))
        except ValueError:
            pattern = None
        if not isinstance(pattern, dict) or not pattern:
            raise RuleError("InvalidEventPatternException", "Event pattern is not valid.")
        with self._lock:
            known = self._api_rules.get((bus, name))
            rule = ApiRule(
                name,
                bus,
                self._rule_arn(bus, name),
                pattern,
                str(params.get("State") or "ENABLED") == "ENABLED",
                str(params.get("Description") or ""),
                dict(known.targets) if known is not None else {},
            )
            self._api_rules[(bus, name)] = rule
        return {"RuleArn": rule.arn}

    def put_targets(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """PutTargets: a target the stack cannot deliver to is a failed entry."""
        rule = self._api_rule(params, "Rule")
        failed = []
        for target in params.get("Targets") or []:
            if not self._targets(str(target.get("Arn", ""))):
                failed.append(
                    {
                        "TargetId": target.get("Id"),
                        "ErrorCode": "ValidationException",
                        "ErrorMessage": "the local stack delivers rules to its functions; it "
                        f"has no {target.get('Arn')!r}",
                    }
                )
                continue
            with self._lock:
                rule.targets[str(target.get("Id"))] = dict(target)
        return {"FailedEntryCount": len(failed), "FailedEntries": failed}

    def remove_targets(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """RemoveTargets."""
        rule = self._api_rule(params, "Rule")
        with self._lock:
            for target_id in params.get("Ids") or []:
                rule.targets.pop(str(target_id), None)
        return {"FailedEntryCount": 0, "FailedEntries": []}

    def delete_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DeleteRule: refused while the rule has targets; a rule already gone is no error."""
        key = (self._bus_of(params), str(params.get("Name") or ""))
        with self._lock:
            rule = self._api_rules.get(key)
            if rule is not None and rule.targets:
                raise RuleError(
                    "ValidationException", "Rule can't be deleted since it has targets."
                )
            self._api_rules.pop(key, None)
        return {}

    def describe_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """DescribeRule."""
        return self._shown(self._api_rule(params, "Name"))

    def list_targets_by_rule(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListTargetsByRule."""
        rule = self._api_rule(params, "Rule")
        with self._lock:
            return {"Targets": [dict(target) for target in rule.targets.values()]}

    def list_rules(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """ListRules of a bus, by name prefix: the template's and those made through the API,
        by name, 100 a page unless Limit says fewer."""
        bus = self._bus_of(params)
        prefix = str(params.get("NamePrefix") or "")
        with self._lock:
            made = [r for r in self._api_rules.values() if r.bus == bus]
        template = [
            ApiRule(r.source.rule_name, bus, r.arn, r.source.pattern, r.source.enabled)
            for r in self.rules
            if self.bus_name(r.source.bus) == bus
        ]
        found = sorted(
            (r for r in [*template, *made] if r.name.startswith(prefix)), key=lambda r: r.name
        )
        start = int(params.get("NextToken") or 0)
        size = int(params.get("Limit") or 100)
        answer: dict[str, Any] = {"Rules": [self._shown(r) for r in found[start : start + size]]}
        if start + size < len(found):
            answer["NextToken"] = str(start + size)
        return answer

    def rules_made(self) -> list[dict[str, Any]]:
        """The rules made through the API and their targets (kept across a restart)."""
        with self._lock:
            return [
                {
                    "name": r.name,
                    "bus": r.bus,
                    "pattern": r.pattern,
                    "enabled": r.enabled,
                    "description": r.description,
                    "targets": list(r.targets.values()),
                }
                for r in self._api_rules.values()
            ]

    def restore_rules(self, saved: list[dict[str, Any]]) -> None:
        """Put back the rules of :meth:`rules_made`."""
        with self._lock:
            for entry in saved:
                bus, name = str(entry["bus"]), str(entry["name"])
                self._api_rules[(bus, name)] = ApiRule(
                    name,
                    bus,
                    self._rule_arn(bus, name),
                    dict(entry["pattern"]),
                    bool(entry.get("enabled", True)),
                    str(entry.get("description") or ""),
                    {str(t["Id"]): dict(t) for t in entry.get("targets") or []},
                )

    def _bus_of(self, params: Mapping[str, Any]) -> str:
        bus = self.bus_name(params.get("EventBusName"))
        if bus not in self.buses:
            raise RuleError(
                "ResourceNotFoundException", f"Event bus {bus} does not exist.", status=400
            )
        return bus

    def _api_rule(self, params: Mapping[str, Any], key: str) -> ApiRule:
        bus = self._bus_of(params)
        name = str(params.get(key) or "")
        with self._lock:
            rule = self._api_rules.get((bus, name))
        if rule is None:
            raise RuleError(
                "ResourceNotFoundException", f"Rule {name} does not exist on EventBus {bus}."
            )
        return rule

    def _rule_arn(self, bus: str, name: str) -> str:
        where = name if bus == "default" else f"{bus}/{name}"
        return f"arn:aws:events:{self.region}:{self.account}:rule/{where}"

    def _shown(self, rule: ApiRule) -> dict[str, Any]:
        """A rule as ListRules and DescribeRule give it."""
        shown = {
            "Name": rule.name,
            "Arn": rule.arn,
            "EventPattern": json.dumps(rule.pattern),
            "State": "ENABLED" if rule.enabled else "DISABLED",
            "EventBusName": rule.bus,
        }
        if rule.description:
            shown["Description"] = rule.description
        return shown

    def events(
        self, detail_type: str | None = None, bus: str | None = None
    ) -> list[dict[str, Any]]:
        """Events put so far (optionally of one detail-type or on one bus), oldest first."""
        return [
            {k: v for k, v in e.items() if k != "_bus"}
            for e in list(self.log)
            if (detail_type is None or e["detail-type"] == detail_type)
            and (bus is None or e["_bus"] == self.bus_name(bus))
        ]


# -- target input -----------------------------------------------------------------------------

_PATH_PART = re.compile(r"\.([A-Za-z0-9_\-$@]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")
_MISSING = object()


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail.items[0]``, ``$['detail-type']``);
    a path that leads nowhere gives None."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSONPath (it starts with $)")
    value = document
    position = 1
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if not match:
            raise ValueError(f"{path!r}: only $.name, $['name'] and [index] paths are supported")
        name = match.group(1) or match.group(3) or match.group(4)
        if match.group(2) is not None:
            index = int(match.group(2))
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(name) if isinstance(value, dict) else None
        position = match.end()
    return value


def target_input(source: RuleSource, event: dict[str, Any], rule_arn: str) -> bytes:
    """What the rule's target receives for ``event``."""
    if source.input is not None:
        return source.input.encode()
    if source.input_path:
        return json.dumps(json_path(event, source.input_path)).encode()
    if source.input_transformer:
        return transform(source.input_transformer, event, rule_arn, source.rule_name).encode()
    return json.dumps(event).encode()


def transform(
    transformer: Mapping[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str
) -> str:
    """An InputTransformer applied to ``event``.

    Each ``<name>`` of the template is replaced by its value: inside a JSON string the text of
    the value, elsewhere the value as JSON (``<aws.events.event>`` is the whole event).
    """
    paths = transformer.get("InputPathsMap") or {}
    template = transformer.get("InputTemplate")
    if not isinstance(template, str):
        raise ValueError("InputTransformer needs an InputTemplate")
    values: dict[str, Any] = {
        name: json_path(event, str(path)) for name, path in dict(paths).items()
    }
    values.setdefault("aws.events.rule-arn", rule_arn)
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.event.ingestion-time", event.get("time"))
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    out: list[str] = []
    in_string = False
    escaped = False
    position = 0
    while position < len(template):
        char = template[position]
        if char == "<":
            match = _PLACEHOLDER.match(template, position)
            if match and match.group(1) in values:
                value = values[match.group(1)]
                if in_string:
                    text = value if isinstance(value, str) else json.dumps(value)
                    out.append(json.dumps(text)[1:-1] if value is not None else "")
                else:
                    out.append(json.dumps(value))
                position = match.end()
                continue
        if in_string and char == "\\" and not escaped:
            escaped = True
        else:
            if char == '"' and not escaped:
                in_string = not in_string
            escaped = False
        out.append(char)
        position += 1
    return "".join(out)
