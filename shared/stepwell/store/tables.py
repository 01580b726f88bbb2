"""Create the table and the payload bucket from template.yaml, so tests and the local stack use
the very definition that is deployed and cannot drift from it.

Deployed stacks get their table and bucket from CloudFormation; no Lambda ever creates them.
"""

from __future__ import annotations

import copy
import functools
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar

TABLE_TYPE = "AWS::DynamoDB::Table"
BUCKET_TYPE = "AWS::S3::Bucket"
_TABLE_KEYS = (
    "AttributeDefinitions",
    "KeySchema",
    "GlobalSecondaryIndexes",
    "LocalSecondaryIndexes",
    "BillingMode",
    "SSESpecification",
)


class TemplateError(ValueError):
    """template.yaml does not hold what the store needs."""


def load_template(path: str | Path) -> dict[str, Any]:
    """template.yaml as plain data; CloudFormation tags (!Ref, !Sub, !GetAtt) become
    ``{"Ref": ...}`` / ``{"Fn::Sub": ...}`` / ``{"Fn::GetAtt": ...}`` as in JSON templates."""
    resolved = Path(path).resolve()
    stat = resolved.stat()
    return copy.deepcopy(_parsed(resolved, stat.st_mtime_ns, stat.st_size))


@functools.lru_cache(maxsize=8)
def _parsed(path: Path, mtime_ns: int, size: int) -> dict[str, Any]:
    """Parsing the whole template is slow in pure Python: once per version of the file."""
    yaml = YAML(typ="rt")
    with open(path, encoding="utf-8") as handle:
        document = yaml.load(handle)
    plain = _plain(document)
    if not isinstance(plain, dict):
        raise TemplateError(f"{path}: not a template (no mapping at the top)")
    return plain


def _plain(node: Any) -> Any:
    """ruamel's round-trip objects as dicts, lists and scalars."""
    tag = getattr(getattr(node, "tag", None), "value", None)
    if isinstance(node, TaggedScalar) or (tag and tag.startswith("!")):
        value = node.value if isinstance(node, TaggedScalar) else _untagged(node)
        name = (tag or "!").removeprefix("!")
        if name == "GetAtt" and isinstance(value, str):
            value = value.split(".", 1)
        return {"Ref" if name == "Ref" else f"Fn::{name}": _plain(value)}
    if isinstance(node, Mapping):
        return {str(key): _plain(value) for key, value in node.items()}
    if isinstance(node, list):
        return [_plain(item) for item in node]
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    if isinstance(node, str):
        return str(node)
    return node


def _untagged(node: Any) -> Any:
    if isinstance(node, Mapping):
        return dict(node)
    if isinstance(node, list):
        return list(node)
    return node


def resources(template: dict[str, Any], type_: str) -> dict[str, dict[str, Any]]:
    """Logical id -> Properties of the template's resources of one type."""
    found: dict[str, dict[str, Any]] = {}
    for logical_id, resource in (template.get("Resources") or {}).items():
        if isinstance(resource, dict) and resource.get("Type") == type_:
            found[logical_id] = dict(resource.get("Properties") or {})
    return found


def table_request(properties: dict[str, Any], table_name: str) -> dict[str, Any]:
    """The CreateTable request for a table resource's Properties."""
    request: dict[str, Any] = {"TableName": table_name}
    for key in _TABLE_KEYS:
        if key in properties:
            request[key] = properties[key]
    if request.get("BillingMode", "PROVISIONED") == "PROVISIONED":
        raise TemplateError(f"table {table_name}: Stepwell tables use BillingMode PAY_PER_REQUEST")
    sse = request.get("SSESpecification")
    if isinstance(sse, dict) and "SSEType" not in sse:
        request["SSESpecification"] = {"Enabled": bool(sse.get("SSEEnabled", False))}
    return request


def create_from_template(
    template_path: str | Path | Mapping[str, Any],
    dynamodb_client: Any,
    s3_client: Any,
    names: dict[str, str],
) -> dict[str, str]:
    """Create the tables and buckets of a template (a file, or its document) named in
    ``names`` (logical id -> physical name), with the same keys, indexes, billing, TTL and
    encryption. Returns ``names``.

    Only resources named in ``names`` are created; naming a resource the template lacks is an
    error, so a renamed resource breaks the tests instead of silently creating nothing.
    """
    template = (
        dict(template_path) if isinstance(template_path, Mapping) else load_template(template_path)
    )
    where = "the template" if isinstance(template_path, Mapping) else str(template_path)
    tables = resources(template, TABLE_TYPE)
    buckets = resources(template, BUCKET_TYPE)
    unknown = sorted(set(names) - set(tables) - set(buckets))
    if unknown:
        raise TemplateError(
            f"{where}: no table or bucket named {', '.join(unknown)} "
            f"(tables: {', '.join(sorted(tables)) or 'none'}; "
            f"buckets: {', '.join(sorted(buckets)) or 'none'})"
        )
    for logical_id, properties in tables.items():
        if logical_id in names:
            _create_table(dynamodb_client, properties, names[logical_id])
    for logical_id, properties in buckets.items():
        if logical_id in names:
            _create_bucket(s3_client, properties, names[logical_id])
    return names


def _create_table(client: Any, properties: dict[str, Any], name: str) -> None:
    client.create_table(**table_request(properties, name))
    client.get_waiter("table_exists").wait(
        TableName=name, WaiterConfig={"Delay": 1, "MaxAttempts": 60}
    )
    ttl = properties.get("TimeToLiveSpecification")
    if isinstance(ttl, dict) and ttl.get("Enabled"):
        client.update_time_to_live(
            TableName=name,
            TimeToLiveSpecification={"AttributeName": ttl["AttributeName"], "Enabled": True},
        )
    pitr = properties.get("PointInTimeRecoverySpecification")
    if isinstance(pitr, dict) and pitr.get("PointInTimeRecoveryEnabled"):
        client.update_continuous_backups(
            TableName=name,
            PointInTimeRecoverySpecification={"PointInTimeRecoveryEnabled": True},
        )


def _create_bucket(client: Any, properties: dict[str, Any], name: str) -> None:
    region = client.meta.region_name
    if region in (None, "us-east-1"):
        client.create_bucket(Bucket=name)
    else:
        client.create_bucket(Bucket=name, CreateBucketConfiguration={"LocationConstraint": region})
    encryption = properties.get("BucketEncryption")
    if isinstance(encryption, dict):
        # CloudFormation and the S3 API spell the same rules differently.
        rules = [
            {
                "ApplyServerSideEncryptionByDefault": rule["ServerSideEncryptionByDefault"],
                "BucketKeyEnabled": bool(rule.get("BucketKeyEnabled", False)),
            }
            for rule in encryption.get("ServerSideEncryptionConfiguration", [])
        ]
        client.put_bucket_encryption(
            Bucket=name, ServerSideEncryptionConfiguration={"Rules": rules}
        )
    block = properties.get("PublicAccessBlockConfiguration")
    if isinstance(block, dict):
        client.put_public_access_block(Bucket=name, PublicAccessBlockConfiguration=block)
    # The lifecycle rule (payload expiry) matters only in a deployed stack: not applied here.
