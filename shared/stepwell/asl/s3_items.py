"""The items of an S3 object, read a chunk at a time as Step Functions' ``ItemReader`` reads
them: a JSON array item by item (``ijson``), JSON Lines and CSV line by line, an S3 inventory
through its ``manifest.json`` and its gzipped CSV files.

Each chunk is one ranged ``s3:getObject`` (an aws step: the runner holds one chunk, never the
whole object), and the items are parsed as the chunks arrive, so ``MaxItems`` stops the reading
(a 100,000-line object of which 10 items are wanted is read up to its tenth item). A chunk's
bytes arrive as the aws step gives a body: its text, or base64 when they are not UTF-8 (a chunk
that ends inside a character, a gzipped file); ``ContentLength`` tells which.
"""

from __future__ import annotations

import base64
import codecs
import csv
import json
import zlib
from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any

import ijson

from stepwell.asl.errors import MachineFailed
from stepwell.code.context import Context
from stepwell.code.errors import StepFailed

CHUNK = 1024 * 1024
"""Bytes one ranged read takes."""
DELIMITERS = {"COMMA": ",", "PIPE": "|", "SEMICOLON": ";", "SPACE": " ", "TAB": "\t"}
READER_FAILED = "States.ItemReaderFailed"


def chunks(ctx: Context, name: str, given: dict[str, Any]) -> Iterator[bytes]:
    """The object ``given`` names (``Bucket``, ``Key``, ...), a range of :data:`CHUNK` bytes
    at a time, each read (an aws step ``name``) only when the previous one is consumed."""
    start = 0
    while True:
        asked = {**given, "Range": f"bytes={start}-{start + CHUNK - 1}"}
        try:
            got = ctx.aws(name, "s3", "getObject", asked)
        except StepFailed as failed:
            if start == 0 and "InvalidRange" in failed.error_type:
                return  # an empty object has no first byte to range over
            raise
        body = _bytes(got)
        yield body
        start += len(body)
        total = _total(got.get("ContentRange"))
        if not body or total is None or start >= total:
            return


def lines(chunks: Iterable[bytes]) -> Iterator[str]:
    """The text of ``chunks`` (UTF-8, a character split between two chunks whole), a line at a
    time with its end."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    rest = ""
    for chunk in chunks:
        parts = (rest + decoder.decode(chunk)).split("\n")
        rest = parts.pop()
        yield from (part + "\n" for part in parts)
    rest += decoder.decode(b"", final=True)
    if rest:
        yield rest


def gunzipped(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """A gzipped object's bytes, decompressed as its chunks arrive."""
    decompressor = zlib.decompressobj(wbits=zlib.MAX_WBITS | 16)
    for chunk in chunks:
        yield decompressor.decompress(chunk)
    yield decompressor.flush()


def parse(data: Iterable[bytes], config: dict[str, Any], most: int = 0) -> list[Any]:
    """An object's items from its bytes as they arrive: a JSON array, JSON Lines (one value a
    line) or CSV rows (objects keyed by the header: the first row, or ``CSVHeaders``; every
    value a string); at most ``most`` (0: all), reading no chunk past the last item."""
    kind = config.get("InputType")
    values = array(data) if kind == "JSON" else _rows(lines(data), config)
    return _first(values, most, kind)


def array(data: Iterable[bytes]) -> Iterator[Any]:
    """The values of a JSON array, each as soon as its last byte arrived."""
    found = ijson.sendable_list()
    parser = ijson.items_coro(found, "item", use_float=True)
    opened = False
    for chunk in data:
        if not opened and chunk.strip():
            opened = True
            if not chunk.lstrip().startswith(b"["):
                raise ValueError("the object is not a JSON array")
        parser.send(chunk)
        yield from found
        del found[:]
    parser.close()  # an array cut short fails here
    yield from found
    if not opened:
        raise ValueError("the object is empty, not a JSON array")


def _rows(text: Iterable[str], config: dict[str, Any]) -> Iterator[Any]:
    if config.get("InputType") == "JSONL":
        return (json.loads(line) for line in text if line.strip())
    delimiter = DELIMITERS.get(str(config.get("CSVDelimiter") or "COMMA"), ",")
    rows = csv.reader(text, delimiter=delimiter)
    given = config.get("CSVHeaderLocation") == "GIVEN"
    header = list(config.get("CSVHeaders") or []) if given else next(rows, [])
    return (dict(zip(header, row, strict=False)) for row in rows)


def _first(values: Iterator[Any], most: int, kind: Any) -> list[Any]:
    """At most ``most`` (0: all) of ``values``; a value that does not parse fails the reader."""
    try:
        return list(islice(values, most or None))
    except (ValueError, csv.Error, zlib.error, ijson.JSONError) as exc:
        raise MachineFailed(READER_FAILED, f"the {kind} object: {exc}") from None


def inventory(ctx: Context, name: str, given: dict[str, Any], most: int = 0) -> list[Any]:
    """The objects an S3 inventory lists: its ``manifest.json`` (``given`` names it), then
    each of its CSV files (gzipped) in order, a row an item keyed by the manifest's
    ``fileSchema``, every value a string."""
    where = f"s3://{given.get('Bucket')}/{given.get('Key')}"
    try:
        manifest = json.loads(b"".join(chunks(ctx, name, given)))
        schema = [column.strip() for column in str(manifest["fileSchema"]).split(",")]
        bucket = str(manifest["destinationBucket"]).rsplit(":", 1)[-1]
        files = [str(entry["key"]) for entry in manifest["files"]]
        form = manifest.get("fileFormat")
    except (ValueError, KeyError, TypeError) as exc:
        raise MachineFailed(
            READER_FAILED, f"the S3 inventory manifest {where} is not one: {exc}"
        ) from None
    if form != "CSV":
        raise MachineFailed(
            READER_FAILED,
            f"the S3 inventory {where} is in {form}: Step Functions reads CSV inventories only",
        )

    def rows() -> Iterator[str]:
        for key in files:
            data = chunks(ctx, name, {"Bucket": bucket, "Key": key})
            yield from lines(gunzipped(data) if key.endswith(".gz") else data)

    config = {"InputType": "CSV", "CSVHeaderLocation": "GIVEN", "CSVHeaders": schema}
    return _first(_rows(rows(), config), most, "CSV")


def _bytes(response: Any) -> bytes:
    body = str(response.get("Body") or "")
    raw = body.encode()
    length = response.get("ContentLength")
    if isinstance(length, int) and len(raw) != length:
        return base64.b64decode(body)
    return raw


def _total(content_range: Any) -> int | None:
    """The object's size from ``bytes START-END/SIZE`` (None: the whole object came)."""
    if not isinstance(content_range, str) or "/" not in content_range:
        return None
    size = content_range.rsplit("/", 1)[1]
    return int(size) if size.isdigit() else None
