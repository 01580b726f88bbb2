"""EventBridge: PutEvents on the template's buses, rules matched, targets invoked.

Each entry becomes the event EventBridge delivers (``version``, ``id``, ``detail-type``,
``source``, ``account``, ``time``, ``region``, ``resources``, ``detail``), is kept in the bus's
log (the CLI reads ``approval.requested`` from it), handed to listeners, and matched against
every rule on its bus with EventBridge's own pattern semantics (:mod:`stepwell.patterns`). A
matching rule's target function is invoked asynchronously with the rule's ``Input``,
``InputPath`` or ``InputTransformer`` applied (``<aws.events.event>`` and the other reserved
variables included).
"""

from __future__ import annotations

import json
import re
import threading
import uuid
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass
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
    ) -> None:
        self.buses = dict(buses)
        """bus name -> ARN (``default`` always exists)."""
        self.buses.setdefault("default", f"arn:aws:events:{region}:{account}:event-bus/default")
        self.rules = rules
        self._deliver = deliver
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
            if not rule.source.enabled or self.bus_name(rule.source.bus) != bus:
                continue
            if matches(rule.source.pattern, event):
                try:
                    payload = target_input(rule.source, event, rule.arn)
                except ValueError as exc:
                    self.delivery_errors.append(f"rule {rule.source.rule_name}: {exc}")
                    continue
                self._deliver(rule.function, payload, f"rule {rule.source.rule_name}")
        return event

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
