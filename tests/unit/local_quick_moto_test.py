"""moto's JSON responses written by the local stack's shortcut
(``stepwell.local.resources.quick_responses``): byte for byte what moto writes, with the keys
a member may sit under worked out once per member, not once per value."""

from __future__ import annotations

from typing import Any

import pytest
from moto.core import serialize
from moto.core.utils import get_service_model

from stepwell.local.resources import quick_responses

EVERY_TYPE = {
    "pk": {"S": "run#1"},
    "n": {"N": "12.50"},
    "b": {"B": b"\x00\x01binary"},
    "ok": {"BOOL": False},
    "none": {"NULL": True},
    "ss": {"SS": ["a", "b"]},
    "ns": {"NS": ["1", "2"]},
    "bs": {"BS": [b"x", b"y"]},
    "m": {"M": {"deep": {"L": [{"S": "x"}, {"M": {"n": {"N": "1"}}}]}}},
    "empty": {"S": ""},
}
CAPACITY = {"TableName": "stepwell", "CapacityUnits": 1.5, "Table": {"CapacityUnits": 1.5}}
RESULTS = {
    "GetItem": {"Item": EVERY_TYPE, "ConsumedCapacity": CAPACITY},
    "UpdateItem": {"Attributes": EVERY_TYPE, "ConsumedCapacity": None},
    "BatchGetItem": {
        "Responses": {"stepwell": [EVERY_TYPE, {"pk": {"S": "run#2"}}]},
        "UnprocessedKeys": {"stepwell": {"Keys": [{"pk": {"S": "run#3"}}]}},
        "ConsumedCapacity": [CAPACITY],
    },
    "Query": {
        "Items": [EVERY_TYPE],
        "Count": 1,
        "ScannedCount": 2,
        "LastEvaluatedKey": {"pk": {"S": "run#1"}},
        "NotInTheModel": "dropped",
    },
    "TransactWriteItems": {"ConsumedCapacity": [CAPACITY], "ItemCollectionMetrics": {}},
}


def _model(operation: str) -> Any:
    return get_service_model("dynamodb").operation_model(operation)


def _write(operation: str, result: Any) -> Any:
    picker = serialize.XFormedAttributePicker(response_transformers=None)
    return serialize.JSONSerializer(_model(operation), value_picker=picker).serialize(result)


@pytest.mark.parametrize("operation", sorted(RESULTS))
def test_a_response_is_what_moto_writes(operation: str) -> None:
    by_moto = _write(operation, RESULTS[operation])
    with quick_responses():
        quick = _write(operation, RESULTS[operation])
        again = _write(operation, RESULTS[operation])
    assert quick == again == by_moto
    assert "NotInTheModel" not in by_moto["body"]


def test_results_other_than_dicts_take_motos_own_way() -> None:
    class Described:
        Item = EVERY_TYPE

    with quick_responses():
        quick = _write("GetItem", Described())
    assert quick == _write("GetItem", Described())
    assert '"Item"' in quick["body"]


def test_where_a_member_sits_is_asked_once_per_member(monkeypatch: pytest.MonkeyPatch) -> None:
    asked: list[str] = []
    original = serialize.AttributePicker.get_possible_keys

    def counted(self: Any, context: Any) -> Any:
        asked.append(context.key)
        return original(self, context)

    monkeypatch.setattr(serialize.AttributePicker, "get_possible_keys", counted)

    def batch(items: int) -> dict[str, Any]:
        rows = [{**EVERY_TYPE, "pk": {"S": f"run#{i}"}} for i in range(items)]
        return {"Responses": {"stepwell": rows}, "ConsumedCapacity": [CAPACITY]}

    with quick_responses():
        _write("BatchGetItem", batch(1))
        first = len(asked)
        _write("BatchGetItem", batch(100))
    assert len(asked) == first
