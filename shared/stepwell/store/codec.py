"""Records <-> item attributes: the one place that knows how a run, a step and a timeline entry
are spelled in DynamoDB.

Attributes are plain Python values (str, int, float, bool); ``None`` and defaults (0, False,
empty) are never stored: the attribute is left out and decodes to the default. Times are
ISO-8601 strings, which keep microseconds and the offset, so a record decodes equal to the one
encoded. JSON payloads (inputs, outputs, errors, items ...) are
compact JSON strings: exact for floats, free of DynamoDB's number and empty-value rules, and
measurable, so the store can move the large ones to S3 (see :mod:`stepwell.store.payloads`).
"""

from __future__ import annotations

import base64
import binascii
import dataclasses
import json
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from types import MappingProxyType
from typing import Any, Literal

from stepwell.engine.decision import TimelineEntry
from stepwell.engine.state import ParentRef, RunState, StepState, Usage

Kind = Literal["str", "int", "bool", "time", "json", "parent", "usage"]

RUN_FIELDS: dict[str, Kind] = {
    "id": "str",
    "workflow": "str",
    "version": "str",
    "status": "str",
    "input": "json",
    "created_at": "time",
    "started_at": "time",
    "ended_at": "time",
    "output": "json",
    "error": "json",
    "context": "json",
    "labels": "json",
    "due_at": "time",
    "deadline": "time",
    "open_steps": "int",
    "waiting_steps": "int",
    "watch_at": "time",
    "parent": "parent",
    "rerun_of": "str",
    "continued_from": "str",
    "started_by": "str",
    "cancelling": "json",
    "dry_run": "bool",
    "usage": "usage",
    "outbox": "json",
    "outbox_due": "time",
    "compensation": "json",
    "nonce": "str",
    "slot": "json",
    "debounce": "str",
    "seq": "int",
}
"""Every field of RunState and how it is stored."""

STEP_FIELDS: dict[str, Kind] = {
    "key": "str",
    "status": "str",
    "attempt": "int",
    "token": "str",
    "pending_deps": "int",
    "deps_ended": "json",
    "skipped_deps": "int",
    "input": "json",
    "output": "json",
    "error": "json",
    "item": "json",
    "started_at": "time",
    "attempt_started_at": "time",
    "ended_at": "time",
    "due_at": "time",
    "waiting_for": "str",
    "slot": "str",
    "heartbeat_due": "time",
    "timeout_at": "time",
    "decisions": "json",
    "early_signal": "json",
    "awaits": "json",
    "child_run_id": "str",
    "items_total": "int",
    "next_child": "int",
    "children_succeeded": "int",
    "children_failed": "int",
    "failed_items": "json",
    "counted_at": "time",
    "usage": "usage",
    "dry_run": "bool",
    "copied_from": "str",
    "lost_attempts": "int",
    "retry_base": "int",
    "name": "str",
    "spec": "json",
    "position": "int",
    "after": "json",
    "wake": "bool",
    "failed_deps": "int",
    "bypassed": "bool",
    "handled_by": "int",
    "steps_running": "int",
    "steps_waited": "int",
    "created_seq": "int",
    "rev": "int",
}
"""Every field of StepState and how it is stored."""

COUNTERS = frozenset(
    {"children_succeeded", "children_failed", "next_child", "counted_at"}
    | {"cost_usd", "input_tokens", "output_tokens"}
)
"""Step attributes a count changes by atomic adds on a for_each parent (see engine.fanout): a
write that sets one of them expects ``counted_at`` unchanged, so it never undoes a count."""

RENAMED = {"id": "run_id", "key": "step_key"}
"""Fields whose attribute name differs (clearer in the console, no clash with model methods)."""

KEPT = frozenset({"status"})
"""Fields stored even when they hold their default (people read and filter on them)."""

RUN_PAYLOADS = ("input", "output", "error", "context", "labels", "outbox", "compensation")
"""Run attributes that may move to S3 when large."""
STEP_PAYLOADS = ("input", "output", "error", "item", "decisions", "early_signal", "failed_items")
"""Step attributes that may move to S3 when large."""

RUN_SK = "RUN"
STEP_PREFIX = "STEP#"
TIMELINE_PREFIX = "TL#"
TIMELINE_END = "TL#~"
"""Sorts after every timeline key: the upper bound of a timeline range."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_ESCAPE = "$inline"
_POINTER = "$ref"


# -- keys ---------------------------------------------------------------------------------


def run_pk(run_id: str) -> str:
    """The partition of a run: its run item, step items and timeline items."""
    return f"RUN#{run_id}"


def run_id_of(pk: str) -> str:
    """The run id of a run partition key."""
    return pk.removeprefix("RUN#")


def step_sk(key: str) -> str:
    """The sort key of a step record."""
    return f"{STEP_PREFIX}{key}"


def timeline_sk(seq: int) -> str:
    """The sort key of the timeline item written by the commit that made ``seq``."""
    return f"{TIMELINE_PREFIX}{seq:012d}"


def definition_pk(name: str) -> str:
    """The partition of a workflow's definition versions."""
    return f"DEF#{name}"


def definition_sk(version: str) -> str:
    """The sort key of one definition version."""
    return f"V#{version}"


WORKFLOWS_PK = "WORKFLOWS"
"""The partition of the published workflows (one item each: a listing is one Query)."""


def workflow_sk(name: str) -> str:
    """The sort key of a published workflow."""
    return f"W#{name}"


def shard(run_id: str, shards: int) -> int:
    """A stable shard of a run id (the same in every process, unlike ``hash``)."""
    return zlib.crc32(run_id.encode()) % shards


def micros(when: datetime) -> int:
    """Microseconds since the epoch: exact for sorting and comparing due times."""
    return (when - _EPOCH) // timedelta(microseconds=1)


def from_micros(value: int) -> datetime:
    """The inverse of :func:`micros`."""
    return _EPOCH + timedelta(microseconds=value)


PEOPLE_WAITS = ("approval", "input")
"""What a step waiting for people waits for (it is in the waiting_people index meanwhile)."""


def waiting_sk(run_id: str, step: StepState) -> str | None:
    """Sort key of a step in the waiting_people index (None: it waits for nobody): by when the
    wait opened."""
    if step.status != "waiting" or step.waiting_for not in PEOPLE_WAITS:
        return None
    opened = step.attempt_started_at or step.started_at
    return f"{micros(opened) if opened else 0:017d}#{run_id}#{step.key}"


def list_sk(run: RunState) -> str:
    """Sort key of a run in the listing indexes: newest first when read backwards."""
    return f"{micros(run.created_at):017d}#{run.id}"


# -- values -------------------------------------------------------------------------------


def dumps(value: Any) -> str:
    """Compact JSON (UTF-8 friendly: non-ASCII stays as is, and is measured as bytes)."""
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)


def encode_payload(value: Any) -> str:
    """A JSON payload as stored inline. A value shaped like an S3 pointer (a one-key
    ``$ref`` map) or like the escape itself is wrapped, so no inline value reads as a pointer."""
    if isinstance(value, dict) and len(value) == 1 and (_POINTER in value or _ESCAPE in value):
        value = {_ESCAPE: value}
    return dumps(value)


def decode_payload(text: str) -> Any:
    """The value of an inline payload (pointers are resolved before this)."""
    value = json.loads(text)
    if isinstance(value, dict) and len(value) == 1 and _ESCAPE in value:
        return value[_ESCAPE]
    return value


def pointer(uri: str) -> str:
    """The stored text of a payload that lives elsewhere."""
    return dumps({_POINTER: uri})


def pointer_uri(text: str) -> str | None:
    """The URI a stored payload points to, or None when it is inline."""
    if not text.startswith('{"$ref":'):
        return None
    value = json.loads(text)
    if isinstance(value, dict) and len(value) == 1 and isinstance(value.get(_POINTER), str):
        return str(value[_POINTER])
    return None


def encode_time(when: datetime) -> str:
    """ISO-8601 with offset and microseconds."""
    return when.isoformat()


def decode_time(text: str) -> datetime:
    """The datetime of :func:`encode_time`."""
    return datetime.fromisoformat(text)


# -- records ------------------------------------------------------------------------------


_RECORD_FIELDS: dict[type[Any], tuple[Mapping[str, Any], frozenset[str]]] = {}


def _record_fields(cls: type[Any]) -> tuple[Mapping[str, Any], frozenset[str]]:
    """A record class's fields: field -> its default (for those that have one; a factory's
    value is only compared with, never handed out), and the fields without one. Found once per
    class, not per record written or read."""
    found = _RECORD_FIELDS.get(cls)
    if found is None:
        defaults: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            if f.default is not dataclasses.MISSING:
                defaults[f.name] = f.default
            elif f.default_factory is not dataclasses.MISSING:
                defaults[f.name] = f.default_factory()
        required = frozenset(f.name for f in dataclasses.fields(cls)) - set(defaults)
        found = _RECORD_FIELDS[cls] = (MappingProxyType(defaults), required)
    return found


def _encode(record: Any, spec: Mapping[str, Kind]) -> dict[str, Any]:
    # Values equal to the field's default are left out: they decode to the default, and small
    # items cost less to write, read and keep.
    defaults, _ = _record_fields(type(record))
    out: dict[str, Any] = {}
    for field, kind in spec.items():
        value = getattr(record, field)
        name = RENAMED.get(field, field)
        if kind == "usage":
            if value.cost_usd:
                out["cost_usd"] = float(value.cost_usd)
            if value.input_tokens:
                out["input_tokens"] = int(value.input_tokens)
            if value.output_tokens:
                out["output_tokens"] = int(value.output_tokens)
        elif value is None or (
            field in defaults and field not in KEPT and value == defaults[field]
        ):
            continue
        elif kind == "time":
            out[name] = encode_time(value)
        elif kind == "json":
            out[name] = encode_payload(value)
        elif kind == "parent":
            out[name] = dumps(dataclasses.asdict(value))
        elif kind == "int":
            out[name] = int(value)
        elif kind == "bool":
            out[name] = bool(value)
        else:
            out[name] = str(value)
    return out


def _decode(attrs: Mapping[str, Any], spec: Mapping[str, Kind], cls: type[Any]) -> Any:
    _, required = _record_fields(cls)
    kwargs: dict[str, Any] = {}
    for field, kind in spec.items():
        name = RENAMED.get(field, field)
        if kind == "usage":
            kwargs[field] = Usage(
                cost_usd=float(attrs.get("cost_usd") or 0),
                input_tokens=int(attrs.get("input_tokens") or 0),
                output_tokens=int(attrs.get("output_tokens") or 0),
            )
            continue
        value = attrs.get(name)
        if value is None:
            if field in required:
                kwargs[field] = None
            continue  # the dataclass default (None, 0, {} or [])
        if kind == "time":
            kwargs[field] = decode_time(value)
        elif kind == "json":
            kwargs[field] = decode_payload(value)
        elif kind == "parent":
            kwargs[field] = ParentRef(**json.loads(value))
        elif kind == "int":
            kwargs[field] = int(value)
        elif kind == "bool":
            kwargs[field] = bool(value)
        else:
            kwargs[field] = str(value)
    return cls(**kwargs)


FORMAT = 2
"""The format of the records this engine writes, kept on each run item (``fmt``): the run's
step and timeline items are written in the same format. 1 (no ``fmt``): Stepwell 0.1, whose
records this engine reads as they are; 2: 0.2, the same fields (definition versions may bind
their functions). An engine refuses a run of a format newer than it knows."""


class NewerFormat(ValueError):
    """A record written by a newer engine than this one."""


def run_to_attrs(run: RunState) -> dict[str, Any]:
    """The attributes of a run item (keys and index attributes excluded)."""
    return {**_encode(run, RUN_FIELDS), "fmt": FORMAT}


def run_from_attrs(attrs: Mapping[str, Any]) -> RunState:
    """The run of :func:`run_to_attrs` (payloads already resolved)."""
    written = int(attrs.get("fmt") or 1)
    if written > FORMAT:
        raise NewerFormat(
            f"run {attrs.get('run_id')} was written by a newer Stepwell engine (record format "
            f"{written}, this one knows up to {FORMAT}): update this function's Stepwell layer"
        )
    run: RunState = _decode(attrs, RUN_FIELDS, RunState)
    return run


def step_to_attrs(step: StepState) -> dict[str, Any]:
    """The attributes of a step item (keys excluded)."""
    return _encode(step, STEP_FIELDS)


def step_from_attrs(attrs: Mapping[str, Any]) -> StepState:
    """The step of :func:`step_to_attrs` (payloads already resolved)."""
    step: StepState = _decode(attrs, STEP_FIELDS, StepState)
    return step


def entry_to_dict(entry: TimelineEntry) -> dict[str, Any]:
    """A timeline entry as JSON-ready data (defaults left out to keep items small)."""
    out: dict[str, Any] = {"at": encode_time(entry.at), "type": entry.type}
    if entry.step is not None:
        out["step"] = entry.step
    if entry.attempt is not None:
        out["attempt"] = entry.attempt
    if entry.message:
        out["message"] = entry.message
    if entry.data:
        out["data"] = entry.data
    return out


def entry_from_dict(data: Mapping[str, Any]) -> TimelineEntry:
    """The entry of :func:`entry_to_dict`."""
    return TimelineEntry(
        at=decode_time(data["at"]),
        type=data["type"],
        step=data.get("step"),
        attempt=data.get("attempt"),
        message=data.get("message", ""),
        data=dict(data.get("data") or {}),
    )


def encode_entries(entries: list[TimelineEntry]) -> str:
    """The entries of one commit as one JSON payload."""
    return dumps([entry_to_dict(e) for e in entries])


def decode_entries(text: str) -> list[TimelineEntry]:
    """The entries of :func:`encode_entries`."""
    return [entry_from_dict(e) for e in json.loads(text)]


# -- cursors ------------------------------------------------------------------------------


def encode_cursor(kind: str, scope: str, position: Any) -> str:
    """An opaque page cursor (URL-safe base64 of JSON) bound to one listing."""
    body = dumps({"k": kind, "s": scope, "p": position}).encode()
    return base64.urlsafe_b64encode(body).decode().rstrip("=")


def decode_cursor(cursor: str, kind: str, scope: str) -> Any:
    """The position of a cursor of :func:`encode_cursor`; ValueError if it is not one, or
    belongs to another listing."""
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        body = json.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, binascii.Error):
        raise ValueError(f"not a cursor: {cursor!r}") from None
    if not isinstance(body, dict) or body.get("k") != kind or body.get("s") != scope:
        raise ValueError("the cursor belongs to another listing")
    return body["p"]


# -- sizes --------------------------------------------------------------------------------


def value_size(value: Any) -> int:
    """DynamoDB's size of a stored value (strings in UTF-8 bytes; numbers about one byte per
    two digits plus one; maps and lists three bytes plus their contents)."""
    if value is None or isinstance(value, bool):
        return 1
    if isinstance(value, int | float):
        return len(repr(value)) // 2 + 1
    if isinstance(value, str):
        return len(value.encode())
    if isinstance(value, bytes):
        return len(value)
    if isinstance(value, Mapping):
        return 3 + sum(len(str(k).encode()) + 1 + value_size(v) for k, v in value.items())
    if isinstance(value, list | tuple | set | frozenset):
        return 3 + sum(1 + value_size(v) for v in value)
    return len(str(value).encode())


def item_size(attrs: Mapping[str, Any]) -> int:
    """The size DynamoDB counts for an item: attribute names plus values."""
    return sum(len(name.encode()) + value_size(value) for name, value in attrs.items())
