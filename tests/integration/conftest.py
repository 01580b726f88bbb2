"""Fixtures of the integration tests: AWS mocked by moto, the table and the payload bucket
created from template.yaml (the deployed definition, so tests cannot drift from it)."""

from __future__ import annotations

import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from moto import mock_aws
from moto.core.botocore_stubber import BotocoreStubber
from ruamel.yaml import YAML

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
for extra in (ROOT / "shared", TESTS, ROOT / "functions" / "examples"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
# Last, so that no benchmark script's name hides a module: the request meter is the benchmarks'.
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.append(str(ROOT / "benchmarks"))

from meter import RequestMeter  # noqa: E402
from stepwell.definition.models import Workflow  # noqa: E402
from stepwell.local.quick_moto import quick_moto  # noqa: E402
from stepwell.runtime.aws.payloads import S3PayloadStore  # noqa: E402
from stepwell.store.dynamodb import DynamoStore  # noqa: E402
from stepwell.store.tables import create_from_template  # noqa: E402

TEMPLATE = ROOT / "shared" / "stepwell" / "stack" / "template.yaml"
"""The engine's template: the table and bucket are its own."""
TABLE = "stepwell-test"
BUCKET = "stepwell-payloads-test"
REGION = "us-east-1"

_MOTO_LOCK = threading.RLock()
_moto_call = BotocoreStubber.__call__


def _one_request_at_a_time(self: BotocoreStubber, event_name: str, request: Any, **kw: Any) -> Any:
    with _MOTO_LOCK:
        return _moto_call(self, event_name, request, **kw)


@pytest.fixture
def aws(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """Fake credentials and moto for every AWS call of the test.

    moto's backends are not thread-safe (a cancelled transaction restores a copy of the whole
    table it took before, wiping what other threads wrote meanwhile), while DynamoDB applies
    each request atomically. Requests are therefore handled one at a time, as one DynamoDB
    would; clients, pynamodb and the store still run concurrently around them. Transactions
    save only the items they name, an UpdateExpression is parsed once, responses are written
    without asking again where each member is and DynamoDB calls are answered without an HTTP
    request (``stepwell.local.quick_moto``), as in the local stack.
    """
    for name, value in {
        "AWS_ACCESS_KEY_ID": "testing",
        "AWS_SECRET_ACCESS_KEY": "testing",
        "AWS_SESSION_TOKEN": "testing",
        "AWS_DEFAULT_REGION": REGION,
        "AWS_REGION": REGION,
    }.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_PROFILE", "STEPWELL_TABLE", "STEPWELL_BUCKET", "STEPWELL_PAYLOAD_THRESHOLD"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setattr(BotocoreStubber, "__call__", _one_request_at_a_time)
    with mock_aws(), quick_moto():
        yield


_CLIENTS: dict[str, Any] = {}


def client(service: str) -> Any:
    """One boto3 client per service for the whole session: moto's hook sits in every client
    made after moto is imported, and switches with each test's mock, so they can be shared."""
    if service not in _CLIENTS:
        _CLIENTS[service] = boto3.client(service, region_name=REGION)
    return _CLIENTS[service]


@pytest.fixture
def tables(aws: None) -> dict[str, str]:
    """The table and bucket of template.yaml, created in moto."""
    return create_from_template(
        TEMPLATE,
        client("dynamodb"),
        client("s3"),
        {"StepwellTable": TABLE, "PayloadBucket": BUCKET},
    )


def dynamo_store(**settings: Any) -> DynamoStore:
    """A DynamoStore on the moto table, large payloads in the moto bucket (as the runtime's
    wiring makes it); each call is another process's."""
    return DynamoStore(
        TABLE, payloads=S3PayloadStore(client("s3"), BUCKET), region=REGION, **settings
    )


def metered(store: DynamoStore) -> RequestMeter:
    """A meter of the store's requests and of its payload bucket's."""
    return RequestMeter().attach(store.client).attach(client("s3"))


@pytest.fixture
def store(tables: dict[str, str]) -> DynamoStore:
    """A DynamoStore on the moto table and bucket."""
    return dynamo_store()


@pytest.fixture
def dynamodb(tables: dict[str, str]) -> Any:
    """A plain boto3 DynamoDB client (to look at items as stored)."""
    return client("dynamodb")


@pytest.fixture
def s3(tables: dict[str, str]) -> Any:
    """A plain boto3 S3 client."""
    return client("s3")


def _load_example(name: str) -> Workflow:
    text = (ROOT / "statemachines" / f"{name}.yaml").read_text()
    return Workflow.model_validate(YAML(typ="safe").load(text))


def _workflow(name: str, steps: dict[str, Any], **fields: Any) -> Workflow:
    return Workflow.model_validate({"name": name, "steps": steps, **fields})


def _scan(client: Any, table: str = TABLE) -> list[dict[str, Any]]:
    items: list[dict[str, Any]] = []
    kwargs: dict[str, Any] = {"TableName": table}
    while True:
        page = client.scan(**kwargs)
        items.extend(page["Items"])
        if "LastEvaluatedKey" not in page:
            return items
        kwargs["ExclusiveStartKey"] = page["LastEvaluatedKey"]


@pytest.fixture
def example() -> Any:
    """Load a workflow of statemachines/ by name (plain YAML into the model)."""
    return _load_example


@pytest.fixture
def make_workflow() -> Any:
    """Build a Workflow from a name and a dict of steps."""
    return _workflow


@pytest.fixture
def scan(dynamodb: Any) -> Any:
    """Every item of the table as stored (wire format)."""
    return lambda: _scan(dynamodb)
