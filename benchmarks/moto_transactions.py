"""moto's TransactWriteItems at DynamoDB's cost: roll back the items it names, not the table.

moto (5.x) deep-copies the *whole table* once per item of a TransactWriteItems request, so that
it can put the table back if the transaction is cancelled. A request then costs O(items in the
table) instead of O(items in the request), and every benchmark that commits through transactions
slows down as its table fills (a 10,000-item fan-out becomes quadratic). DynamoDB has no such
cost, and the storage floor (plain conditional writes) does not pay it either.

:func:`install` keeps moto's transaction code and semantics but makes its table copies free, and
instead copies the items the request names before it runs, putting exactly those back when it
is cancelled. moto requests are serialized by the local stack, so nothing else writes meanwhile.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import SimpleNamespace
from typing import Any


@contextmanager
def installed() -> Iterator[None]:
    """Patch moto for the duration of the block."""
    from moto.dynamodb import models
    from moto.dynamodb.models.dynamo_type import DynamoType
    from moto.dynamodb.models.table import Table

    original: Callable[..., Any] = models.DynamoDBBackend.transact_write_items
    module_copy = models.copy

    def deepcopy(value: Any, memo: Any = None) -> Any:
        return value if isinstance(value, Table) else copy.deepcopy(value, memo)

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved: list[tuple[Any, Any, Any, Any]] = []
        for entry in transact_items:
            _, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None:
                continue
            attrs = op.get("Key") or op.get("Item") or {}
            if table.hash_key_attr not in attrs:
                continue
            hash_value = DynamoType(attrs[table.hash_key_attr])
            range_value = None
            if table.range_key_attr is not None:
                if table.range_key_attr not in attrs:
                    continue
                range_value = DynamoType(attrs[table.range_key_attr])
            current = table.get_item(hash_value, range_value)
            saved.append((table, hash_value, range_value, copy.deepcopy(current)))
        try:
            original(self, transact_items)
        except Exception:
            for table, hash_value, range_value, item in reversed(saved):
                if item is None:
                    table.delete_item(hash_value, range_value)
                elif range_value is not None:
                    table.items[hash_value][range_value] = item
                else:
                    table.items[hash_value] = item
            raise

    models.copy = SimpleNamespace(deepcopy=deepcopy)  # type: ignore[assignment]
    models.DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]
    try:
        yield
    finally:
        models.DynamoDBBackend.transact_write_items = original  # type: ignore[method-assign]
        models.copy = module_copy
