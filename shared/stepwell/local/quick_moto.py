"""moto at the cost of what a request does: the local stack's shortcuts through moto's
DynamoDB, each keeping what moto answers (items, conditions, errors, capacity) exactly.

moto (5.x) does, for every request, work that depends only on what repeats from request to
request: the text of an expression, the class of a node of its tree, the class of a handler.
Each context manager here works that out once and keeps it while inside;
:func:`stepwell.local.quick_calls.quick_calls` also spares a DynamoDB call the HTTP request
botocore would build and moto read back. :func:`quick_moto` is all of them, and is what the
stack, the integration tests and the benchmarks run on. Requests must be serialized
(:func:`stepwell.local.resources.serialized_moto`).
"""

from __future__ import annotations

import importlib
from collections import OrderedDict, deque
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from stepwell.local.attribute_values import plain
from stepwell.local.quick_calls import quick_calls
from stepwell.local.resources import item_sized_transactions

KEPT_EXPRESSIONS = 1024
"""Parsed UpdateExpressions kept (a stack sends a few dozen distinct ones)."""


@contextmanager
def quick_update_expressions() -> Iterator[None]:
    """moto's UpdateItem without parsing and classifying the same expression again and again.

    moto (5.x) tokenizes and parses an UpdateExpression twice per request (to check the
    request, then to run it), then runs ten processors over a copy of the tree. A stack sends
    the same few expressions with new values: inside, a parsed tree is kept by its text. An
    expression that does not parse is parsed (and refused) every time; what each processor does
    to a node is unchanged (how they walk the tree is :func:`quick_walks`). moto's validation
    works on a deep copy of the tree, so the kept tree is never changed: that copy is read back
    from the kept tree's pickle (the same objects, about 4x faster than ``copy.deepcopy``
    walking them). The count of SET, ADD and REMOVE clauses depends on the text alone: it is
    checked once when the tree is kept, and skipped on the copies of a tree that passed (one
    that failed is checked, and refused, on every request). Whether two of its paths overlap
    depends on the text and the names given to its placeholders: it is skipped for a copy whose
    text passed with the same names, and checked (and refused in moto's words) otherwise.
    Whether it changes a key (a path whose first name is one of the table's keys), or sets an
    index's key to an empty string or to a value of another type (a SET whose target is such a
    name, as moto reads it), depends on the text, the names and the table: those checks walk
    the tree only when the text names such a path, and refuse it in moto's words. The nodes
    of a kept tree that moto looks for by their class (the placeholders a request must define)
    are found once per tree and handed out as a new list.
    """
    import copy
    import pickle
    import weakref

    nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    parser: Any = importlib.import_module("moto.dynamodb.parsing.expressions")
    validators: Any = importlib.import_module("moto.dynamodb.parsing.validators")
    traverser, update_parser = nodes.DepthFirstTraverser, parser.UpdateExpressionParser
    original_make = update_parser.make
    original_copy = validators.deepcopy
    original_find = nodes.Node.find_clauses
    counter, overlaps = validators.ActionCountValidator, validators.OverlappingPathsValidator
    key_updates = validators.UpdateHashRangeKeyValidator
    key_types = validators.TypeMismatchValidator
    empty_keys = validators.EmptyStringKeyValueValidator
    trees: OrderedDict[str, Any] = OrderedDict()
    pickled: dict[int, tuple[Any, bytes, bool, str, dict[tuple[type, ...], list[Any]]]] = {}
    """id of a kept tree -> (the tree, its pickle, its clauses counted, its text, the nodes of
    each set of classes asked of it)."""
    counted: weakref.WeakSet[Any] = weakref.WeakSet()
    texts: weakref.WeakKeyDictionary[Any, str] = weakref.WeakKeyDictionary()
    """A copy of a kept tree -> the text it was parsed from."""
    apart: OrderedDict[tuple[str, tuple[tuple[str, str], ...]], None] = OrderedDict()
    """(text, names) whose paths were found not to overlap."""
    heads: OrderedDict[str, tuple[frozenset[str], frozenset[str]]] = OrderedDict()
    """text -> the first names of its paths and of its SET actions' targets."""

    def make(cls: Any, expression: str) -> Any:
        tree = trees.get(expression)
        if tree is None:
            tree = trees[expression] = original_make.__func__(cls, expression)
            blob = pickle.dumps(tree, pickle.HIGHEST_PROTOCOL)
            try:
                counter().traverse(pickle.loads(blob))
                clauses_counted = True
            except Exception:  # refused again, in moto's words, when the request is checked
                clauses_counted = False
            pickled[id(tree)] = (tree, blob, clauses_counted, expression, {})
            while len(trees) > KEPT_EXPRESSIONS:
                pickled.pop(id(trees.popitem(last=False)[1]), None)
        return tree

    def deepcopy(value: Any, memo: Any = None) -> Any:
        kept = pickled.get(id(value))
        if kept is not None and kept[0] is value:
            tree = pickle.loads(kept[1])
            if kept[2]:
                counted.add(tree)
            texts[tree] = kept[3]
            return tree
        return copy.deepcopy(value, memo)

    def find_clauses(self: Any, clause_types: Any) -> list[Any]:
        kept = pickled.get(id(self))
        if kept is None or kept[0] is not self:
            return original_find(self, clause_types)  # type: ignore[no-any-return]
        asked = tuple(clause_types)
        found = kept[4].get(asked)
        if found is None:
            found = kept[4][asked] = original_find(self, clause_types)
        return list(found)

    def count_clauses(self: Any, node: Any) -> Any:
        return node if node in counted else traverser.traverse(self, node)

    def check_overlaps(self: Any, node: Any) -> Any:
        text = texts.get(node)
        if text is None:
            return traverser.traverse(self, node)
        key = (text, tuple(sorted((self.expression_attribute_names or {}).items())))
        if key in apart:
            return node
        checked = traverser.traverse(self, node)
        apart[key] = None
        while len(apart) > KEPT_EXPRESSIONS:
            apart.popitem(last=False)
        return checked

    def heads_of(node: Any) -> tuple[frozenset[str], frozenset[str]] | None:
        """The first names of a kept tree's paths and of its SET actions' targets (placeholders
        as written), as moto's checks read them; None: not a copy of a kept tree."""
        text = texts.get(node)
        if text is None:
            return None
        found = heads.get(text)
        if found is None:
            tree = trees.get(text)
            if tree is None:
                return None
            paths = tree.find_clauses([nodes.UpdateExpressionPath])
            targets = tree.find_clauses([nodes.UpdateExpressionSetAction])
            found = heads[text] = (
                frozenset(path.children[0].children[0] for path in paths),
                frozenset(action.children[0].children[0].children[0] for action in targets),
            )
            while len(heads) > KEPT_EXPRESSIONS:
                heads.popitem(last=False)
        if not all(type(head) is str for part in found for head in part):
            return None
        return found

    def check_key_updates(self: Any, node: Any) -> Any:
        found = heads_of(node)
        names = self.expression_attribute_names
        if found is None or any(names.get(h, h) in self.table_key_attributes for h in found[0]):
            return traverser.traverse(self, node)  # refused in moto's words
        return node

    def check_key_types(self: Any, node: Any) -> Any:
        found = heads_of(node)
        typed = {d["AttributeName"] for d in self.key_attributes_type}
        if found is None or found[1] & typed:
            return traverser.traverse(self, node)
        return node

    def check_empty_keys(self: Any, node: Any) -> Any:
        found = heads_of(node)
        if found is None or found[1] & set(self.key_attributes):
            return traverser.traverse(self, node)
        return node

    update_parser.make = classmethod(make)
    validators.deepcopy = deepcopy
    nodes.Node.find_clauses = find_clauses
    counter.traverse = count_clauses
    overlaps.traverse = check_overlaps
    key_updates.traverse = check_key_updates
    key_types.traverse = check_key_types
    empty_keys.traverse = check_empty_keys
    try:
        yield
    finally:
        del counter.traverse, overlaps.traverse
        del key_updates.traverse, key_types.traverse, empty_keys.traverse
        update_parser.make = original_make
        validators.deepcopy = original_copy
        nodes.Node.find_clauses = original_find


@contextmanager
def quick_responses() -> Iterator[None]:
    """moto's JSON responses without working out again, member by member, where a result keeps
    each member.

    moto (5.x) writes a JSON response by walking the operation's output shape and asking, for
    each member of each structure, a chain of alias providers which keys of the result might
    hold it (the member's name, its shape's name, prefixes, their snake_case forms). For a
    result that is a plain dict (every DynamoDB response is one) those keys depend only on the
    service, the structure, the member and its shape: inside, they are worked out once per
    member and the first that the dict has is taken, as before. Results of other types, other
    protocols and pickers with response transformers take moto's own way.
    """
    serialize: Any = importlib.import_module("moto.core.serialize")
    serializer, picker_class = serialize.JSONSerializer, serialize.XFormedAttributePicker
    fallback, own = serializer.get_value, vars(serializer).get("get_value")
    missing, pick = serialize.MISSING, serialize.get_value
    found_keys: dict[tuple[str, str, str, str], tuple[str, ...]] = {}

    def get_value(self: Any, value: Any, key: str, shape: Any) -> Any:
        picker, parent = self._value_picker, getattr(shape, "parent", None)
        if (
            type(value) is not dict
            or type(picker) is not picker_class
            or picker.response_transformers
            or parent is None
        ):
            return fallback(self, value, key, shape)
        member = (self.service_model.service_name, parent.name, key, shape.name)
        keys = found_keys.get(member)
        if keys is None:
            context = serialize.AttributePickerContext(
                value, key, shape, self.operation_model, self.service_model
            )
            keys = found_keys[member] = tuple(picker.get_possible_keys(context))
        for possible in keys:
            # a dotted key is a path to moto; any other is one key of the dict
            found = (
                pick(value, possible, missing) if "." in possible else value.get(possible, missing)
            )
            if found is not missing:
                return found
        return None

    serializer.get_value = get_value
    try:
        yield
    finally:
        if own is None:
            del serializer.get_value
        else:
            serializer.get_value = own


DYNAMODB_SERVICES = ("dynamodb", "dynamodbstreams")
"""The services whose ``AttributeValue`` is DynamoDB's."""


@contextmanager
def quick_attribute_values() -> Iterator[None]:
    """moto's JSON responses write an item's attribute values as they are.

    moto's serializer walks every attribute value of a response against its shape, asking for
    each of its ten members whether the value has it, and a map's or a list's elements again:
    for a read of a few items, most of the response's cost. A value with no binary in it comes
    out of that walk as it went in (:func:`stepwell.local.attribute_values.plain`): inside, such
    a value is written as it is, under the same name; any other (binary, which the wire
    carries in base64) takes moto's walk.
    """
    serialize: Any = importlib.import_module("moto.core.serialize")
    serializer = serialize.JSONSerializer
    original = serializer._serialize
    own = vars(serializer).get("_serialize")

    def _serialize(self: Any, serialized: Any, value: Any, shape: Any, key: str) -> None:
        if (
            key
            and shape.name == "AttributeValue"
            and self.service_model.service_name in DYNAMODB_SERVICES
            and plain(value)
        ):
            self._default_serialize(serialized, value, shape, key)
            return
        original(self, serialized, value, shape, key)

    serializer._serialize = _serialize
    try:
        yield
    finally:
        if own is None:
            del serializer._serialize
        else:
            serializer._serialize = own


@contextmanager
def quick_walks() -> Iterator[None]:
    """moto's walks over an UpdateExpression's tree, asking what depends on a class once per
    class.

    moto validates an UpdateExpression by walking its tree ten times (one processor each, about
    a hundred nodes for one of Stepwell's step writes). At every node each walk asks
    ``isinstance`` of ``Node`` (an ABC, so a slow check) and of the classes the processor
    handles, then builds the processor's table of handlers again to find the one for that
    node. The answers depend on the node's class and the processor's class alone: inside, they
    are worked out once per pair, and the walk (children first, the hook before each child, the
    handler's result put in the node's place) is unchanged. A processor that handles nodes in
    a way of its own (its own ``process`` or ``nodes_to_be_processed``, or a handler that is not
    one of its methods) takes moto's own walk.
    """
    nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    traverser, node_class = nodes.DepthFirstTraverser, nodes.Node
    original = traverser.traverse_node_recursively
    base_hook = traverser.pre_processing_of_child
    is_node: dict[type, bool] = {}
    manners: dict[type, tuple[bool, bool]] = {}
    """A processor's class -> (walked here, has a hook before each child)."""
    handlers: dict[type, dict[type, Any]] = {}
    """processor's class -> node's class -> the processor's function for it, or None."""

    def manner(processor: Any) -> tuple[bool, bool]:
        kind = type(processor)
        found = manners.get(kind)
        if found is None:
            own_ways = (
                kind.process is not traverser.process
                or kind.nodes_to_be_processed is not traverser.nodes_to_be_processed
                or any(
                    getattr(handler, "__self__", None) is not processor
                    for handler in processor._processing_map().values()
                )
            )
            found = manners[kind] = (not own_ways, kind.pre_processing_of_child is not base_hook)
        return found

    def handler(processor: Any, kind: type) -> Any:
        found = None
        for handled, process in processor._processing_map().items():
            if issubclass(kind, handled):  # the first that matches, as moto's ``process``
                found = process.__func__
                break
        return found

    def traverse_node_recursively(self: Any, root: Any, root_id: int = -1) -> Any:
        walked_here, hooked = manner(self)
        if not walked_here:
            return original(self, root, root_id)
        found = handlers.setdefault(type(self), {})
        hook = self.pre_processing_of_child

        def walk(node: Any, child_id: int) -> Any:
            kind = type(node)
            a_node = is_node.get(kind)
            if a_node is None:
                a_node = is_node[kind] = isinstance(node, node_class)
            if not a_node:
                return node
            parent_node = node.parent
            if node.children is not None:
                for i, child_node in enumerate(node.children):
                    if hooked:
                        hook(node, i)
                    if is_node.get(type(child_node)) is not False:  # a leaf is left as it is
                        walk(child_node, i)
            try:
                process = found[kind]
            except KeyError:
                process = found[kind] = handler(self, kind)
            if process is not None:
                node = process(self, node)
                node.parent = parent_node
                if parent_node:
                    parent_node.children[child_id] = node
            return node

        return walk(root, root_id)

    traverser.traverse_node_recursively = traverse_node_recursively
    try:
        yield
    finally:
        traverser.traverse_node_recursively = original


KEPT_CONDITIONS = 1024
"""Tokenized ConditionExpressions kept (a stack sends a few dozen distinct ones)."""


@contextmanager
def quick_conditions() -> Iterator[None]:
    """moto's ConditionExpressions without tokenizing the same text again and again.

    moto tokenizes a ConditionExpression (compiling its eight patterns again for every token)
    on every request that has one, then builds the condition from the tokens with the request's
    names and values. The tokens depend on the text alone, and nothing changes them (they are
    tuples; the later stages build nodes of their own): inside, they are kept by their text and
    handed out as a new sequence. A text that does not tokenize is refused every time.
    """
    comparisons: Any = importlib.import_module("moto.dynamodb.comparisons")
    parser = comparisons.ConditionExpressionParser
    original = parser._lex_condition_expression
    tokens: OrderedDict[str, tuple[Any, ...]] = OrderedDict()

    def lex_condition_expression(self: Any) -> deque[Any]:
        text = self.condition_expression
        found = tokens.get(text)
        if found is None:
            found = tokens[text] = tuple(original(self))
            while len(tokens) > KEPT_CONDITIONS:
                tokens.popitem(last=False)
        return deque(found)

    parser._lex_condition_expression = lex_condition_expression
    try:
        yield
    finally:
        parser._lex_condition_expression = original


@contextmanager
def quick_dispatch() -> Iterator[None]:
    """moto's dispatch without listing a handler class's methods on every request.

    moto finds the method for an action by listing, with ``inspect.getmembers``, every function
    of the handler's class, on every request (about a millisecond for DynamoDB's handler).
    Inside, the list is made once per class (the classes do not change while a stack runs).
    """
    responses: Any = importlib.import_module("moto.core.responses")
    original = responses.method_names_from_class
    names: dict[Any, list[str]] = {}

    def method_names_from_class(clazz: object) -> list[str]:
        found = names.get(clazz)
        if found is None:
            found = names[clazz] = original(clazz)
        return found

    responses.method_names_from_class = method_names_from_class
    try:
        yield
    finally:
        responses.method_names_from_class = original


@contextmanager
def quick_creating_updates() -> Iterator[None]:
    """An UpdateItem that creates its item validated once, not twice.

    moto validates the UpdateExpression of an UpdateItem whose item does not exist yet twice:
    against an empty item before it creates the item (so that a refused update creates
    nothing), then against the item it created, which holds the key alone. The two read the
    same attributes unless the expression names one of the key's: inside, when it names none,
    the second validation is the first's tree (which moto only checked, and nothing changed).
    The first is kept for the validation that follows it in the same request (the same parsed
    expression, names and values, the item holding no more than its key); any other starts
    afresh.
    """
    backend: Any = importlib.import_module("moto.dynamodb.models")
    nodes: Any = importlib.import_module("moto.dynamodb.parsing.ast_nodes")
    original = backend.UpdateExpressionValidator
    kept: list[tuple[Any, Any, Any, Any, Any]] = []
    """(expression, names, values, table, validated tree) of a validation against no item."""

    named: OrderedDict[tuple[int, tuple[tuple[str, str], ...]], tuple[Any, frozenset[Any]]] = (
        OrderedDict()
    )
    """(a parsed expression, its placeholders' names) -> the expression and the attribute names
    it has (the expression is kept so that its id is not another's)."""

    def reads_no_key(expression: Any, names: dict[str, str] | None, table: Any) -> bool:
        key = (id(expression), tuple(sorted((names or {}).items())))
        found = named.get(key)
        if found is None or found[0] is not expression:
            plain = expression.find_clauses([nodes.ExpressionAttribute])
            placeholders = expression.find_clauses([nodes.ExpressionAttributeName])
            found = named[key] = (
                expression,
                frozenset(node.get_attribute_name() for node in plain)
                | frozenset(
                    (names or {}).get(node.get_attribute_name_placeholder())
                    for node in placeholders
                ),
            )
            while len(named) > KEPT_EXPRESSIONS:
                named.popitem(last=False)
        return not found[1] & {table.hash_key_attr, table.range_key_attr}

    class Validator(original):  # type: ignore[misc, valid-type]
        def __init__(
            self,
            expression: Any,
            expression_attribute_names: Any,
            expression_attribute_values: Any,
            item: Any,
            table: Any,
        ) -> None:
            asked = (expression, expression_attribute_names, expression_attribute_values, table)
            first = kept.pop() if kept else None
            self.kept_tree = None
            if (
                first is not None
                and all(a is b for a, b in zip(first[:4], asked, strict=True))
                and set(item.attrs) <= {table.hash_key_attr, table.range_key_attr}
            ):
                self.kept_tree = first[4]
                return
            super().__init__(*asked[:3], item, table)
            self.expression = expression

        def validate(self) -> Any:
            if self.kept_tree is not None:
                return self.kept_tree
            tree = super().validate()
            if not self.item.attrs and reads_no_key(
                self.expression, self.expression_attribute_names, self.table
            ):
                kept.append(
                    (
                        self.expression,
                        self.expression_attribute_names,
                        self.expression_attribute_values,
                        self.table,
                        tree,
                    )
                )
            return tree

    backend.UpdateExpressionValidator = Validator
    try:
        yield
    finally:
        backend.UpdateExpressionValidator = original


@contextmanager
def quick_moto() -> Iterator[None]:
    """moto at the cost of what a request does, everywhere the local stack runs (the stack, the
    integration tests, the benchmarks): item-sized transactions, UpdateExpressions parsed once
    and walked without asking again what depends on a class, ConditionExpressions tokenized
    once, a handler's methods listed once, JSON responses written without asking again where
    each member is, an update that creates its item validated once, DynamoDB calls answered
    in process without an HTTP request."""
    with (
        item_sized_transactions(),
        quick_update_expressions(),
        quick_walks(),
        quick_conditions(),
        quick_dispatch(),
        quick_responses(),
        quick_attribute_values(),
        quick_creating_updates(),
        quick_calls(),
    ):
        yield
