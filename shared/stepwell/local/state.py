"""Durable local state: what ``stepwell dev`` keeps in a folder (``.stepwell/``) so that runs
outlive the process.

A snapshot holds what a deployed stack keeps in AWS and the local stack keeps in memory: every
item of the template's tables, every object of its buckets, the values of its secrets (so an
approval link signed before a restart still verifies), the messages of its queues (delayed
timers), the schedules created through the Scheduler API (long timers), the clock (virtual time
resumes where it stopped) and the asynchronous invocations Lambda had accepted but not yet
started. Everything goes through the services' own APIs (Scan, BatchWriteItem, GetObject,
PutObject ...), so the file does not depend on how moto keeps things.

A snapshot is one JSON file, replaced atomically (written aside, then renamed): a crash while
saving leaves the previous one. ``stepwell dev`` saves when it stops (after letting running
invocations finish) and, while it runs, every few seconds after something changed, so a killed
process loses at most the last seconds.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

FILE = "state.json"
FORMAT = 1
"""The snapshot's layout; a file of another format is refused with a message, not misread."""

_BATCH = 25
"""Items per BatchWriteItem (DynamoDB's limit)."""


class StateError(ValueError):
    """The state folder holds something that is not a snapshot this Stepwell can read."""


@dataclass
class Snapshot:
    """Everything the local stack keeps between runs of ``stepwell dev``."""

    saved_at: str = ""
    """When it was saved, on the stack's clock (ISO 8601)."""
    virtual: bool = False
    """Whether the clock was virtual (a virtual clock resumes at ``saved_at``)."""
    tables: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Table name -> its items, in DynamoDB's JSON (``{"pk": {"S": "..."}}``)."""
    buckets: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Bucket name -> its objects (``key``, ``body`` base64, ``content_type``, ``metadata``)."""
    secrets: dict[str, str] = field(default_factory=dict)
    """Logical id of a secret in the template -> its value."""
    queues: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    """Queue name -> its messages (see :meth:`stepwell.local.queues.LocalQueue.snapshot`)."""
    schedules: list[dict[str, Any]] = field(default_factory=list)
    """Schedules created through the Scheduler API (the template's are made again from it)."""
    rules: list[dict[str, Any]] = field(default_factory=list)
    """EventBridge rules made through the API, with their targets (the template's are made
    again from it)."""
    invocations: list[dict[str, Any]] = field(default_factory=list)
    """Asynchronous invocations accepted and never begun (``function``, ``payload``, ``source``)."""

    def counts(self) -> dict[str, int]:
        """How much it holds, for the line ``stepwell dev`` prints."""
        return {
            "items": sum(len(items) for items in self.tables.values()),
            "objects": sum(len(objects) for objects in self.buckets.values()),
            "messages": sum(len(messages) for messages in self.queues.values()),
            "schedules": len(self.schedules),
            "invocations": len(self.invocations),
        }


def read(folder: Path) -> Snapshot | None:
    """The snapshot saved in ``folder`` (None when there is none yet)."""
    path = folder / FILE
    if not path.exists():
        return None
    try:
        document = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise StateError(f"{path}: cannot read the saved state ({exc})") from None
    if not isinstance(document, dict) or document.get("format") != FORMAT:
        raise StateError(
            f"{path}: not a state file of this Stepwell (format {FORMAT} expected); "
            "move it away or start clean with --fresh"
        )
    fields = {k: v for k, v in document.items() if k != "format"}
    try:
        return Snapshot(**fields)
    except TypeError as exc:
        raise StateError(f"{path}: {exc}; start clean with --fresh") from None


def write(folder: Path, snapshot: Snapshot) -> Path:
    """Save ``snapshot`` in ``folder``, replacing the last one atomically."""
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / FILE
    aside = folder / f".{FILE}.{os.getpid()}.tmp"
    aside.write_text(json.dumps({"format": FORMAT, **asdict(snapshot)}), encoding="utf-8")
    os.replace(aside, path)
    return path


def clear(folder: Path) -> None:
    """Forget the saved state (``--fresh``)."""
    (folder / FILE).unlink(missing_ok=True)


# -- DynamoDB ----------------------------------------------------------------------------------
def dump_tables(dynamodb: Any, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every item of each table, by Scan."""
    tables: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        items: list[dict[str, Any]] = []
        for page in dynamodb.get_paginator("scan").paginate(TableName=name):
            items.extend(page["Items"])
        tables[name] = items
    return tables


def load_tables(dynamodb: Any, tables: Mapping[str, list[dict[str, Any]]]) -> None:
    """Put the items back, into tables the template has just created (others are ignored: a
    table the template no longer has)."""
    existing = set(dynamodb.list_tables()["TableNames"])
    for name, items in tables.items():
        if name not in existing:
            continue
        for start in range(0, len(items), _BATCH):
            requests = [{"PutRequest": {"Item": item}} for item in items[start : start + _BATCH]]
            pending: dict[str, Any] = {name: requests}
            while pending:
                pending = dynamodb.batch_write_item(RequestItems=pending).get(
                    "UnprocessedItems", {}
                )


# -- S3 ----------------------------------------------------------------------------------------
def dump_buckets(s3: Any, names: Iterable[str]) -> dict[str, list[dict[str, Any]]]:
    """Every object of each bucket, with its content type and metadata."""
    buckets: dict[str, list[dict[str, Any]]] = {}
    for name in names:
        objects: list[dict[str, Any]] = []
        for page in s3.get_paginator("list_objects_v2").paginate(Bucket=name):
            for entry in page.get("Contents", []):
                found = s3.get_object(Bucket=name, Key=entry["Key"])
                objects.append(
                    {
                        "key": entry["Key"],
                        "body": base64.b64encode(found["Body"].read()).decode(),
                        "content_type": found.get("ContentType") or "binary/octet-stream",
                        "metadata": dict(found.get("Metadata") or {}),
                    }
                )
        buckets[name] = objects
    return buckets


def load_buckets(s3: Any, buckets: Mapping[str, list[dict[str, Any]]]) -> None:
    """Put the objects back, into buckets the template has just created."""
    existing = {b["Name"] for b in s3.list_buckets().get("Buckets", [])}
    for name, objects in buckets.items():
        if name not in existing:
            continue
        for entry in objects:
            s3.put_object(
                Bucket=name,
                Key=entry["key"],
                Body=base64.b64decode(entry["body"]),
                ContentType=entry["content_type"],
                Metadata=entry["metadata"],
            )


# -- Secrets Manager ---------------------------------------------------------------------------
def dump_secrets(secretsmanager: Any, arns: Mapping[str, str]) -> dict[str, str]:
    """The value of each secret, by the logical id it has in the template."""
    return {
        logical_id: str(secretsmanager.get_secret_value(SecretId=arn)["SecretString"])
        for logical_id, arn in arns.items()
    }


@dataclass(frozen=True)
class Kept:
    """The resources of a stack that a snapshot covers, by their local names."""

    tables: tuple[str, ...]
    buckets: tuple[str, ...]
    secrets: Mapping[str, str]
    """Logical id -> ARN."""


def capture(kept: Kept, region: str) -> tuple[dict[str, Any], dict[str, Any], dict[str, str]]:
    """The items, objects and secret values of ``kept`` (callers hold moto still meanwhile, so
    that the three agree)."""
    import boto3

    return (
        dump_tables(boto3.client("dynamodb", region_name=region), kept.tables),
        dump_buckets(boto3.client("s3", region_name=region), kept.buckets),
        dump_secrets(boto3.client("secretsmanager", region_name=region), kept.secrets),
    )


def put_back(snapshot: Snapshot, region: str) -> None:
    """The items and objects of ``snapshot``, into the tables and buckets just created."""
    import boto3

    load_tables(boto3.client("dynamodb", region_name=region), snapshot.tables)
    load_buckets(boto3.client("s3", region_name=region), snapshot.buckets)
