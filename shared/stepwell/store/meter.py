"""Count the requests a client sends: calls per operation, items read and written, and the
capacity units they cost.

The meter hooks botocore's events (``before-parameter-build``, which sees the API parameters,
and ``after-call``, which sees the parsed response) on a client, so it sees
every request whatever made it (pynamodb, boto3, our own code)::

    meter = RequestMeter()
    meter.attach(store.models.client)        # the DynamoDB client pynamodb uses
    before = meter.reading()
    ...                                      # handle one event
    spent = meter.reading() - before
    assert spent.writes <= 3 and spent.reads <= 2

Units are estimated from the sizes of the items sent and received, with DynamoDB's rounding
(writes per 1 KB, reads per 4 KB, transactions at twice the price); the consumed capacity a
service reports is added up apart (moto reports a constant, AWS the real figure).
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)


@dataclass
class Reading:
    """What the metered clients did up to one moment (subtract two readings for a span)."""

    calls: Counter[str] = field(default_factory=Counter)
    """``service:Operation`` -> requests, e.g. ``dynamodb:TransactWriteItems``."""
    items_read: int = 0
    items_written: int = 0
    read_units: float = 0.0
    write_units: float = 0.0
    reported_units: float = 0.0
    """Consumed capacity as reported in responses (where the service reports it)."""

    def __sub__(self, other: Reading) -> Reading:
        calls = Counter(self.calls)
        calls.subtract(other.calls)
        return Reading(
            calls=+calls,
            items_read=self.items_read - other.items_read,
            items_written=self.items_written - other.items_written,
            read_units=self.read_units - other.read_units,
            write_units=self.write_units - other.write_units,
            reported_units=self.reported_units - other.reported_units,
        )

    def count(self, operation: str, service: str = "dynamodb") -> int:
        """Requests of one operation."""
        return self.calls.get(f"{service}:{operation}", 0)

    @property
    def reads(self) -> int:
        """DynamoDB read requests."""
        return sum(self.count(op) for op in READ_OPERATIONS)

    @property
    def writes(self) -> int:
        """DynamoDB write requests."""
        return sum(self.count(op) for op in WRITE_OPERATIONS)

    @property
    def dynamodb_calls(self) -> Counter[str]:
        """DynamoDB requests per operation."""
        return Counter(
            {k.partition(":")[2]: v for k, v in self.calls.items() if k.startswith("dynamodb:")}
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "calls": dict(sorted(self.calls.items())),
            "reads": self.reads,
            "writes": self.writes,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "read_units": round(self.read_units, 2),
            "write_units": round(self.write_units, 2),
        }


class RequestMeter:
    """Counts requests of the clients it is attached to (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Reading()
        self._clients: list[Any] = []

    def attach(self, client: Any) -> RequestMeter:
        """Count the requests of a boto3/botocore client from now on."""
        events = client.meta.events
        events.register(
            "before-parameter-build.*.*", self._before, unique_id=f"stepwell-meter-b-{id(self)}"
        )
        events.register("after-call.*.*", self._after, unique_id=f"stepwell-meter-a-{id(self)}")
        self._clients.append(client)
        return self

    def detach(self) -> None:
        """Stop counting."""
        for client in self._clients:
            events = client.meta.events
            events.unregister(
                "before-parameter-build.*.*", unique_id=f"stepwell-meter-b-{id(self)}"
            )
            events.unregister("after-call.*.*", unique_id=f"stepwell-meter-a-{id(self)}")
        self._clients.clear()

    def reading(self) -> Reading:
        """The totals so far (a copy)."""
        with self._lock:
            total = self._total
            return Reading(
                Counter(total.calls),
                total.items_read,
                total.items_written,
                total.read_units,
                total.write_units,
                total.reported_units,
            )

    def reset(self) -> None:
        """Start again from zero."""
        with self._lock:
            self._total = Reading()

    # -- hooks ------------------------------------------------------------------------------
    def _before(self, event_name: str = "", params: Any = None, **_: Any) -> None:
        service, operation = _names(event_name)
        written, units = _write_cost(operation, params or {}) if service == "dynamodb" else (0, 0)
        with self._lock:
            self._total.calls[f"{service}:{operation}"] += 1
            self._total.items_written += written
            self._total.write_units += units

    def _after(self, event_name: str = "", parsed: Any = None, **_: Any) -> None:
        service, operation = _names(event_name)
        if service != "dynamodb" or not isinstance(parsed, Mapping) or "Error" in parsed:
            return
        read, units = _read_cost(operation, parsed)
        reported = _reported(parsed.get("ConsumedCapacity"))
        with self._lock:
            self._total.items_read += read
            self._total.read_units += units
            self._total.reported_units += reported


def _names(event_name: str) -> tuple[str, str]:
    """``after-call.dynamodb.GetItem`` -> ``("dynamodb", "GetItem")``."""
    parts = [*event_name.split("."), "", "", ""]
    return parts[1], parts[2]


def wire_size(value: Any) -> int:
    """DynamoDB's size of an attribute value in wire format (``{"S": ...}``, ``{"N": ...}``)."""
    if not isinstance(value, Mapping) or len(value) != 1:
        return 0
    ((kind, inner),) = value.items()
    if kind == "S":
        return len(str(inner).encode())
    if kind == "N":
        return len(str(inner).lstrip("-").replace(".", "")) // 2 + 1
    if kind == "B":
        return len(inner) if isinstance(inner, bytes) else len(str(inner))
    if kind in ("BOOL", "NULL"):
        return 1
    if kind == "M":
        return 3 + sum(len(k.encode()) + 1 + wire_size(v) for k, v in inner.items())
    if kind == "L":
        return 3 + sum(1 + wire_size(v) for v in inner)
    if kind in ("SS", "NS", "BS"):
        return sum(len(str(v).encode()) for v in inner)
    return 0


def item_wire_size(item: Mapping[str, Any]) -> int:
    """The size of an item in wire format: attribute names plus values."""
    return sum(len(name.encode()) + wire_size(value) for name, value in item.items())


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


def _write_cost(operation: str, params: Mapping[str, Any]) -> tuple[int, float]:
    if operation == "PutItem":
        return 1, _units(item_wire_size(params.get("Item", {})), 1024)
    if operation in ("UpdateItem", "DeleteItem"):
        return 1, 1.0  # billed on the stored item's size, which the request does not show
    if operation == "BatchWriteItem":
        items, units = 0, 0.0
        for requests in params.get("RequestItems", {}).values():
            for request in requests:
                items += 1
                put = request.get("PutRequest")
                units += _units(item_wire_size(put["Item"]), 1024) if put else 1
        return items, units
    if operation == "TransactWriteItems":
        items, units = 0, 0.0
        for entry in params.get("TransactItems", []):
            ((kind, body),) = entry.items()
            if kind == "ConditionCheck":
                units += 2  # billed as a transactional read
                continue
            items += 1
            size = item_wire_size(body["Item"]) if kind == "Put" else 1024
            units += 2 * _units(size, 1024)
        return items, units
    return 0, 0.0


def _read_cost(operation: str, parsed: Mapping[str, Any]) -> tuple[int, float]:
    if operation == "GetItem":
        item = parsed.get("Item")
        return (1, _units(item_wire_size(item), 4096)) if item else (0, 1.0)
    if operation == "BatchGetItem":
        items = [i for found in parsed.get("Responses", {}).values() for i in found]
        return len(items), float(sum(_units(item_wire_size(i), 4096) for i in items))
    if operation in ("Query", "Scan"):
        items = parsed.get("Items", [])
        return len(items), float(_units(sum(item_wire_size(i) for i in items), 4096))
    if operation == "TransactGetItems":
        items = [r["Item"] for r in parsed.get("Responses", []) if r.get("Item")]
        return len(items), float(sum(2 * _units(item_wire_size(i), 4096) for i in items))
    return 0, 0.0


def _reported(capacity: Any) -> float:
    if isinstance(capacity, Mapping):
        return float(capacity.get("CapacityUnits") or 0)
    if isinstance(capacity, list):
        return sum(_reported(c) for c in capacity)
    return 0.0
