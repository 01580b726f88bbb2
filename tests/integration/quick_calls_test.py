"""DynamoDB calls answered by moto in process (``stepwell.local.quick_calls``, on in
these tests as in the stack): no HTTP request is built, and every answer and every error is what
the HTTP path gives, field for field."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, EndpointConnectionError
from moto import mock_aws

from stepwell.local.quick_calls import quick_calls

TABLE = "quick"
KEY = {"pk": {"S": "run#1"}, "sk": {"S": "step#a"}}
ITEM = {
    **KEY,
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\x01binary"},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"deep": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
    "ss": {"SS": ["a", "b"]},
}
Call = Callable[[Any], Any]

CALLS: list[tuple[str, Call]] = [
    (
        "create the table",
        lambda c: c.create_table(
            TableName=TABLE,
            KeySchema=[
                {"AttributeName": "pk", "KeyType": "HASH"},
                {"AttributeName": "sk", "KeyType": "RANGE"},
            ],
            AttributeDefinitions=[
                {"AttributeName": "pk", "AttributeType": "S"},
                {"AttributeName": "sk", "AttributeType": "S"},
            ],
            BillingMode="PAY_PER_REQUEST",
        ),
    ),
    ("describe it (timestamps)", lambda c: c.describe_table(TableName=TABLE)),
    ("put an item of every type", lambda c: c.put_item(TableName=TABLE, Item=ITEM)),
    (
        "read it (binary values)",
        lambda c: c.get_item(
            TableName=TABLE, Key=KEY, ConsistentRead=True, ReturnConsumedCapacity="TOTAL"
        ),
    ),
    (
        "an update that returns what it changed",
        lambda c: c.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET #n = #n + :one, #l = list_append(if_not_exists(#l, :e), :x)",
            ExpressionAttributeNames={"#n": "n", "#l": "l"},
            ExpressionAttributeValues={
                ":one": {"N": "1"},
                ":e": {"L": []},
                ":x": {"L": [{"S": "x"}]},
            },
            ReturnValues="UPDATED_NEW",
        ),
    ),
    (
        "a condition that fails, the item returned",
        lambda c: c.update_item(
            TableName=TABLE,
            Key=KEY,
            UpdateExpression="SET #s = :s",
            ConditionExpression="attribute_not_exists(pk)",
            ExpressionAttributeNames={"#s": "status"},
            ExpressionAttributeValues={":s": {"S": "running"}},
            ReturnValuesOnConditionCheckFailure="ALL_OLD",
        ),
    ),
    (
        "a transaction cancelled (its reasons)",
        lambda c: c.transact_write_items(
            TransactItems=[
                {
                    "Put": {
                        "TableName": TABLE,
                        "Item": {"pk": {"S": "run#2"}, "sk": {"S": "RUN"}},
                    }
                },
                {
                    "ConditionCheck": {
                        "TableName": TABLE,
                        "Key": KEY,
                        "ConditionExpression": "attribute_not_exists(pk)",
                        "ReturnValuesOnConditionCheckFailure": "ALL_OLD",
                    }
                },
            ]
        ),
    ),
    (
        "an expression that does not parse",
        lambda c: c.update_item(TableName=TABLE, Key=KEY, UpdateExpression="SET = :x"),
    ),
    (
        "a table that is not there",
        lambda c: c.get_item(TableName="missing", Key=KEY),
    ),
    (
        "a batch read",
        lambda c: c.batch_get_item(
            RequestItems={TABLE: {"Keys": [KEY, {"pk": {"S": "run#2"}, "sk": {"S": "RUN"}}]}},
            ReturnConsumedCapacity="TOTAL",
        ),
    ),
    (
        "a query",
        lambda c: c.query(
            TableName=TABLE,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": "run#1"}},
        ),
    ),
    ("a scan", lambda c: c.scan(TableName=TABLE, Limit=1)),
    ("a delete", lambda c: c.delete_item(TableName=TABLE, Key=KEY, ReturnValues="ALL_OLD")),
]


def _answers(quick: bool) -> list[tuple[str, Any]]:
    """Every call's answer (or error) on a fresh moto, without what differs from request to
    request on any path (request ids, dates, checksums)."""
    answers: list[tuple[str, Any]] = []
    with mock_aws():
        client = boto3.client("dynamodb", region_name="us-east-1")
        sent: list[str] = []
        client.meta.events.register("before-send.dynamodb", lambda **_: sent.append("http"))
        for _, call in CALLS:
            if quick:
                with quick_calls():
                    answers.append(_answer(client, call))
            else:
                answers.append(_answer(client, call))
        answers.append(("HTTP requests", len(sent)))
    return answers


def _answer(client: Any, call: Call) -> tuple[str, Any]:
    try:
        return "answer", _steady(call(client))
    except ClientError as error:
        return type(error).__name__, (str(error), _steady(error.response))


def _steady(response: dict[str, Any]) -> dict[str, Any]:
    metadata = response.pop("ResponseMetadata")
    response["status"] = metadata["HTTPStatusCode"]
    response["retries"] = metadata["RetryAttempts"]
    response["headers"] = sorted(metadata["HTTPHeaders"])
    return _timeless(response)


def _timeless(value: Any) -> Any:
    """A value with each time in it replaced by its type (a table's creation time)."""
    if isinstance(value, dict):
        return {k: _timeless(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_timeless(v) for v in value]
    return type(value).__name__ if isinstance(value, datetime) else value


@pytest.fixture
def credentials(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        monkeypatch.setenv(name, "testing")
    monkeypatch.delenv("AWS_PROFILE", raising=False)


def test_every_answer_and_error_is_the_http_paths(credentials: None) -> None:
    by_http, quick = _answers(quick=False), _answers(quick=True)
    assert by_http[-1] == ("HTTP requests", len(CALLS))
    assert quick[-1] == ("HTTP requests", 0)
    for (what, _), expected, got in zip(CALLS, by_http, quick, strict=False):
        assert got == expected, what


def test_a_call_moto_would_not_answer_takes_the_http_path(credentials: None) -> None:
    """An endpoint of one's own (DynamoDB Local, say) is not moto's to answer in process."""
    with mock_aws(), quick_calls():
        client = boto3.client(
            "dynamodb",
            region_name="us-east-1",
            endpoint_url="http://127.0.0.1:9",
            config=Config(retries={"total_max_attempts": 1}),
        )
        sent: list[str] = []
        client.meta.events.register("before-send.dynamodb", lambda **_: sent.append("http"))
        with pytest.raises(EndpointConnectionError):  # nothing listens there
            client.list_tables()
    assert sent == ["http"]


def test_an_answer_is_read_as_botocore_reads_it_without_walking_plain_values(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Attribute values with no binary in them are taken as they are; the rest as botocore
    reads them, so that every answer is the same."""
    from botocore.parsers import JSONParser
    from botocore.session import get_session

    from stepwell.local import quick_calls as module

    model = get_session().get_service_model("dynamodb").operation_model("BatchGetItem")
    wire = {
        **KEY,
        "n": {"N": "12.50"},
        "b": {"B": "AAFiaW5hcnk="},
        "bs": {"BS": ["eA==", "eQ=="]},
        "m": {"M": {"deep": {"L": [{"S": "x"}, {"NULL": True}, {"BOOL": False}]}}},
        "ss": {"SS": ["a", "b"]},
    }
    body = {"Responses": {TABLE: [wire] * 5}, "ConsumedCapacity": [{"CapacityUnits": 5.0}]}
    response = {
        "status_code": 200,
        "headers": {"x-amzn-requestid": "r"},
        "body": json.dumps(body).encode(),
        "context": {"operation_name": "BatchGetItem"},
    }
    walked: list[str] = []
    original = JSONParser._handle_structure

    def counted(self: Any, shape: Any, value: Any) -> Any:
        walked.append(shape.name)
        return original(self, shape, value)

    monkeypatch.setattr(JSONParser, "_handle_structure", counted)
    expected = JSONParser().parse(response, model.output_shape)
    assert walked.count("AttributeValue") == 5 * 11  # every value, nested ones too
    walked.clear()
    assert module._Parser().parse(response, model.output_shape) == expected
    assert walked.count("AttributeValue") == 5 * 2  # the binary values alone
