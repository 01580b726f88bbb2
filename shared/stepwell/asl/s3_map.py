"""A distributed Map's items read from S3 (``ItemReader``) and its results written there
(``ResultWriter``), as Step Functions reads and writes them.

The reads and writes are aws steps (the runner calls S3): an object (``s3:getObject``) is read
a ranged chunk at a time and parsed as the chunks arrive, as a JSON array, JSON Lines, CSV or
an S3 inventory (:mod:`stepwell.asl.s3_items`); a listing (``s3:listObjectsV2``) is a record
per page of 1,000 keys. The items then go to the Map as if its input held them (a Map of one
Task: one engine fan-out). The results go to ``PREFIX/MAP_RUN/SUCCEEDED_0.json`` (and
``FAILED_0.json``) with the ``manifest.json`` that lists them, and the Map's result says where.
"""

from __future__ import annotations

import io
import json
import uuid
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stepwell.asl import s3_items
from stepwell.asl.errors import FailedItem, MachineFailed
from stepwell.asl.names import resource
from stepwell.code.context import Context

GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
INPUT_TYPES = ("JSON", "JSONL", "CSV", "MANIFEST")
READER_FIELDS = {"Resource", "ReaderConfig", "Parameters", "Arguments"}
CONFIG_FIELDS = {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems"}
CONFIG_FIELDS |= {"MaxItemsPath"}
WRITER_FIELDS = {"Resource", "Parameters", "Arguments", "WriterConfig"}

Render = Callable[[Any], Any]
"""A Parameters template rendered over the Map's input."""
Problems = list[tuple[tuple[str, ...], str]]
"""Each ``(where in the field, why)``."""


def _unknown(given: dict[str, Any], known: set[str], field: str) -> Problems:
    return [((key,), f"unknown field {key!r} of {field}") for key in given if key not in known]


def check_reader(reader: Any) -> Problems:
    """Problems of an ``ItemReader``, each ``(where in it, why)``."""
    if not isinstance(reader, dict):
        return [((), "ItemReader is an object with Resource, Parameters and ReaderConfig")]
    found = _unknown(reader, READER_FIELDS, "ItemReader")
    written = resource(reader)
    config = reader.get("ReaderConfig") or {}
    if written not in (GET_OBJECT, LIST_OBJECTS):
        found.append(
            (
                ("Resource",),
                f"{written or 'no Resource'}: Stepwell reads items with {GET_OBJECT} (a JSON, "
                f"JSON Lines or CSV object) or {LIST_OBJECTS} (the keys of a prefix)",
            )
        )
    if not isinstance(config, dict):
        return [*found, (("ReaderConfig",), "ReaderConfig is an object")]
    unknown = _unknown(config, CONFIG_FIELDS, "ReaderConfig")
    found += [(("ReaderConfig", *where), why) for where, why in unknown]
    kind = config.get("InputType")
    if written == GET_OBJECT and kind not in INPUT_TYPES:
        found.append(
            (
                ("ReaderConfig", "InputType"),
                f"InputType {kind!r}: an object read with {GET_OBJECT} is one of "
                f"{', '.join(INPUT_TYPES)} (MANIFEST: an S3 inventory's manifest.json)",
            )
        )
    if kind == "CSV" and config.get("CSVHeaderLocation") not in ("FIRST_ROW", "GIVEN"):
        found.append(
            (
                ("ReaderConfig", "CSVHeaderLocation"),
                "a CSV's CSVHeaderLocation is FIRST_ROW or GIVEN",
            )
        )
    delimiter = config.get("CSVDelimiter")
    if delimiter is not None and delimiter not in s3_items.DELIMITERS:
        found.append(
            (
                ("ReaderConfig", "CSVDelimiter"),
                f"CSVDelimiter {delimiter!r}: one of {', '.join(s3_items.DELIMITERS)}",
            )
        )
    most = config.get("MaxItems")
    if most is not None and (isinstance(most, bool) or not isinstance(most, int) or most < 0):
        found.append((("ReaderConfig", "MaxItems"), "MaxItems is a whole number >= 0"))
    return found


def check_writer(writer: Any) -> Problems:
    """Problems of a ``ResultWriter``."""
    if not isinstance(writer, dict):
        return [((), "ResultWriter is an object with Resource and Parameters")]
    found = _unknown(writer, WRITER_FIELDS, "ResultWriter")
    if "Resource" in writer and resource(writer) != PUT_OBJECT:
        found.append((("Resource",), f"a ResultWriter's Resource is {PUT_OBJECT}"))
    return found


def read(ctx: Context, step: str, reader: dict[str, Any], render: Render) -> list[Any]:
    """The items an ItemReader gives (at most ``ReaderConfig.MaxItems``), read as they are
    parsed (:mod:`stepwell.asl.s3_items`)."""
    given = render(reader.get("Parameters") or reader.get("Arguments") or {})
    if not isinstance(given, dict):
        raise MachineFailed(
            "States.Runtime", f"Map {step!r}: ItemReader's Parameters must be an object"
        )
    config = reader.get("ReaderConfig") or {}
    most = _max_items(step, config, render)
    name = f"{step} reader"
    if resource(reader) == LIST_OBJECTS:
        return _listed(ctx, name, given, most)
    if config.get("InputType") == "MANIFEST":
        return s3_items.inventory(ctx, name, given, most)
    return s3_items.parse(s3_items.chunks(ctx, name, given), config, most)


def _max_items(step: str, config: dict[str, Any], render: Render) -> int:
    """``MaxItems``, or ``MaxItemsPath`` read from the state's input: 0 reads every item."""
    most = config.get("MaxItems")
    if "MaxItemsPath" in config:
        most = render({"most.$": config["MaxItemsPath"]})["most"]
    if most is None:
        return 0
    if isinstance(most, bool) or not isinstance(most, int) or most < 0:
        raise MachineFailed(
            "States.Runtime",
            f"Map {step!r}: ReaderConfig's MaxItems must be a whole number >= 0, not {most!r}",
        )
    return most


def _listed(ctx: Context, name: str, given: dict[str, Any], most: int) -> list[Any]:
    """A prefix's objects, a page at a time, as Step Functions gives them."""
    items: list[Any] = []
    page: dict[str, Any] = dict(given)
    while True:
        listed = ctx.aws(name, "s3", "listObjectsV2", page)
        for entry in listed.get("Contents") or []:
            items.append(
                {
                    "Etag": entry.get("ETag"),
                    "Key": entry.get("Key"),
                    "LastModified": entry.get("LastModified"),
                    "Size": entry.get("Size"),
                    "StorageClass": entry.get("StorageClass"),
                }
            )
        token = listed.get("NextContinuationToken")
        if not token or (most and len(items) >= most):
            return items[:most] if most else items
        page = {**given, "ContinuationToken": token}


def write(
    ctx: Context,
    step: str,
    writer: dict[str, Any],
    render: Render,
    machine: str,
    inputs: list[Any],
    results: list[Any],
    started: datetime | None = None,
) -> dict[str, Any]:
    """Write the Map's results as Step Functions does and return what the Map gives: its map
    run and where the manifest is. A FailedItem is an item that failed (tolerated);
    ``started`` is when the Map began its items (now, when not given)."""
    given = render(writer.get("Parameters") or writer.get("Arguments") or {})
    bucket = given.get("Bucket") if isinstance(given, dict) else None
    if not isinstance(bucket, str):
        raise MachineFailed(
            "States.ResultWriterFailed", f"Map {step!r}: ResultWriter needs a Bucket"
        )
    run = str(ctx.uuid())
    arn = f"arn:aws:states:::mapRun:{machine}/{step}:{run}"
    prefix = str(given.get("Prefix") or "").strip("/")
    folder = f"{prefix}/{run}" if prefix else run
    files: dict[str, list[dict[str, Any]]] = {"FAILED": [], "PENDING": [], "SUCCEEDED": []}
    stopped = _date(ctx.now())
    begun = _date(started) if started is not None else stopped
    child = Child(f"arn:aws:states:::execution:{machine}/{step}", uuid.UUID(run), begun, stopped)
    for status in ("SUCCEEDED", "FAILED"):
        entries = (
            child.entry(index, given_input, result)
            for index, (given_input, result) in enumerate(zip(inputs, results, strict=True))
            if isinstance(result, FailedItem) == (status == "FAILED")
        )
        body = _array(entries)
        if body != "[]":
            key = f"{folder}/{status}_0.json"
            _put(ctx, f"{step} results", bucket, key, body)
            files[status].append({"Key": key, "Size": len(body.encode())})
    manifest = {"DestinationBucket": bucket, "MapRunArn": arn, "ResultFiles": files}
    key = f"{folder}/manifest.json"
    _put(ctx, f"{step} results", bucket, key, json.dumps(manifest, separators=(",", ":")))
    return {"MapRunArn": arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}


@dataclass(frozen=True)
class Child:
    """The child executions of one map run, as its result files describe them: each item's
    ``ExecutionArn`` is ``machine`` and the Map's name with the child's ``Name`` (a UUID of
    the map run and the item's index); ``StartDate`` and ``StopDate`` are the map run's (the
    replay keeps no time per item)."""

    machine: str
    run: uuid.UUID
    started: str
    stopped: str

    def entry(self, index: int, given: Any, result: Any) -> dict[str, Any]:
        """Item ``index``'s entry of ``SUCCEEDED_n.json``, or of ``FAILED_n.json`` for a
        FailedItem."""
        name = str(uuid.uuid5(self.run, str(index)))
        entry: dict[str, Any] = {
            "ExecutionArn": f"{self.machine}:{name}",
            "Input": json.dumps(given, separators=(",", ":")),
            "InputDetails": {"Included": True},
            "Name": name,
        }
        status = "SUCCEEDED"
        if isinstance(result, FailedItem):
            # As DescribeExecution tells a failed execution: its error (none for a Fail state
            # without one) and cause, no output.
            named = {"Error": result.error} if result.error is not None else {}
            entry = {"Cause": result.cause} | named | entry
            status = "FAILED"
        else:
            entry["Output"] = json.dumps(result, separators=(",", ":"))
            entry["OutputDetails"] = {"Included": True}
        return entry | {"StartDate": self.started, "Status": status, "StopDate": self.stopped}


def _date(moment: datetime) -> str:
    """A date as Step Functions writes it in a result file: UTC, milliseconds, ``Z``."""
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _array(entries: Iterable[dict[str, Any]]) -> str:
    """The entries as one JSON array, each written as it is made (never a list of them all)."""
    text = io.StringIO()
    for entry in entries:
        text.write("," if text.tell() else "[")
        text.write(json.dumps(entry, separators=(",", ":")))
    return text.getvalue() + "]" if text.tell() else "[]"


def _put(ctx: Context, name: str, bucket: str, key: str, body: str) -> None:
    ctx.aws(name, "s3", "putObject", {"Bucket": bucket, "Key": key, "Body": body})
