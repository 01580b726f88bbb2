"""The local stack keeps moto's parsed UpdateExpressions by their text
(``stepwell.local.quick_moto.quick_update_expressions``, on in these tests as in the stack):
the same expression with other values, names and items must still do exactly what DynamoDB
does, and a bad one must be refused every time."""

from __future__ import annotations

from typing import Any

import pytest
from botocore.exceptions import ClientError
from conftest import client

pytestmark = pytest.mark.usefixtures("aws")

SET = "SET #s = :s, #a = if_not_exists(#a, :zero) ADD #n :one"


def _table() -> Any:
    dynamodb = client("dynamodb")
    dynamodb.create_table(
        TableName="quick",
        KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
        BillingMode="PAY_PER_REQUEST",
    )
    return dynamodb


def _update(dynamodb: Any, key: str, status: str, names: dict[str, str], **extra: Any) -> Any:
    return dynamodb.update_item(
        TableName="quick",
        Key={"pk": {"S": key}},
        UpdateExpression=SET,
        ExpressionAttributeNames={"#s": names["s"], "#a": names["a"], "#n": names["n"]},
        ExpressionAttributeValues={
            ":s": {"S": status},
            ":zero": {"N": "0"},
            ":one": {"N": "1"},
            **extra.pop("values", {}),
        },
        ReturnValues="ALL_NEW",
        **extra,
    )["Attributes"]


def test_one_expression_with_other_values_names_and_items() -> None:
    dynamodb = _table()
    names = {"s": "status", "a": "attempt", "n": "count"}
    first = _update(dynamodb, "a", "running", names)
    again = _update(dynamodb, "a", "done", names)
    other = _update(dynamodb, "b", "waiting", {"s": "state", "a": "try", "n": "seen"})
    assert (first["status"], first["attempt"], first["count"]) == (
        {"S": "running"},
        {"N": "0"},
        {"N": "1"},
    )
    assert (again["status"], again["count"]) == ({"S": "done"}, {"N": "2"})
    assert (other["state"], other["try"], other["seen"]) == (
        {"S": "waiting"},
        {"N": "0"},
        {"N": "1"},
    )
    assert "status" not in other


def test_a_condition_still_holds_the_item() -> None:
    dynamodb = _table()
    names = {"s": "status", "a": "attempt", "n": "count"}
    _update(dynamodb, "a", "done", names)
    with pytest.raises(ClientError) as refused:
        _update(
            dynamodb,
            "a",
            "running",
            names,
            ConditionExpression="#s <> :done",
            values={":done": {"S": "done"}},
        )
    assert refused.value.response["Error"]["Code"] == "ConditionalCheckFailedException"
    item = dynamodb.get_item(TableName="quick", Key={"pk": {"S": "a"}})["Item"]
    assert (item["status"], item["count"]) == ({"S": "done"}, {"N": "1"})


def test_a_bad_expression_is_refused_every_time() -> None:
    dynamodb = _table()
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(
                TableName="quick",
                Key={"pk": {"S": "a"}},
                UpdateExpression="SET #s = = :s",
                ExpressionAttributeNames={"#s": "status"},
                ExpressionAttributeValues={":s": {"S": "x"}},
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "Invalid UpdateExpression" in refused.value.response["Error"]["Message"]


def test_each_expression_is_its_own() -> None:
    dynamodb = _table()
    _update(dynamodb, "a", "running", {"s": "status", "a": "attempt", "n": "count"})
    dynamodb.update_item(
        TableName="quick",
        Key={"pk": {"S": "a"}},
        UpdateExpression="REMOVE #s",
        ExpressionAttributeNames={"#s": "status"},
    )
    item = dynamodb.get_item(TableName="quick", Key={"pk": {"S": "a"}})["Item"]
    assert "status" not in item and item["count"] == {"N": "1"}


def _refused_twice(dynamodb: Any, key: str, expression: str, **given: Any) -> list[str]:
    """An update sent twice to an item that is not there: the error messages (each a
    ValidationException), after which the item is still not there."""
    messages = []
    for _ in range(2):
        with pytest.raises(ClientError) as refused:
            dynamodb.update_item(
                TableName="quick", Key={"pk": {"S": key}}, UpdateExpression=expression, **given
            )
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        messages.append(refused.value.response["Error"]["Message"])
        assert "Item" not in dynamodb.get_item(TableName="quick", Key={"pk": {"S": key}})
    return messages


def test_two_clauses_of_one_kind_are_refused_every_time() -> None:
    messages = _refused_twice(
        _table(),
        "a",
        "SET #s = :s SET #t = :s",
        ExpressionAttributeNames={"#s": "status", "#t": "state"},
        ExpressionAttributeValues={":s": {"S": "x"}},
    )
    assert all('"SET" section can only be used once' in message for message in messages)


def _counted(monkeypatch: pytest.MonkeyPatch, validator: str, method: str) -> list[int]:
    """One entry per time moto's ``validator`` runs ``method``."""
    from moto.dynamodb.parsing import validators

    calls: list[int] = []
    kind = getattr(validators, validator)
    original = getattr(kind, method)

    def counting(self: Any, node: Any) -> Any:
        calls.append(1)
        return original(self, node)

    monkeypatch.setattr(kind, method, counting)
    return calls


def _again_and_again(calls: list[int]) -> tuple[int, Any]:
    """One expression sent with the same names to new items and again to each: the calls
    counted after the first request, and the table."""
    dynamodb = _table()
    names = {"s": "status", "a": "attempt", "n": "count"}
    _update(dynamodb, "first", "running", names)
    first = len(calls)
    for index in range(4):
        _update(dynamodb, f"k{index}", "running", names)
        _update(dynamodb, f"k{index}", "done", names)
    return first, dynamodb


def test_an_expressions_clauses_are_counted_once(monkeypatch: pytest.MonkeyPatch) -> None:
    counts = _counted(monkeypatch, "ActionCountValidator", "verify_action_counts")
    first, _ = _again_and_again(counts)
    assert 0 < len(counts) == first


def test_overlapping_paths_are_refused_whatever_passed_before() -> None:
    dynamodb = _table()
    # The same text passes with three names, and its paths overlap when two are one attribute.
    apart = {"s": "status", "a": "attempt", "n": "count"}
    together = {"s": "status", "a": "status", "n": "count"}
    for names in (apart, together, apart, together):
        if names is apart:
            _update(dynamodb, "a", "running", names)
            continue
        with pytest.raises(ClientError) as refused:
            _update(dynamodb, "a", "running", names)
        assert refused.value.response["Error"]["Code"] == "ValidationException"
        assert "Two document paths overlap" in refused.value.response["Error"]["Message"]
    assert dynamodb.get_item(TableName="quick", Key={"pk": {"S": "a"}})["Item"]["count"] == {
        "N": "2"
    }


def test_paths_are_checked_once_per_text_and_names(monkeypatch: pytest.MonkeyPatch) -> None:
    checks = _counted(monkeypatch, "OverlappingPathsValidator", "check_for_overlapping_paths")
    first, dynamodb = _again_and_again(checks)
    assert 0 < len(checks) == first
    _update(dynamodb, "other", "running", {"s": "status", "a": "attempt", "n": "total"})
    assert len(checks) > first


def _validations(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The items moto validated an UpdateExpression against, each as its attributes' names."""
    from moto.dynamodb.parsing import validators

    seen: list[str] = []
    original = validators.Validator.validate

    def validate(self: Any) -> Any:
        seen.append(",".join(sorted(self.item.attrs)))
        return original(self)

    monkeypatch.setattr(validators.Validator, "validate", validate)
    return seen


def test_an_update_that_creates_its_item_is_validated_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dynamodb = _table()
    seen = _validations(monkeypatch)
    created = _update(dynamodb, "new", "running", {"s": "status", "a": "attempt", "n": "count"})
    assert seen == [""]  # against no item, before it is created; moto validated twice
    assert created == {
        "pk": {"S": "new"},
        "status": {"S": "running"},
        "attempt": {"N": "0"},
        "count": {"N": "1"},
    }
    _update(dynamodb, "new", "done", {"s": "status", "a": "attempt", "n": "count"})
    assert seen == ["", "attempt,count,pk,status"]


def test_an_update_that_names_the_key_is_refused_before_its_item_is_created(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Reading the key would see it missing before the item is created and there after: moto
    refuses any expression that names it, on the first validation."""
    dynamodb = _table()
    seen = _validations(monkeypatch)
    with pytest.raises(ClientError) as refused:
        dynamodb.update_item(
            TableName="quick",
            Key={"pk": {"S": "new"}},
            UpdateExpression="SET #c = if_not_exists(#k, :none)",
            ExpressionAttributeNames={"#c": "copy", "#k": "pk"},
            ExpressionAttributeValues={":none": {"S": "none"}},
        )
    assert "Cannot update attribute pk" in refused.value.response["Error"]["Message"]
    assert seen == [""]
    assert "Item" not in dynamodb.get_item(TableName="quick", Key={"pk": {"S": "new"}})


def test_a_refused_update_creates_no_item() -> None:
    dynamodb = _table()
    _refused_twice(
        dynamodb,
        "new",
        "SET #s = #m",
        ExpressionAttributeNames={"#s": "status", "#m": "missing"},
    )
    created = _update(dynamodb, "new", "running", {"s": "status", "a": "attempt", "n": "count"})
    assert created["count"] == {"N": "1"}
