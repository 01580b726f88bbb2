"""The template's resources created in moto (in process), from their own definitions.

Tables and buckets are created by :func:`stepwell.store.tables.create_from_template` (the same
keys, indexes, TTL and encryption as deployed); queues with their attributes and redrive
policy; event buses and schedule groups by name; secrets with a value generated the way
CloudFormation's ``GenerateSecretString`` would. IAM roles, layers and APIs need nothing in
moto: their names and ARNs are enough.

While the stack runs, the process's environment holds fake credentials and none of the
settings that would send boto3 to AWS (:func:`environ`), and moto answers one request at a
time.
"""

from __future__ import annotations

import json
import os
import secrets
import string
import threading
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from pathlib import Path
from typing import Any

import boto3

from stepwell.local.template import Physical, QueueSpec, Resolver, Template
from stepwell.store.tables import create_from_template

FAKE_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "stepwell-local",
    "AWS_SECRET_ACCESS_KEY": "stepwell-local",
    "AWS_SESSION_TOKEN": "stepwell-local",
}
_PUNCTUATION = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"


AWS_SETTINGS = (
    "AWS_PROFILE",
    "AWS_DEFAULT_PROFILE",
    "AWS_ENDPOINT_URL",
    "AWS_ENDPOINT_URL_DYNAMODB",
    "AWS_ENDPOINT_URL_S3",
    "AWS_ENDPOINT_URL_SQS",
    "AWS_ENDPOINT_URL_LAMBDA",
    "AWS_ENDPOINT_URL_EVENTBRIDGE",
    "AWS_ENDPOINT_URL_SCHEDULER",
    "AWS_ENDPOINT_URL_SECRETS_MANAGER",
    "AWS_ROLE_ARN",
    "AWS_WEB_IDENTITY_TOKEN_FILE",
    "AWS_CONTAINER_CREDENTIALS_RELATIVE_URI",
    "AWS_CONTAINER_CREDENTIALS_FULL_URI",
)
"""What the environment may hold that would send boto3 to AWS: dropped while the stack runs."""


@contextmanager
def environ(values: Mapping[str, str], drop: tuple[str, ...] = ()) -> Iterator[None]:
    """Set (and drop) environment variables; put them back as they were on exit."""
    saved = {k: os.environ.get(k) for k in (*values, *drop)}
    for key in drop:
        os.environ.pop(key, None)
    os.environ.update(values)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def generate_secret_string(spec: Mapping[str, Any]) -> str:
    """A value as ``GenerateSecretString`` makes it (length, excluded characters, template)."""
    length = int(spec.get("PasswordLength", 32))
    pools = {
        "upper": "" if spec.get("ExcludeUppercase") else string.ascii_uppercase,
        "lower": "" if spec.get("ExcludeLowercase") else string.ascii_lowercase,
        "digits": "" if spec.get("ExcludeNumbers") else string.digits,
        "punctuation": "" if spec.get("ExcludePunctuation") else _PUNCTUATION,
        "space": " " if spec.get("IncludeSpace") else "",
    }
    excluded = set(str(spec.get("ExcludeCharacters", "")))
    pools = {k: "".join(c for c in v if c not in excluded) for k, v in pools.items()}
    alphabet = "".join(pools.values())
    if not alphabet or length < 1:
        raise ValueError("GenerateSecretString leaves no characters to choose from")
    chosen = [secrets.choice(alphabet) for _ in range(length)]
    if spec.get("RequireEachIncludedType", True):
        for index, pool in enumerate(p for p in pools.values() if p):
            if index < length and not any(c in pool for c in chosen):
                chosen[secrets.randbelow(length)] = secrets.choice(pool)
    value = "".join(chosen)
    template, key = spec.get("SecretStringTemplate"), spec.get("GenerateStringKey")
    if template is not None and key:
        document = json.loads(template) if isinstance(template, str) else dict(template)
        document[key] = value
        return json.dumps(document)
    return value


_SERIAL = threading.RLock()
_LOADER: Any = None


def use_default_session(region: str) -> None:
    """A fresh boto3 default session (moto clears it while mocking) that shares one botocore
    data loader with every stack this process starts: the service models are read once per
    process instead of once per stack."""
    import botocore.loaders
    import botocore.session

    global _LOADER
    if _LOADER is None:
        _LOADER = botocore.loaders.create_loader()
    core = botocore.session.get_session()
    core.register_component("data_loader", _LOADER)
    boto3.setup_default_session(botocore_session=core, region_name=region)


@contextmanager
def serialized_moto() -> Iterator[None]:
    """Handle moto requests one at a time while inside.

    moto's backends are not thread-safe (a cancelled DynamoDB transaction restores a copy of the
    table it took earlier, wiping what other threads wrote meanwhile), while DynamoDB applies
    each request atomically. The local stack runs many invocations at once, so requests to moto
    are serialized, as one DynamoDB endpoint would; everything around them stays concurrent.
    """
    from moto.core.botocore_stubber import BotocoreStubber

    original = BotocoreStubber.__call__

    def one_at_a_time(self: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
        with _SERIAL:
            return original(self, event_name, request, **kwargs)

    BotocoreStubber.__call__ = one_at_a_time  # type: ignore[method-assign]
    try:
        yield
    finally:
        BotocoreStubber.__call__ = original  # type: ignore[method-assign]


@contextmanager
def moto_held() -> Iterator[None]:
    """No other thread reaches moto while inside: what this thread reads of several services
    in a row is one consistent picture (see :func:`serialized_moto`)."""
    with _SERIAL:
        yield


@contextmanager
def item_sized_transactions() -> Iterator[None]:
    """moto's TransactWriteItems at DynamoDB's cost while inside.

    moto (5.x) deep-copies the whole table before a transaction, to put it back if the
    transaction is cancelled: O(items in the table) per request, so a run's commits slow down
    as the table fills and memory churns. DynamoDB has no such cost. Inside, moto's transaction
    code and semantics are kept, but it copies only the items the transaction names and puts
    exactly those back when it is cancelled. Requests must be serialized (:func:`serialized_moto`)
    so that nothing else changes those items meanwhile.
    """
    import copy
    import importlib

    from moto.dynamodb.models.table import Table

    backend: Any = importlib.import_module("moto.dynamodb.models")

    original = backend.DynamoDBBackend.transact_write_items
    real_copy = backend.copy

    class UncopiedTables:
        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact(self: Any, transact_items: list[dict[str, Any]]) -> Any:
        saved = []
        for entry in transact_items:
            ((_, op),) = entry.items()
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            if "Key" in op:
                keys = op["Key"]
            else:
                names = [table.hash_key_attr, table.range_key_attr]
                keys = {name: op["Item"][name] for name in names if name and name in op["Item"]}
            hash_key, range_key = self.get_keys_value(table, keys)
            saved.append(
                (table, hash_key, range_key, copy.deepcopy(table.get_item(hash_key, range_key)))
            )
        backend.copy = UncopiedTables
        try:
            return original(self, transact_items)
        except Exception:
            for table, hash_key, range_key, item in reversed(saved):
                if item is not None:
                    if range_key is None:
                        table.items[hash_key] = item
                    else:
                        table.items[hash_key][range_key] = item
                elif table.get_item(hash_key, range_key) is not None:
                    table.delete_item(hash_key, range_key)
            raise
        finally:
            backend.copy = real_copy

    backend.DynamoDBBackend.transact_write_items = transact
    try:
        yield
    finally:
        backend.DynamoDBBackend.transact_write_items = original


def create_secrets(
    template: Template, resolver: Resolver, region: str, values: Mapping[str, str] | None = None
) -> dict[str, Physical]:
    """Create the template's secrets; returns their physical identity (the ARN is moto's).
    ``values`` gives secrets a value they had before (saved local state), by logical id."""
    client = boto3.client("secretsmanager", region_name=region)
    created: dict[str, Physical] = {}
    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        if not resolver.active(logical_id):
            continue
        props = resolver.resolve(template.properties(logical_id)) or {}
        name = str(props.get("Name") or f"{resolver.stack}-{logical_id}")
        if values and logical_id in values:
            value = values[logical_id]
        elif "SecretString" in props:
            value = str(props["SecretString"])
        else:
            value = generate_secret_string(props.get("GenerateSecretString") or {})
        request: dict[str, Any] = {"Name": name, "SecretString": value}
        if props.get("Description"):
            request["Description"] = str(props["Description"])
        arn = client.create_secret(**request)["ARN"]
        created[logical_id] = Physical(arn, {"Id": arn, "Name": name})
    return created


def create_resources(
    template: Template,
    template_path: Path,
    resolver: Resolver,
    physical: Mapping[str, Physical],
    queue_specs: list[QueueSpec],
    region: str,
) -> list[QueueSpec]:
    """Create tables, buckets, queues, buses and schedule groups in moto; returns the queues
    as moto named them (their URLs)."""
    names = {
        logical_id: physical[logical_id].ref
        for logical_id in (
            *template.of_type("AWS::DynamoDB::Table"),
            *template.of_type("AWS::S3::Bucket"),
        )
        if logical_id in physical
    }
    if names:
        create_from_template(
            template.document,
            boto3.client("dynamodb", region_name=region),
            boto3.client("s3", region_name=region),
            names,
        )
    sqs = boto3.client("sqs", region_name=region)
    created: list[QueueSpec] = []
    for spec in queue_specs:
        attributes: Any = spec.attributes
        url = sqs.create_queue(QueueName=spec.name, Attributes=attributes)["QueueUrl"]
        created.append(replace(spec, url=url) if url != spec.url else spec)
    events = boto3.client("events", region_name=region)
    for logical_id in template.of_type("AWS::Events::EventBus"):
        if logical_id in physical:
            events.create_event_bus(Name=physical[logical_id].ref)
    scheduler = boto3.client("scheduler", region_name=region)
    for logical_id in template.of_type("AWS::Scheduler::ScheduleGroup"):
        if logical_id in physical:
            scheduler.create_schedule_group(Name=physical[logical_id].ref)
    return created
