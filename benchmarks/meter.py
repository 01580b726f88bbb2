"""Count the requests AWS clients send, and price them (for the benchmarks and the tests that
bound a path's requests; Stepwell itself does not ship it).

The meter hooks botocore's events (``before-parameter-build``, which sees the API parameters,
and ``after-call``, which sees the parsed response), so it sees every request whatever made it
(pynamodb, boto3, our own code), including the ones the local stack answers itself::

    meter = RequestMeter()
    meter.attach(store.client)               # one client; or meter.install(): every client
    before = meter.reading()                 # created from now on
    ...                                      # handle one event
    spent = meter.reading() - before
    assert spent.writes <= 3 and spent.reads <= 2
    print(cost(spent).total)                 # dollars, at the list prices below

What it counts:

* every request, as ``service:Operation``;
* DynamoDB: items and bytes written and read, and the request units they cost, with
  DynamoDB's rounding (writes per 1 KB, reads per 4 KB, eventually consistent reads at half,
  transactions at twice). Given the table's shape (:meth:`RequestMeter.describe`), it also
  remembers the size and index keys of every item it saw written, so an ``UpdateItem`` is
  billed on the stored item's size and the writes to global secondary indexes are estimated
  (a new index entry is one write, a moved one two, a removed one one). The capacity a service
  reports is added up apart (moto reports a constant, AWS the real figure);
* EventBridge entries put and SQS messages sent, with their 64 KB billing chunks;
* Lambda invocations, which the caller reports (:meth:`RequestMeter.invoked`: an event source
  invokes a function without any client request to see).

Failed conditional writes cost their write units (DynamoDB bills them), but change no stored
item and no index.
"""

from __future__ import annotations

import math
import threading
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, fields
from typing import Any

READ_OPERATIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan", "TransactGetItems"})
WRITE_OPERATIONS = frozenset(
    {"PutItem", "UpdateItem", "DeleteItem", "BatchWriteItem", "TransactWriteItems"}
)
CHUNK = 64 * 1024
"""EventBridge and SQS bill each 64 KB of a request's payload as one request."""
_CONTEXT_KEY = "stepwell_meter"


# -- prices ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Prices:
    """List prices in dollars per request or unit (us-east-1, on-demand), from the project's
    price list. The one place in the code that holds them."""

    write_unit: float = 0.625e-6
    """DynamoDB write request unit (1 KB standard write; transactions take 2 per KB)."""
    read_unit: float = 0.125e-6
    """DynamoDB read request unit (4 KB strongly consistent; eventually consistent = half)."""
    lambda_request: float = 0.20e-6
    """Lambda request (compute is billed separately)."""
    event: float = 1.00e-6
    """EventBridge custom event, per 64 KB chunk."""
    scheduler_invocation: float = 1.00e-6
    """EventBridge Scheduler invocation (one per one-time schedule created)."""
    sqs_request: float = 0.40e-6
    """SQS standard request, per 64 KB chunk."""
    s3_put: float = 5.00e-6
    """S3 PUT, COPY, POST and LIST requests."""
    s3_get: float = 0.40e-6
    """S3 GET and every other request but DELETE (free)."""
    step_functions_transition: float = 25.00e-6
    """Step Functions Standard state transition: the anchor costs are compared with."""
    step_functions_express_request: float = 1.00e-6
    """Step Functions Express request (plus duration)."""
    durable_functions_operation: float = 8.00e-6
    """Lambda durable functions operation."""


PRICES = Prices()

S3_PUT_CLASS = frozenset(
    {
        "PutObject",
        "CopyObject",
        "PostObject",
        "ListObjects",
        "ListObjectsV2",
        "ListBuckets",
        "CreateMultipartUpload",
        "UploadPart",
        "CompleteMultipartUpload",
    }
)
S3_FREE = frozenset({"DeleteObject", "DeleteObjects"})


# -- readings -------------------------------------------------------------------------------


@dataclass
class Reading:
    """What the metered clients did up to one moment (subtract two readings for a span)."""

    calls: Counter[str] = field(default_factory=Counter)
    """``service:Operation`` -> requests, e.g. ``dynamodb:TransactWriteItems``."""
    errors: Counter[str] = field(default_factory=Counter)
    """``service:Operation`` -> requests answered with an error (a cancelled transaction)."""
    items_read: int = 0
    items_written: int = 0
    read_units: float = 0.0
    """Read units at the strongly consistent rate (1 per 4 KB)."""
    write_units: float = 0.0
    """Write units of the items written (index writes are apart: ``index_write_units``)."""
    reported_units: float = 0.0
    """Consumed capacity as reported in responses (where the service reports it)."""
    eventual_read_units: float = 0.0
    """The part of ``read_units`` read eventually consistently (billed at half)."""
    failed_write_units: float = 0.0
    """The part of ``write_units`` spent on writes that failed (lost conditions, cancelled
    transactions): still billed, nothing written."""
    index_write_units: float = 0.0
    """Estimated writes to global secondary indexes (needs :meth:`RequestMeter.describe`)."""
    bytes_written: int = 0
    bytes_read: int = 0
    largest_item: int = 0
    """The largest item written (bytes, DynamoDB's measure); not subtracted by ``-``."""
    events_put: int = 0
    event_chunks: int = 0
    sqs_messages: int = 0
    sqs_chunks: int = 0
    """SQS requests as billed: each request's payload in 64 KB chunks."""
    schedules_created: int = 0
    invocations: Counter[str] = field(default_factory=Counter)
    """Function -> Lambda invocations (as reported to :meth:`RequestMeter.invoked`)."""
    invocation_ms: dict[str, float] = field(default_factory=dict)
    """Function -> milliseconds spent in its invocations."""

    def __sub__(self, other: Reading) -> Reading:
        values: dict[str, Any] = {}
        for spec in fields(self):
            mine, theirs = getattr(self, spec.name), getattr(other, spec.name)
            if isinstance(mine, Counter):
                left = Counter(mine)
                left.subtract(theirs)
                values[spec.name] = Counter({k: v for k, v in left.items() if v > 0})
            elif isinstance(mine, dict):
                spent = {k: v - theirs.get(k, 0.0) for k, v in mine.items()}
                values[spec.name] = {k: v for k, v in spent.items() if v > 0}
            elif spec.name == "largest_item":
                values[spec.name] = mine
            else:
                values[spec.name] = mine - theirs
        return Reading(**values)

    def __add__(self, other: Reading) -> Reading:
        values: dict[str, Any] = {}
        for spec in fields(self):
            mine, theirs = getattr(self, spec.name), getattr(other, spec.name)
            if isinstance(mine, Counter):
                values[spec.name] = mine + theirs
            elif isinstance(mine, dict):
                values[spec.name] = {
                    k: mine.get(k, 0.0) + theirs.get(k, 0.0) for k in {*mine, *theirs}
                }
            elif spec.name == "largest_item":
                values[spec.name] = max(mine, theirs)
            else:
                values[spec.name] = mine + theirs
        return Reading(**values)

    def copy(self) -> Reading:
        """An independent copy."""
        values = {spec.name: getattr(self, spec.name) for spec in fields(self)}
        for name in ("calls", "errors", "invocations"):
            values[name] = Counter(values[name])
        values["invocation_ms"] = dict(self.invocation_ms)
        return Reading(**values)

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
    def billed_read_units(self) -> float:
        """Read units as billed: eventually consistent reads at half."""
        return self.read_units - self.eventual_read_units / 2

    @property
    def dynamodb_calls(self) -> Counter[str]:
        """DynamoDB requests per operation."""
        return self.service_calls("dynamodb")

    def service_calls(self, service: str) -> Counter[str]:
        """One service's requests per operation."""
        prefix = f"{service}:"
        return Counter(
            {k.removeprefix(prefix): v for k, v in self.calls.items() if k.startswith(prefix)}
        )

    def summary(self) -> dict[str, Any]:
        """JSON-ready figures."""
        return {
            "calls": dict(sorted(self.calls.items())),
            "errors": dict(sorted(self.errors.items())),
            "reads": self.reads,
            "writes": self.writes,
            "items_read": self.items_read,
            "items_written": self.items_written,
            "read_units": round(self.billed_read_units, 2),
            "write_units": round(self.write_units, 2),
            "failed_write_units": round(self.failed_write_units, 2),
            "index_write_units": round(self.index_write_units, 2),
            "bytes_read": self.bytes_read,
            "bytes_written": self.bytes_written,
            "largest_item": self.largest_item,
            "events_put": self.events_put,
            "sqs_messages": self.sqs_messages,
            "schedules_created": self.schedules_created,
            "invocations": dict(sorted(self.invocations.items())),
        }


# -- the table's shape ----------------------------------------------------------------------


@dataclass(frozen=True)
class Index:
    """A global secondary index: its key attributes and whether it projects only keys."""

    keys: tuple[str, ...]
    keys_only: bool = True


@dataclass(frozen=True)
class TableShape:
    """A table's key attributes and global secondary indexes."""

    keys: tuple[str, ...]
    indexes: Mapping[str, Index] = field(default_factory=dict)

    @classmethod
    def from_description(cls, table: Mapping[str, Any]) -> TableShape:
        """From DescribeTable's ``Table`` (or CreateTable's parameters)."""
        indexes = {
            str(index["IndexName"]): Index(
                tuple(k["AttributeName"] for k in index["KeySchema"]),
                (index.get("Projection") or {}).get("ProjectionType", "ALL") == "KEYS_ONLY",
            )
            for index in table.get("GlobalSecondaryIndexes") or []
        }
        return cls(tuple(k["AttributeName"] for k in table["KeySchema"]), indexes)


@dataclass
class _Stored:
    size: int
    index_keys: dict[str, tuple[Any, ...] | None]


# -- the meter ------------------------------------------------------------------------------


class RequestMeter:
    """Counts requests of the clients it is attached to (thread-safe)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._total = Reading()
        self._clients: list[Any] = []
        self._installed: list[tuple[Any, ...]] = []
        self._sessions: list[Any] = []
        self._shapes: dict[str, TableShape] = {}
        self._stored: dict[tuple[str, tuple[str, ...]], _Stored] = {}
        self._trails = threading.local()
        self.tracing = False
        """While true, each thread's requests are also kept in order (see :meth:`trail`)."""

    # -- hooking ----------------------------------------------------------------------------
    @property
    def _ids(self) -> tuple[str, str]:
        return f"stepwell-meter-b-{id(self)}", f"stepwell-meter-a-{id(self)}"

    def attach(self, client: Any) -> RequestMeter:
        """Count the requests of a boto3/botocore client from now on."""
        self._register(client.meta.events)
        self._clients.append(client)
        return self

    def install(self) -> RequestMeter:
        """Count the requests of every client created from now on (boto3's default session
        and every botocore session made later), until :meth:`detach`."""
        import boto3
        import botocore.handlers

        for entry in (
            ("before-parameter-build.*.*", self._before),
            ("after-call.*.*", self._after),
        ):
            botocore.handlers.BUILTIN_HANDLERS.append(entry)
            self._installed.append(entry)
        session = boto3._get_default_session()
        self._register(session.events)
        self._sessions.append(session)
        return self

    def _register(self, events: Any) -> None:
        before, after = self._ids
        events.register("before-parameter-build.*.*", self._before, unique_id=before)
        events.register("after-call.*.*", self._after, unique_id=after)

    def detach(self) -> None:
        """Stop counting."""
        import botocore.handlers

        before, after = self._ids
        for owner in [*(c.meta for c in self._clients), *self._sessions]:
            owner.events.unregister("before-parameter-build.*.*", unique_id=before)
            owner.events.unregister("after-call.*.*", unique_id=after)
        self._clients.clear()
        self._sessions.clear()
        for entry in self._installed:
            if entry in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        self._installed.clear()

    def describe(self, table: str, shape: TableShape) -> RequestMeter:
        """Tell the meter a table's keys and indexes (for update sizes and index writes)."""
        with self._lock:
            self._shapes[table] = shape
        return self

    # -- reading ----------------------------------------------------------------------------
    def reading(self) -> Reading:
        """The totals so far (a copy)."""
        with self._lock:
            return self._total.copy()

    def reset(self) -> None:
        """Start again from zero (remembered items stay remembered)."""
        with self._lock:
            self._total = Reading()

    def invoked(self, function: str, duration_ms: float | None = None) -> None:
        """Count one Lambda invocation of ``function`` (and the time it took)."""
        with self._lock:
            self._total.invocations[function] += 1
            if duration_ms:
                spent = self._total.invocation_ms
                spent[function] = spent.get(function, 0.0) + duration_ms

    def trail(self) -> list[str]:
        """The requests (``dynamodb:UpdateItem``) this thread made while :attr:`tracing`, in
        order, since it last asked; they are forgotten."""
        made: list[str] = getattr(self._trails, "made", [])
        self._trails.made = []
        return made

    def add(self, call: str, count: int = 1) -> None:
        """Count requests no client makes visibly (``sqs:ReceiveMessage`` of a Lambda event
        source mapping, say)."""
        with self._lock:
            self._total.calls[call] += count
            if call.startswith("sqs:"):
                self._total.sqs_chunks += count

    # -- hooks ------------------------------------------------------------------------------
    def _before(
        self,
        event_name: str = "",
        params: Any = None,
        context: Any = None,
        **_: Any,
    ) -> None:
        service, operation = _names(event_name)
        params = params if isinstance(params, Mapping) else {}
        if isinstance(context, dict):
            context[_CONTEXT_KEY] = params
        if self.tracing:
            if not hasattr(self._trails, "made"):
                self._trails.made = []
            self._trails.made.append(f"{service}:{operation}")
        with self._lock:
            total = self._total
            total.calls[f"{service}:{operation}"] += 1
            if service == "dynamodb":
                written = self._write_cost(operation, params)
                total.items_written += written.items
                total.write_units += written.units
                total.bytes_written += written.bytes
                total.largest_item = max(total.largest_item, written.largest)
            elif service == "eventbridge" and operation == "PutEvents":
                entries = list(params.get("Entries") or [])
                total.events_put += len(entries)
                total.event_chunks += sum(_chunks(event_size(e)) for e in entries)
            elif service == "sqs" and operation == "SendMessage":
                total.sqs_messages += 1
                total.sqs_chunks += _chunks(message_size(params))
            elif service == "sqs" and operation == "SendMessageBatch":
                entries = list(params.get("Entries") or [])
                total.sqs_messages += len(entries)
                total.sqs_chunks += _chunks(sum(message_size(e) for e in entries))
            elif service == "sqs":
                total.sqs_chunks += 1
            elif service == "scheduler" and operation == "CreateSchedule":
                total.schedules_created += 1

    def _after(
        self, event_name: str = "", parsed: Any = None, context: Any = None, **_: Any
    ) -> None:
        service, operation = _names(event_name)
        if isinstance(parsed, Mapping) and "Error" in parsed:
            params = context.get(_CONTEXT_KEY, {}) if isinstance(context, dict) else {}
            with self._lock:
                self._total.errors[f"{service}:{operation}"] += 1
                if service == "dynamodb" and operation in WRITE_OPERATIONS:
                    self._total.failed_write_units += self._write_cost(operation, params).units
            return
        if service != "dynamodb" or not isinstance(parsed, Mapping):
            return
        params = context.get(_CONTEXT_KEY, {}) if isinstance(context, dict) else {}
        read = _read_cost(operation, parsed, params)
        reported = _reported(parsed.get("ConsumedCapacity"))
        with self._lock:
            total = self._total
            total.items_read += read.items
            total.read_units += read.units
            total.eventual_read_units += read.eventual
            total.bytes_read += read.bytes
            total.reported_units += reported
            total.index_write_units += self._written(operation, params)

    # -- DynamoDB writes ----------------------------------------------------------------------
    def _write_cost(self, operation: str, params: Mapping[str, Any]) -> _Cost:
        """Units of a write request as sent (before it succeeds or fails); lock held."""
        cost = _Cost()
        table = str(params.get("TableName", ""))
        if operation == "PutItem":
            cost.put(_item_size(params.get("Item", {})), 1)
        elif operation == "UpdateItem":
            cost.put(self._updated_size(table, params), 1)
        elif operation == "DeleteItem":
            cost.put(self._stored_size(table, params.get("Key", {})), 1, counts_bytes=False)
        elif operation == "BatchWriteItem":
            for name, requests in (params.get("RequestItems") or {}).items():
                for request in requests:
                    put = request.get("PutRequest")
                    if put:
                        cost.put(_item_size(put["Item"]), 1)
                    else:
                        key = (request.get("DeleteRequest") or {}).get("Key", {})
                        cost.put(self._stored_size(name, key), 1, counts_bytes=False)
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems") or []:
                ((kind, body),) = entry.items()
                name = str(body.get("TableName", ""))
                if kind == "ConditionCheck":
                    cost.units += 2  # billed as a transactional read
                elif kind == "Put":
                    cost.put(_item_size(body["Item"]), 2)
                elif kind == "Update":
                    cost.put(self._updated_size(name, body), 2)
                else:
                    cost.put(self._stored_size(name, body.get("Key", {})), 2, counts_bytes=False)
        return cost

    def _stored_size(self, table: str, key: Mapping[str, Any]) -> int:
        """The size of a stored item this meter saw written (0 when it did not: the request
        is then billed its minimum, one unit)."""
        found = self._stored.get((table, _key_of(key, self._shapes.get(table))))
        return found.size if found is not None else 0

    def _updated_size(self, table: str, params: Mapping[str, Any]) -> int:
        """An update is billed on the larger of the item before and after: the stored size
        plus the values the update sets."""
        added = sum(wire_size(v) for v in (params.get("ExpressionAttributeValues") or {}).values())
        return self._stored_size(table, params.get("Key", {})) + added

    def _written(self, operation: str, params: Mapping[str, Any]) -> float:
        """After a successful write: remember the items, return the index writes; lock held."""
        if operation == "PutItem":
            return self._remember_put(str(params.get("TableName", "")), params.get("Item", {}))
        if operation == "UpdateItem":
            return self._remember_update(str(params.get("TableName", "")), params)
        if operation == "DeleteItem":
            return self._forget(str(params.get("TableName", "")), params.get("Key", {}))
        units = 0.0
        if operation == "BatchWriteItem":
            for name, requests in (params.get("RequestItems") or {}).items():
                for request in requests:
                    if "PutRequest" in request:
                        units += self._remember_put(name, request["PutRequest"]["Item"])
                    else:
                        units += self._forget(name, request["DeleteRequest"]["Key"])
        elif operation == "TransactWriteItems":
            for entry in params.get("TransactItems") or []:
                ((kind, body),) = entry.items()
                name = str(body.get("TableName", ""))
                if kind == "Put":
                    units += self._remember_put(name, body["Item"])
                elif kind == "Update":
                    units += self._remember_update(name, body)
                elif kind == "Delete":
                    units += self._forget(name, body.get("Key", {}))
        return units

    def _remember_put(self, table: str, item: Mapping[str, Any]) -> float:
        shape = self._shapes.get(table)
        if shape is None:
            return 0.0
        key = (table, _key_of(item, shape))
        new = _Stored(
            _item_size(item),
            {name: _index_key(item, index) for name, index in shape.indexes.items()},
        )
        old = self._stored.get(key)
        self._stored[key] = new
        return sum(
            index_writes(
                old.index_keys.get(name) if old else None,
                new.index_keys[name],
                index.keys_only,
                new.size,
            )
            for name, index in shape.indexes.items()
        )

    def _remember_update(self, table: str, params: Mapping[str, Any]) -> float:
        shape = self._shapes.get(table)
        if shape is None:
            return 0.0
        key = (table, _key_of(params.get("Key", {}), shape))
        old = self._stored.get(key)
        size = self._updated_size(table, params)
        expression = str(params.get("UpdateExpression", ""))
        names = set((params.get("ExpressionAttributeNames") or {}).values())
        units = 0.0
        for name, index in shape.indexes.items():
            touched = any(k in names or k in expression for k in index.keys)
            present = old is not None and old.index_keys.get(name) is not None
            if touched or (present and not index.keys_only):
                units += 2.0 if present else 1.0  # an index key may move: the worst case
        if old is not None:
            old.size = size
        return units

    def _forget(self, table: str, key_attrs: Mapping[str, Any]) -> float:
        shape = self._shapes.get(table)
        if shape is None:
            return 0.0
        old = self._stored.pop((table, _key_of(key_attrs, shape)), None)
        if old is None:
            return 0.0
        return float(sum(1 for keys in old.index_keys.values() if keys is not None))


@dataclass
class _Cost:
    items: int = 0
    units: float = 0.0
    bytes: int = 0
    largest: int = 0
    eventual: float = 0.0

    def put(self, size: int, factor: int, *, counts_bytes: bool = True) -> None:
        self.items += 1
        self.units += factor * _units(size, 1024)
        if counts_bytes:
            self.bytes += size
            self.largest = max(self.largest, size)


def index_writes(
    old: tuple[Any, ...] | None, new: tuple[Any, ...] | None, keys_only: bool, size: int
) -> float:
    """Writes to one global secondary index when an item's index key goes from ``old`` to
    ``new`` (None: the item is not in the index). A KEYS_ONLY entry is one unit; an entry
    that projects attributes costs the item's size and is rewritten on every change."""
    entry = 1 if keys_only else _units(size, 1024)
    if old is None and new is None:
        return 0.0
    if old is None or new is None:
        return float(entry)
    if old != new:
        return float(1 + entry)  # the old entry deleted, the new one written
    return 0.0 if keys_only else float(entry)


def _key_of(item: Mapping[str, Any], shape: TableShape | None) -> tuple[str, ...]:
    if shape is None:
        return tuple(sorted(str(v) for v in item.values()))
    return tuple(str(item.get(k)) for k in shape.keys)


def _index_key(item: Mapping[str, Any], index: Index) -> tuple[Any, ...] | None:
    values = tuple(item.get(k) for k in index.keys)
    if any(v is None for v in values):
        return None
    return tuple(str(v) for v in values)


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


_item_size = item_wire_size


def event_size(entry: Mapping[str, Any]) -> int:
    """An EventBridge entry's billed size: Time (14 bytes when set), Source, DetailType, Detail
    and Resources, UTF-8."""
    size = 14 if entry.get("Time") is not None else 0
    for name in ("Source", "DetailType", "Detail"):
        size += len(str(entry.get(name) or "").encode())
    size += sum(len(str(r).encode()) for r in entry.get("Resources") or [])
    return size


def message_size(message: Mapping[str, Any]) -> int:
    """An SQS message's size: its body plus its attributes' names, types and values."""
    size = len(str(message.get("MessageBody") or "").encode())
    for name, attribute in (message.get("MessageAttributes") or {}).items():
        size += len(name.encode()) + len(str(attribute.get("DataType", "")).encode())
        value = attribute.get("StringValue", attribute.get("BinaryValue", ""))
        size += len(value) if isinstance(value, bytes) else len(str(value).encode())
    return size


def _chunks(size: int) -> int:
    return max(1, math.ceil(size / CHUNK))


def _units(size: int, unit: int) -> int:
    return max(1, math.ceil(size / unit))


@dataclass
class _Read:
    items: int = 0
    units: float = 0.0
    eventual: float = 0.0
    bytes: int = 0

    def add(self, sizes: Iterable[int], factor: int = 1, *, consistent: bool = True) -> None:
        for size in sizes:
            self.items += 1
            self.bytes += size
            units = float(factor * _units(size, 4096))
            self.units += units
            if not consistent:
                self.eventual += units


def _read_cost(operation: str, parsed: Mapping[str, Any], params: Mapping[str, Any]) -> _Read:
    read = _Read()
    consistent = bool(params.get("ConsistentRead"))
    if operation == "GetItem":
        item = parsed.get("Item")
        if item:
            read.add([item_wire_size(item)], consistent=consistent)
        else:  # a miss costs a unit all the same
            read.units += 1.0
            read.eventual += 0.0 if consistent else 1.0
    elif operation == "BatchGetItem":
        requested = params.get("RequestItems") or {}
        for table, found in (parsed.get("Responses") or {}).items():
            strong = bool((requested.get(table) or {}).get("ConsistentRead"))
            read.add((item_wire_size(i) for i in found), consistent=strong)
    elif operation in ("Query", "Scan"):
        items = parsed.get("Items") or []
        # Index reads are eventually consistent whatever was asked.
        strong = consistent and not params.get("IndexName")
        size = sum(item_wire_size(i) for i in items)
        units = float(_units(size, 4096))
        read.items += len(items)
        read.bytes += size
        read.units += units
        read.eventual += 0.0 if strong else units
    elif operation == "TransactGetItems":
        found = [r["Item"] for r in parsed.get("Responses") or [] if r.get("Item")]
        read.add((item_wire_size(i) for i in found), factor=2)
    return read


def _reported(capacity: Any) -> float:
    if isinstance(capacity, Mapping):
        return float(capacity.get("CapacityUnits") or 0)
    if isinstance(capacity, list):
        return sum(_reported(c) for c in capacity)
    return 0.0


# -- cost -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Cost:
    """Dollars per item of the bill, for one reading."""

    items: Mapping[str, float]

    @property
    def total(self) -> float:
        return sum(self.items.values())

    def per_million(self, steps: int) -> dict[str, float]:
        """Dollars per million steps, item by item and in total."""
        scale = 1e6 / steps if steps else 0.0
        figures = {name: value * scale for name, value in self.items.items()}
        figures["total"] = self.total * scale
        return figures


def cost(
    reading: Reading,
    *,
    excluded_functions: Iterable[str] = (),
    prices: Prices = PRICES,
) -> Cost:
    """What a reading costs at list prices. Lambda requests of ``excluded_functions`` (the
    user's own step functions, say) are left out; Lambda compute and API Gateway are not priced.
    """
    excluded = set(excluded_functions)
    s3 = reading.service_calls("s3")
    s3_put = sum(n for op, n in s3.items() if op in S3_PUT_CLASS)
    s3_get = sum(n for op, n in s3.items() if op not in S3_PUT_CLASS and op not in S3_FREE)
    lambdas = sum(n for f, n in reading.invocations.items() if f not in excluded)
    return Cost(
        {
            "dynamodb_writes": (reading.write_units + reading.index_write_units)
            * prices.write_unit,
            "dynamodb_reads": reading.billed_read_units * prices.read_unit,
            "lambda_requests": lambdas * prices.lambda_request,
            "events": reading.event_chunks * prices.event,
            "sqs": reading.sqs_chunks * prices.sqs_request,
            "scheduler": reading.schedules_created * prices.scheduler_invocation,
            "s3": s3_put * prices.s3_put + s3_get * prices.s3_get,
        }
    )
