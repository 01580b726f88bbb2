"""The local stack's shortcuts through moto (``stepwell.local.quick_moto``), each against moto's
own way: JSON responses byte for byte what moto writes, with the keys a member may sit under
worked out once per member, not once per value; UpdateExpressions validated to the same tree
(or refused with the same error) with what depends on a class asked once per class;
ConditionExpressions tokenized once per text; a handler's methods listed once per class."""

from __future__ import annotations

from typing import Any

import pytest
from moto.core import serialize
from moto.core.utils import get_service_model

from stepwell.local.attribute_values import plain
from stepwell.local.quick_moto import (
    quick_attribute_values,
    quick_conditions,
    quick_dispatch,
    quick_responses,
    quick_update_expressions,
    quick_walks,
)

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


@pytest.mark.parametrize("operation", sorted(RESULTS))
def test_attribute_values_written_as_they_are_are_what_moto_writes(operation: str) -> None:
    by_moto = _write(operation, RESULTS[operation])
    with quick_attribute_values(), quick_responses():
        quick = _write(operation, RESULTS[operation])
    assert quick == by_moto


def test_an_attribute_value_with_no_binary_is_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    walked: list[str] = []
    original = serialize.JSONSerializer._serialize_type_structure

    def counted(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        walked.append(shape.name)
        original(self, serialized, value, shape, key)

    monkeypatch.setattr(serialize.JSONSerializer, "_serialize_type_structure", counted)
    plain_item = {k: v for k, v in EVERY_TYPE.items() if k not in ("b", "bs")}
    result = {"Responses": {"stepwell": [plain_item] * 10}, "ConsumedCapacity": [CAPACITY]}
    with quick_attribute_values():
        _write("BatchGetItem", result)
        _write("GetItem", {"Item": EVERY_TYPE})
    # the binary values alone (and the capacity's structures) are walked
    assert walked.count("AttributeValue") == 2


@pytest.mark.parametrize(
    ("value", "as_it_is"),
    [
        ({"S": ""}, True),
        ({"N": "1.5"}, True),
        ({"NULL": True}, True),
        ({"SS": ["a"]}, True),
        ({"L": [{"M": {"a": {"BOOL": False}}}]}, True),
        ({"B": b"x"}, False),
        ({"L": [{"S": "x"}, {"BS": [b"x"]}]}, False),
        ({"M": {"a": {"B": "eA=="}}}, False),
        ({"N": 1}, False),
        ({"S": None}, False),
        ({"S": "x", "N": "1"}, False),
        ({}, False),
        ({"X": "1"}, False),
    ],
)
def test_a_value_crosses_the_wire_as_it_is_when_it_has_no_binary(
    value: Any, as_it_is: bool
) -> None:
    assert plain(value) is as_it_is


# -- UpdateExpressions: the same walks, what depends on a class asked once --------------------

UPDATES = [
    "SET #1 = :0, #2 = :1, #3 = list_append(if_not_exists(#3, :2), :3), #4 = :4 ADD #5 :5",
    "SET #1 = #1 + :5, #2 = if_not_exists(#2, :0) REMOVE #6",
    "SET #7.#8[1] = :1, #9 = list_append(:3, #3)",
    "ADD #5 :5 DELETE #10 :6",
    "SET #1 = :1, #1 = :0",  # two paths overlap
    "SET #pk = :0",  # a key attribute
    "SET #1 = #11 + :5",  # an attribute the item lacks
    "SET #1 = :missing",  # an undefined value
    "SET #1 = list_append(#2, :3)",  # list_append of a string
    "SET pk = :0",  # a key attribute by its name
    "SET #1 = pk",  # a key attribute read
    "SET g = :5",  # an index's key of another type
    "SET g = :empty",  # an index's key empty
    "SET g = :0, #1 = :1",  # an index's key
]
NAMES = {f"#{i}": f"a{i}" for i in range(1, 12)} | {"#pk": "pk"}
VALUES = {
    ":0": {"S": "zero"},
    ":1": {"S": "one"},
    ":2": {"L": []},
    ":3": {"L": [{"S": "x"}, {"N": "2"}]},
    ":4": {"M": {"deep": {"BOOL": True}}},
    ":5": {"N": "3"},
    ":6": {"SS": ["b"]},
    ":empty": {"S": ""},
}


def _validate(expression: str) -> str:
    """What moto's validation makes of ``expression`` on an item: its tree, or its error."""
    from moto.dynamodb.models.dynamo_type import DynamoType, Item
    from moto.dynamodb.models.table import Table
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser
    from moto.dynamodb.parsing.validators import UpdateExpressionValidator

    table = Table(
        "t",
        account_id="123456789012",
        region="us-east-1",
        schema=[{"AttributeName": "pk", "KeyType": "HASH"}],
        attr=[
            {"AttributeName": "pk", "AttributeType": "S"},
            {"AttributeName": "g", "AttributeType": "S"},
        ],
        global_indexes=[
            {
                "IndexName": "by-g",
                "KeySchema": [{"AttributeName": "g", "KeyType": "HASH"}],
                "Projection": {"ProjectionType": "ALL"},
            }
        ],
    )
    attributes = {
        "pk": {"S": "k"},
        "a1": {"N": "1"},
        "a2": {"S": "two"},
        "a3": {"L": [{"S": "old"}]},
        "a6": {"S": "gone"},
        "a7": {"M": {"a8": {"L": [{"S": "p"}, {"S": "q"}]}}},
        "a10": {"SS": ["a", "b"]},
    }
    item = Item(DynamoType({"S": "k"}), None, attributes)
    try:
        tree = UpdateExpressionParser.make(expression)
        done = UpdateExpressionValidator(tree, NAMES, VALUES, item, table).validate()
    except Exception as exc:  # the error is part of what moto answers
        return f"{type(exc).__name__}: {exc}"
    return _shape(done)


def _shape(node: Any) -> str:
    """A node and what it holds, without the addresses of objects."""
    if isinstance(node, list):
        return "[" + ", ".join(_shape(child) for child in node) + "]"
    if isinstance(node, dict):
        return "{" + ", ".join(f"{k}: {_shape(v)}" for k, v in node.items()) + "}"
    if hasattr(node, "__dict__"):
        held = {k: v for k, v in vars(node).items() if k != "parent"}
        return f"{type(node).__name__}{_shape(held)}"
    return repr(node)


@pytest.mark.parametrize("expression", UPDATES)
def test_an_update_is_validated_as_moto_does(expression: str) -> None:
    by_moto = _validate(expression)
    with quick_walks():
        quick, again = _validate(expression), _validate(expression)
    assert quick == again == by_moto


@pytest.mark.parametrize("expression", UPDATES)
def test_a_kept_update_is_validated_as_moto_does(expression: str) -> None:
    by_moto = _validate(expression)
    with quick_update_expressions(), quick_walks():
        quick, again = _validate(expression), _validate(expression)
    assert quick == again == by_moto


def _callers(monkeypatch: pytest.MonkeyPatch, owner: type, method: str) -> list[str]:
    """The class of each object ``owner.method`` is called on, from now on, in order."""
    called: list[str] = []
    original = getattr(owner, method)

    def counted(self: Any, *args: Any) -> Any:
        called.append(type(self).__name__)
        return original(self, *args)

    monkeypatch.setattr(owner, method, counted)
    return called


def test_checks_a_text_cannot_fail_are_not_walked(monkeypatch: pytest.MonkeyPatch) -> None:
    """Whether an update changes a key, or sets an index's key to an empty string or a value of
    another type, depends on the paths its text names: the checks walk no text that names
    none of those."""
    from moto.dynamodb.parsing import ast_nodes

    walked = _callers(monkeypatch, ast_nodes.DepthFirstTraverser, "traverse")
    checks = {
        "UpdateHashRangeKeyValidator",
        "TypeMismatchValidator",
        "EmptyStringKeyValueValidator",
    }
    with quick_update_expressions(), quick_walks():
        for expression in UPDATES[:3]:
            _validate(expression)
            assert not checks & set(walked), expression
        for expression in ("SET pk = :0", "SET g = :0, #1 = :1"):
            walked.clear()
            _validate(expression)
            assert checks & set(walked), expression


def test_the_placeholders_of_a_kept_expression_are_found_once(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    from moto.dynamodb.parsing import ast_nodes
    from moto.dynamodb.parsing.expressions import UpdateExpressionParser

    walked = _callers(monkeypatch, ast_nodes.Node, "find_clauses")
    names = [ast_nodes.ExpressionAttributeName]
    with quick_update_expressions():
        first = UpdateExpressionParser.make(UPDATES[0]).find_clauses(names)
        once = len(walked)
        again = UpdateExpressionParser.make(UPDATES[0]).find_clauses(names)
    assert once and len(walked) == once
    assert again == first and again is not first
    assert [n.get_attribute_name_placeholder() for n in first] == [
        "#1",
        "#2",
        "#3",
        "#3",
        "#4",
        "#5",
    ]


def test_what_depends_on_a_class_is_asked_once(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.parsing import validators

    asked: list[str] = []
    walkers = [
        c for c in vars(validators).values() if isinstance(c, type) and "_processing_map" in vars(c)
    ]
    for walker in walkers:
        original = vars(walker)["_processing_map"]

        def counted(self: Any, original: Any = original) -> Any:
            asked.append(type(self).__name__)
            return original(self)

        monkeypatch.setattr(walker, "_processing_map", counted)
    with quick_walks():
        _validate(UPDATES[0])
        first = len(asked)
        for _ in range(5):
            _validate(UPDATES[0])
    assert 0 < first == len(asked)


# -- ConditionExpressions: tokenized once per text --------------------------------------------


def _condition(expression: str, values: dict[str, Any]) -> Any:
    from moto.dynamodb.comparisons import get_filter_expression
    from moto.dynamodb.models.dynamo_type import DynamoType, Item

    item = Item(DynamoType({"S": "k"}), None, {"pk": {"S": "k"}, "rev": {"N": "3"}})
    return get_filter_expression(expression, {"#r": "rev", "#p": "pk"}, values).expr(item)


@pytest.mark.parametrize(
    ("expression", "values"),
    [
        ("#r = :r", {":r": {"N": "3"}}),
        ("#r = :r", {":r": {"N": "4"}}),
        (
            "attribute_not_exists (#p) OR (#r < :r AND begins_with(#p, :k))",
            {":r": {"N": "9"}, ":k": {"S": "k"}},
        ),
        ("#r BETWEEN :a AND :b", {":a": {"N": "1"}, ":b": {"N": "2"}}),
    ],
)
def test_a_condition_holds_as_moto_says(expression: str, values: dict[str, Any]) -> None:
    by_moto = _condition(expression, values)
    with quick_conditions():
        assert _condition(expression, values) == _condition(expression, values) == by_moto


def test_a_condition_is_tokenized_once_per_text(monkeypatch: pytest.MonkeyPatch) -> None:
    from moto.dynamodb.comparisons import ConditionExpressionParser

    tokens: list[str] = []
    original = ConditionExpressionParser._lex_one_node

    def counted(self: Any, remaining: str) -> Any:
        tokens.append(remaining)
        return original(self, remaining)

    monkeypatch.setattr(ConditionExpressionParser, "_lex_one_node", counted)
    with quick_conditions():
        _condition("#r = :r", {":r": {"N": "3"}})
        first = len(tokens)
        assert not _condition("#r = :r", {":r": {"N": "4"}})
        assert _condition("#r = :r", {":r": {"N": "3"}})
    assert 0 < first == len(tokens)


def test_a_bad_condition_is_refused_every_time() -> None:
    with quick_conditions():
        for _ in range(2):
            with pytest.raises(ValueError, match="Cannot parse condition"):
                _condition("#r = :r !", {":r": {"N": "3"}})


# -- dispatch: a handler's methods listed once --------------------------------------------------


def test_a_handlers_methods_are_listed_once(monkeypatch: pytest.MonkeyPatch) -> None:
    import inspect

    from moto.core import responses
    from moto.dynamodb.responses import DynamoHandler

    listed: list[object] = []
    original = inspect.getmembers

    def counted(what: object, predicate: Any = None) -> Any:
        listed.append(what)
        return original(what, predicate)

    monkeypatch.setattr(inspect, "getmembers", counted)
    with quick_dispatch():
        first = responses.method_names_from_class(DynamoHandler)
        again = responses.method_names_from_class(DynamoHandler)
    assert first == again and "update_item" in first
    assert listed == [DynamoHandler]
    assert responses.method_names_from_class(DynamoHandler) == first  # moto's own, after
