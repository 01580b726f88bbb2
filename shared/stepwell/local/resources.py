"""The template's resources created in moto (in process), from their own definitions.

Tables and buckets are created by :func:`stepwell.store.tables.create_from_template` (the same
keys, indexes, TTL and encryption as deployed); queues with their attributes and redrive
policy; event buses and schedule groups by name; secrets with a value generated the way
CloudFormation's ``GenerateSecretString`` would. IAM roles, layers and APIs need nothing in
moto: their names and ARNs are enough.
"""

from __future__ import annotations

import json
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


def create_secrets(template: Template, resolver: Resolver, region: str) -> dict[str, Physical]:
    """Create the template's secrets; returns their physical identity (the ARN is moto's)."""
    client = boto3.client("secretsmanager", region_name=region)
    created: dict[str, Physical] = {}
    for logical_id in template.of_type("AWS::SecretsManager::Secret"):
        if not resolver.active(logical_id):
            continue
        props = resolver.resolve(template.properties(logical_id)) or {}
        name = str(props.get("Name") or f"{resolver.stack}-{logical_id}")
        if "SecretString" in props:
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
            template_path,
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
