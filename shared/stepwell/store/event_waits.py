"""The state event waits share between runs: the index of open waits and the events kept for
waits not open yet.

- **Open waits** are indexed by (source, detail-type, the correlation's event path and value):
  an arriving event reads only the waits on its own value (a key lookup per path in use for its
  type), however many waits are open for other values.
- **Routes**: the correlation paths waits of a (source, detail-type) use, and their longest
  lookback. A wait adds its own before it is indexed; a process reads them to know which values
  an event carries, at most every ``ROUTES_FRESH`` per type (so an unmatched event costs its
  keeping and one Query per path). An event a process kept without knowing a new path is found
  by the wait's second look at the kept events (``engine.kinds.event.RECHECK``).
- **Kept events**: every event is kept by (source, detail-type) and time, for the longest
  lookback its type's waits declare; a wait that opens reads those of its lookback. Keeping is a
  conditional write keyed by the event's time and id, so a redelivered event is known as one.
- **Sent ids**: an event sent through ``POST /events`` with an id of its sender's keeps the time
  it was first sent under that id (``SENT_KEPT``), so a re-send is put on the bus as the same
  event (same id, same time): kept once, and taken by no wait the first did not reach.

Both sides write before they read (an event is kept, then looks for waits; a wait is indexed,
then looks for kept events), so an event and a wait that race always meet at least once; the
engine makes a second meeting change nothing.
"""

from __future__ import annotations

import json
import threading
from collections import Counter
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from stepwell.engine.commands import UnwatchEvent, WatchEvent
from stepwell.engine.kinds.event import correlation_key, happened_at, value_at
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.faults import retried

WAIT_PREFIX = "EVWAIT#"
ROUTE_PREFIX = "EVROUTE#"
KEPT_PREFIX = "EVKEPT#"
SENT_PREFIX = "EVSENT#"
SENT_KEPT = timedelta(days=7)
"""How long a sender's event id is known (a re-send after it is a new event)."""
ROUTE_SK = "ROUTE"
ROUTES_FRESH = timedelta(seconds=30)
"""How long a process uses the routes it read (shorter than the wait's RECHECK)."""
MIN_KEEP = timedelta(hours=1)
"""Events are kept at least this long (a wait reads only those of its lookback: the expiry
bounds what is stored, not what counts)."""


@dataclass(frozen=True)
class Waiter:
    """An open wait an event is delivered to."""

    run_id: str
    key: str
    attempt: int


@dataclass(frozen=True)
class Arrival:
    """What an arriving event found."""

    duplicate: bool
    """It was kept already (a redelivery): its waits are told again, and change nothing."""
    waiters: list[Waiter] = field(default_factory=list)


class EventWaits(Protocol):
    """The index of open event waits and the events kept for later ones."""

    def watch(self, wait: WatchEvent) -> list[dict[str, Any]]:
        """Index ``wait``, then the events kept since its ``since`` that carry its value,
        oldest first."""
        ...

    def unwatch(self, wait: UnwatchEvent) -> None:
        """Take a wait out of the index."""
        ...

    def arrive(self, event: dict[str, Any], now: datetime) -> Arrival:
        """Keep ``event`` (for the longest lookback of its type), then the waits on its values."""
        ...

    def first_sent(self, source: str, event_id: str, now: datetime) -> datetime:
        """When the event ``event_id`` of ``source`` was first sent (``now``: it is new)."""
        ...


def _type_key(source: str, detail_type: str) -> str:
    return f"{source}#{detail_type}"


def _wait_key(source: str, detail_type: str, path: str, value: str) -> str:
    return f"{WAIT_PREFIX}{_type_key(source, detail_type)}#{path}={value}"


def stamp(at: datetime) -> str:
    """A time as kept events sort by it (UTC, fixed width)."""
    return at.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def _event_time(event: dict[str, Any]) -> str:
    return stamp(happened_at(event))


def carrying(events: list[dict[str, Any]], path: str, value: str) -> list[dict[str, Any]]:
    """The events carrying ``value`` at ``path``, oldest first."""
    found = [e for e in events if correlation_key(value_at(e, path)) == value]
    return sorted(found, key=lambda e: (_event_time(e), str(e.get("id"))))


class MemoryEventWaits:
    """Event waits in memory (unit tests, the in-process world)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._routes: dict[str, tuple[set[str], timedelta]] = {}
        self._waits: dict[str, dict[str, Waiter]] = {}
        self._kept: dict[str, dict[tuple[str, str], dict[str, Any]]] = {}
        self._sent: dict[tuple[str, str], datetime] = {}

    def watch(self, wait: WatchEvent) -> list[dict[str, Any]]:
        type_key = _type_key(wait.source, wait.detail_type)
        with self._lock:
            paths, longest = self._routes.get(type_key, (set(), timedelta(0)))
            lookback = timedelta(seconds=wait.lookback)
            self._routes[type_key] = (paths | {wait.path}, max(longest, lookback))
            index = self._waits.setdefault(
                _wait_key(wait.source, wait.detail_type, wait.path, wait.value), {}
            )
            index[f"{wait.run_id}#{wait.key}"] = Waiter(wait.run_id, wait.key, wait.attempt)
            since = stamp(wait.since)
            kept = [e for (t, _), e in self._kept.get(type_key, {}).items() if t >= since]
        return carrying(kept, wait.path, wait.value)

    def unwatch(self, wait: UnwatchEvent) -> None:
        with self._lock:
            index = self._waits.get(
                _wait_key(wait.source, wait.detail_type, wait.path, wait.value), {}
            )
            index.pop(f"{wait.run_id}#{wait.key}", None)

    def arrive(self, event: dict[str, Any], now: datetime) -> Arrival:
        type_key = _type_key(event["source"], event["detail_type"])
        with self._lock:
            kept = self._kept.setdefault(type_key, {})
            slot = (_event_time(event), str(event["id"]))
            duplicate = slot in kept
            kept[slot] = event
            paths, _ = self._routes.get(type_key, (set(), timedelta(0)))
            waiters: list[Waiter] = []
            for path in sorted(paths):
                value = correlation_key(value_at(event, path))
                if value is not None:
                    key = _wait_key(event["source"], event["detail_type"], path, value)
                    waiters += self._waits.get(key, {}).values()
        return Arrival(duplicate, waiters)

    def first_sent(self, source: str, event_id: str, now: datetime) -> datetime:
        with self._lock:
            return self._sent.setdefault((source, event_id), now)


class DynamoEventWaits:
    """Event waits as items of the Stepwell table (``client``: the store's botocore client, so
    a request meter sees it). Index entries and kept events carry their TTL."""

    def __init__(self, table: str, client: Any, faults: Counter[str] | None = None) -> None:
        self._table = table
        self._client = client
        self._faults = faults
        self._routes: dict[str, tuple[datetime, list[str], timedelta]] = {}
        """type -> when its routes were read, its paths, its longest lookback."""

    def watch(self, wait: WatchEvent) -> list[dict[str, Any]]:
        type_key = _type_key(wait.source, wait.detail_type)
        lookback = wait.lookback
        self._send(
            "update_item",
            f"the routes of {type_key}",
            Key={"pk": {"S": ROUTE_PREFIX + type_key}, "sk": {"S": ROUTE_SK}},
            UpdateExpression="ADD paths :path, lookbacks :lookback SET kind = :kind",
            ExpressionAttributeValues={
                ":path": {"SS": [wait.path]},
                ":lookback": {"NS": [str(lookback)]},
                ":kind": {"S": "event_route"},
            },
        )
        self._send(
            "put_item",
            f"the wait of run {wait.run_id}",
            Item={
                "pk": {"S": _wait_key(wait.source, wait.detail_type, wait.path, wait.value)},
                "sk": {"S": f"{wait.run_id}#{wait.key}"},
                "kind": {"S": "event_wait"},
                "run_id": {"S": wait.run_id},
                "step_key": {"S": wait.key},
                "attempt": {"N": str(wait.attempt)},
                "expires_at": {"N": str(int(wait.expires_at.timestamp()))},
            },
        )
        kept: list[dict[str, Any]] = []
        query: dict[str, Any] = {
            "KeyConditionExpression": "pk = :pk AND sk >= :since",
            "ExpressionAttributeValues": {
                ":pk": {"S": KEPT_PREFIX + type_key},
                ":since": {"S": stamp(wait.since)},
            },
            "ConsistentRead": True,
        }
        while True:
            page = self._send("query", f"the kept events of {type_key}", **query)
            kept += [json.loads(item["event"]["S"]) for item in page.get("Items", [])]
            if "LastEvaluatedKey" not in page:
                break
            query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return carrying(kept, wait.path, wait.value)

    def unwatch(self, wait: UnwatchEvent) -> None:
        self._send(
            "delete_item",
            f"the wait of run {wait.run_id}",
            Key={
                "pk": {"S": _wait_key(wait.source, wait.detail_type, wait.path, wait.value)},
                "sk": {"S": f"{wait.run_id}#{wait.key}"},
            },
        )

    def arrive(self, event: dict[str, Any], now: datetime) -> Arrival:
        type_key = _type_key(event["source"], event["detail_type"])
        # Kept before the routes are read, so a wait indexed meanwhile is found (see above).
        read_at, paths, longest = self._routes.get(type_key, (None, [], timedelta(0)))
        duplicate = False
        try:
            # Sent again after a lost answer, it finds itself: taken as a redelivery, which
            # changes nothing (the waits de-duplicate by the event's id).
            self._send(
                "put_item",
                f"the keeping of event {event['id']}",
                Item={
                    "pk": {"S": KEPT_PREFIX + type_key},
                    "sk": {"S": f"{_event_time(event)}#{event['id']}"},
                    "kind": {"S": "event_kept"},
                    "event": {"S": json.dumps(event, separators=(",", ":"))},
                    "expires_at": {"N": str(int((now + max(longest, MIN_KEEP)).timestamp()))},
                },
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            duplicate = True
        if read_at is None or now - read_at >= ROUTES_FRESH:
            paths, longest = self._read_routes(type_key)
            self._routes[type_key] = (now, paths, longest)
        waiters: list[Waiter] = []
        for path in paths:
            value = correlation_key(value_at(event, path))
            if value is None:
                continue
            query: dict[str, Any] = {
                "KeyConditionExpression": "pk = :pk",
                "ExpressionAttributeValues": {
                    ":pk": {"S": _wait_key(event["source"], event["detail_type"], path, value)}
                },
                "ConsistentRead": True,
            }
            while True:
                page = self._send("query", f"the waits on {value}", **query)
                waiters += [
                    Waiter(item["run_id"]["S"], item["step_key"]["S"], int(item["attempt"]["N"]))
                    for item in page.get("Items", [])
                ]
                if "LastEvaluatedKey" not in page:
                    break
                query["ExclusiveStartKey"] = page["LastEvaluatedKey"]
        return Arrival(duplicate, waiters)

    def first_sent(self, source: str, event_id: str, now: datetime) -> datetime:
        # One write whatever the answer: the first time is set only where none is.
        item = self._send(
            "update_item",
            f"the first sending of event {event_id}",
            Key={"pk": {"S": f"{SENT_PREFIX}{source}#{event_id}"}, "sk": {"S": "SENT"}},
            UpdateExpression="SET sent_at = if_not_exists(sent_at, :now), kind = :kind, "
            "expires_at = if_not_exists(expires_at, :expires)",
            ExpressionAttributeValues={
                ":now": {"S": now.astimezone(UTC).isoformat()},
                ":kind": {"S": "event_sent"},
                ":expires": {"N": str(int((now + SENT_KEPT).timestamp()))},
            },
            ReturnValues="ALL_NEW",
        )
        return datetime.fromisoformat(item["Attributes"]["sent_at"]["S"])

    def _send(self, operation: str, what: str, **request: Any) -> Any:
        """One request of the table, sent again on a fault AWS calls retryable: every one here
        may be sent twice (a set's ADD, a put or delete of the same item, a first time set only
        where none is, a conditional keeping that then finds itself, reads)."""
        call = getattr(self._client, operation)
        return retried(lambda: call(TableName=self._table, **request), what, self._faults)

    def _read_routes(self, type_key: str) -> tuple[list[str], timedelta]:
        route = self._send(
            "get_item",
            f"the routes of {type_key}",
            Key={"pk": {"S": ROUTE_PREFIX + type_key}, "sk": {"S": ROUTE_SK}},
            ConsistentRead=True,
        ).get("Item", {})
        lookbacks = [int(n) for n in route.get("lookbacks", {}).get("NS", [])]
        paths = sorted(route.get("paths", {}).get("SS", []))
        return paths, timedelta(seconds=max(lookbacks or [0]))


def event_waits_for(store: Any) -> EventWaits:
    """The event waits that go with ``store``: items of its table on DynamoDB (its client, so a
    request meter sees them), else in memory."""
    if isinstance(store, DynamoStore):
        return DynamoEventWaits(store.table, store.client, store.faults)
    return MemoryEventWaits()
