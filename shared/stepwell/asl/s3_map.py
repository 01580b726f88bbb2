"""A distributed Map's items read from S3 (``ItemReader``) and its results written there
(``ResultWriter``), as Step Functions reads and writes them.

The reads and writes are aws steps (the runner calls S3): an object (``s3:getObject``) is one
record, parsed here as a JSON array, JSON Lines or CSV; a listing (``s3:listObjectsV2``) is a
record per page of 1,000 keys. The items then go to the Map as if its input held them (a Map
of one Task: one engine fan-out). The results go to ``PREFIX/MAP_RUN/SUCCEEDED_0.json`` (and
``FAILED_0.json``) with the ``manifest.json`` that lists them, and the Map's result says where.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Callable, Iterator
from itertools import islice
from typing import Any

from stepwell.asl.errors import MachineFailed
from stepwell.asl.names import resource
from stepwell.code.context import Context

GET_OBJECT = "arn:aws:states:::s3:getObject"
LIST_OBJECTS = "arn:aws:states:::s3:listObjectsV2"
PUT_OBJECT = "arn:aws:states:::s3:putObject"
INPUT_TYPES = ("JSON", "JSONL", "CSV")
READER_FIELDS = {"Resource", "ReaderConfig", "Parameters", "Arguments"}
CONFIG_FIELDS = {"InputType", "CSVHeaderLocation", "CSVHeaders", "CSVDelimiter", "MaxItems"}
WRITER_FIELDS = {"Resource", "Parameters", "Arguments", "WriterConfig"}
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}

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
                f"InputType {kind!r}: Stepwell reads {', '.join(INPUT_TYPES)} objects (an S3 "
                "inventory MANIFEST is not run yet: list its objects with s3:listObjectsV2)",
            )
        )
    if kind == "CSV" and config.get("CSVHeaderLocation") not in ("FIRST_ROW", "GIVEN"):
        found.append(
            (
                ("ReaderConfig", "CSVHeaderLocation"),
                "a CSV's CSVHeaderLocation is FIRST_ROW or GIVEN",
            )
        )
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
    """The items an ItemReader gives (at most ``ReaderConfig.MaxItems``)."""
    given = render(reader.get("Parameters") or reader.get("Arguments") or {})
    if not isinstance(given, dict):
        raise MachineFailed(
            "States.Runtime", f"Map {step!r}: ItemReader's Parameters must be an object"
        )
    config = reader.get("ReaderConfig") or {}
    most = int(config.get("MaxItems") or 0)
    if resource(reader) == LIST_OBJECTS:
        return _listed(ctx, f"{step} reader", given, most)
    body = ctx.aws(f"{step} reader", "s3", "getObject", given).get("Body") or ""
    return parse(str(body), config, most)


def parse(text: str, config: dict[str, Any], most: int = 0) -> list[Any]:
    """An object's items: a JSON array, JSON Lines (one value a line) or CSV rows (objects
    keyed by the header: the first row, or ``CSVHeaders``; every value a string)."""
    kind = config.get("InputType")
    values: Iterator[Any]
    try:
        if kind == "JSON":
            whole = json.loads(text)
            if not isinstance(whole, list):
                raise ValueError("the object is not a JSON array")
            values = iter(whole)
        elif kind == "JSONL":
            values = (json.loads(line) for line in io.StringIO(text) if line.strip())
        else:
            delimiter = DELIMITERS.get(str(config.get("CSVDelimiter") or "COMMA"), ",")
            rows = csv.reader(io.StringIO(text), delimiter=delimiter)
            given = config.get("CSVHeaderLocation") == "GIVEN"
            header = list(config.get("CSVHeaders") or []) if given else next(rows, [])
            values = (dict(zip(header, row, strict=False)) for row in rows)
        return list(islice(values, most or None))
    except (ValueError, csv.Error) as exc:
        raise MachineFailed("States.ItemReaderFailed", f"the {kind} object: {exc}") from None


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
) -> dict[str, Any]:
    """Write the Map's results as Step Functions does and return what the Map gives: its map
    run and where the manifest is. A result of None is an item that failed (tolerated)."""
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
    for status in ("SUCCEEDED", "FAILED"):
        entries = [
            _entry(status, given_input, result)
            for given_input, result in zip(inputs, results, strict=True)
            if (result is None) == (status == "FAILED")
        ]
        if entries:
            key = f"{folder}/{status}_0.json"
            body = json.dumps(entries, separators=(",", ":"))
            _put(ctx, f"{step} results", bucket, key, body)
            files[status].append({"Key": key, "Size": len(body.encode())})
    manifest = {"DestinationBucket": bucket, "MapRunArn": arn, "ResultFiles": files}
    key = f"{folder}/manifest.json"
    _put(ctx, f"{step} results", bucket, key, json.dumps(manifest, separators=(",", ":")))
    return {"MapRunArn": arn, "ResultWriterDetails": {"Bucket": bucket, "Key": key}}


def _entry(status: str, given: Any, result: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "Input": json.dumps(given, separators=(",", ":")),
        "InputDetails": {"Included": True},
        "Status": status,
    }
    if status == "SUCCEEDED":
        entry["Output"] = json.dumps(result, separators=(",", ":"))
        entry["OutputDetails"] = {"Included": True}
    return entry


def _put(ctx: Context, name: str, bucket: str, key: str, body: str) -> None:
    ctx.aws(name, "s3", "putObject", {"Bucket": bucket, "Key": key, "Body": body})
