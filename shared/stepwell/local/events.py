"""EventBridge: PutEvents on the template's buses, rules matched, targets invoked.

Each entry becomes the event EventBridge delivers (``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), is kept in the bus's
log (the CLI reads ``approval.requested`` from it), handed to listeners, and matched against
every rule on its bus (:mod:`stepwell.local.rules`: the template's and those made through the
API) with EventBridge's own pattern semantics (:mod:`stepwell.patterns`). Each target of a
matching rule gets the event asynchronously, with its ``Input``, ``InputPath`` or
``InputTransformer`` applied (``<aws.events.event>`` and the other reserved variables
included).

PutEvents and the rule API are answered by the stack's buses and rules (:func:`operations`).
"""

from __future__ import annotations

import json
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from stepwell.local.clock import StackClock
from stepwell.local.errors import TemplateError
from stepwell.local.intercept import Operation
from stepwell.local.rules import Rule, RuleError, Rules, bus_name, template_rule
from stepwell.local.template import (
    ACCOUNT,
    REGION,
    FunctionSpec,
    Physical,
    RuleSource,
    ScheduleSource,
    Template,
)
from stepwell.patterns import matches

ENTRY_LIMIT = 256 * 1024
LOG_LIMIT = 20_000


def event_time(when: datetime) -> str:
    """An event's ``time`` as EventBridge writes it (UTC, whole seconds, ``Z``)."""
    return when.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


class EventEntryError(Exception):
    """An entry PutEvents refuses (reported per entry, as EventBridge does)."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


Deliver = Callable[[str, bytes, str], None]
"""``(target ARN, payload, source description)``: an asynchronous invoke (or a message)."""


class EventBuses:
    """The template's buses, their rules and a log of every event put on them."""

    def __init__(self, rules: Rules, deliver: Deliver, clock: StackClock) -> None:
        self.rules = rules
        self._deliver = deliver
        self._clock = clock
        self.log: deque[dict[str, Any]] = deque(maxlen=LOG_LIMIT)
        """Every event put, in order, with ``_bus`` naming its bus."""
        self._listeners: list[Callable[[dict[str, Any]], None]] = []
        self._lock = threading.Lock()
        self.delivery_errors: deque[str] = deque(maxlen=1000)

    @property
    def buses(self) -> dict[str, str]:
        """bus name -> ARN (``default`` always exists)."""
        return self.rules.buses

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
        bus = bus_name(entry.get("EventBusName"))
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
            "account": self.rules.account,
            "time": event_time(when if isinstance(when, datetime) else self._clock.now()),
            "region": self.rules.region,
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
        for rule in self.rules.matching(bus):
            if matches(rule.pattern or {}, event):
                self.deliver(rule, event)
        return event

    def deliver(self, rule: Rule, event: dict[str, Any], source: str | None = None) -> None:
        """Hand ``event`` to each target of ``rule`` (a target whose input cannot be made is
        skipped and noted, as EventBridge counts a failed invocation). ``source`` says what
        delivers (``rule NAME`` unless given)."""
        for target in list(rule.targets):
            try:
                payload = target.payload(event, rule.arn, rule.name)
            except ValueError as exc:
                self.delivery_errors.append(f"rule {rule.name} target {target.id}: {exc}")
                continue
            self._deliver(target.arn, payload, source or f"rule {rule.name}")

    def events(
        self, detail_type: str | None = None, bus: str | None = None
    ) -> list[dict[str, Any]]:
        """Events put so far (optionally of one detail-type or on one bus), oldest first."""
        return [
            {k: v for k, v in e.items() if k != "_bus"}
            for e in list(self.log)
            if (detail_type is None or e["detail-type"] == detail_type)
            and (bus is None or e["_bus"] == bus_name(bus))
        ]


# -- the template's buses and rules, and EventBridge's API over them ------------------------


def build(
    template: Template,
    physical: Mapping[str, Physical],
    sources: list[tuple[FunctionSpec, RuleSource | ScheduleSource]],
    deliver: Deliver,
    delivers_to: Callable[[str], bool],
    on_rule_change: Callable[[Rule, bool], None],
    clock: StackClock,
) -> EventBuses:
    """The buses and their rules: the template's ``EventBridgeRule`` events, and its
    ``Schedule`` events (rules with a schedule expression)."""
    buses = {
        physical[k].ref: physical[k].attrs["Arn"]
        for k in template.of_type("AWS::Events::EventBus")
        if k in physical
    }
    rules = Rules(buses, account=ACCOUNT, region=REGION, delivers_to=delivers_to)
    rules.on_change = on_rule_change
    made = EventBuses(rules, deliver, clock)
    for spec, source in sources:
        if isinstance(source, RuleSource) and bus_name(source.bus) not in rules.buses:
            raise TemplateError(f"rule {source.rule_name}: no event bus {source.bus}")
        try:
            rules.add(template_rule(rules, source, spec))
        except RuleError as exc:
            raise TemplateError(f"function {spec.logical_id} event {source.name}: {exc}") from None
    return made


def operations(buses: EventBuses, now: Callable[[], datetime]) -> dict[str, Operation]:
    """EventBridge's API, answered by the stack's buses and rules (a RuleError is the API's
    error answer)."""
    rules = buses.rules
    return {
        "eventbridge.PutEvents": lambda p: buses.put_events(list(p.get("Entries") or [])),
        "eventbridge.PutRule": lambda p: rules.put_rule(p, now()),
        "eventbridge.DeleteRule": rules.delete_rule,
        "eventbridge.DescribeRule": rules.describe_rule,
        "eventbridge.ListRules": rules.list_rules,
        "eventbridge.EnableRule": rules.enable_rule,
        "eventbridge.DisableRule": rules.disable_rule,
        "eventbridge.PutTargets": rules.put_targets,
        "eventbridge.RemoveTargets": rules.remove_targets,
        "eventbridge.ListTargetsByRule": rules.list_targets_by_rule,
    }


def put_events_over_http(buses: EventBuses, body: bytes) -> tuple[int, Any]:
    """``AWSEvents.PutEvents`` arriving over HTTP (``aws events --endpoint-url``): status and
    answer."""
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "the body is not JSON"}
    entries = params.get("Entries") if isinstance(params, dict) else None
    if not isinstance(entries, list) or not entries:
        return 400, {"__type": "ValidationException", "message": "Entries is required"}
    return 200, buses.put_events(entries)
