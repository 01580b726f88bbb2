"""DynamoDB faults injected into botocore clients: a call that fails before it takes effect (the
request is never sent), or after (it took effect and its answer is lost), as DynamoDB and the
network do: throttling, internal errors, dropped connections, read timeouts, transactions
cancelled for a conflict or throttling.

    faults = DynamoFaults(seed=7, before=0.05, after=0.05)
    faults.attach(client)            # every call of that client may now fail
    faults.next("TransactWriteItems", conflict())   # or: the next such call fails so
"""

from __future__ import annotations

import random
import threading
from collections import Counter
from collections.abc import Callable
from typing import Any

from botocore.exceptions import ClientError, EndpointConnectionError, ReadTimeoutError

Make = Callable[[str], Exception]


def throttled(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "ThrottlingException", "Message": "Rate exceeded (injected)"}},
        operation,
    )


def internal(operation: str) -> Exception:
    return ClientError(
        {"Error": {"Code": "InternalServerError", "Message": "Internal error (injected)"}},
        operation,
    )


def dropped(operation: str) -> Exception:
    return EndpointConnectionError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


def read_timeout(operation: str) -> Exception:
    """The answer did not come in time (botocore's read timeout: it carries no error code)."""
    return ReadTimeoutError(endpoint_url="https://dynamodb.us-east-1.amazonaws.com")


def conflict(operation: str = "TransactWriteItems", items: int = 2) -> Exception:
    """A transaction cancelled because another request held one of its items."""
    return ClientError(
        {
            "Error": {
                "Code": "TransactionCanceledException",
                "Message": "Transaction cancelled [TransactionConflict] (injected)",
            },
            "CancellationReasons": [{"Code": "TransactionConflict", "Message": "conflict"}]
            + [{"Code": "None"}] * (items - 1),
        },
        operation,
    )


ERRORS: tuple[Make, ...] = (throttled, internal, dropped, read_timeout)
WRITES = frozenset({"PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems", "BatchWriteItem"})


class DynamoFaults:
    """Seeded faults on the DynamoDB calls of the clients it is attached to."""

    def __init__(self, seed: int = 0, before: float = 0.0, after: float = 0.0) -> None:
        self.random = random.Random(seed)
        self.before_rate = before
        self.after_rate = after
        self.enabled = True
        self.injected: Counter[str] = Counter()
        self.calls: Counter[str] = Counter()
        """Every call made, faulty or not, by operation."""
        self._next: dict[tuple[str, str], list[Make]] = {}
        self._lock = threading.Lock()

    def attach(self, client: Any) -> DynamoFaults:
        client.meta.events.register("before-call.dynamodb", self._before)
        client.meta.events.register("after-call.dynamodb", self._after)
        return self

    def next(self, operation: str, make: Make = internal, *, when: str = "before") -> None:
        """The next ``operation`` call fails with ``make`` (``when``: before or after it took
        effect)."""
        with self._lock:
            self._next.setdefault((operation, when), []).append(make)

    def clear(self) -> None:
        """Forget the faults queued by :meth:`next` that did not happen yet."""
        with self._lock:
            self._next.clear()

    def _pick(self, operation: str, when: str, rate: float) -> Make | None:
        with self._lock:
            queued = self._next.get((operation, when))
            if queued:
                return queued.pop(0)
            if not self.enabled or rate <= 0 or self.random.random() >= rate:
                return None
            if when == "after" and operation not in WRITES:
                return None  # a read that took effect and was lost is only a failed read
            return self.random.choice(ERRORS)

    def _before(self, model: Any, **kwargs: Any) -> None:
        with self._lock:
            self.calls[model.name] += 1
        make = self._pick(model.name, "before", self.before_rate)
        if make is not None:
            self.injected[f"{model.name} before"] += 1
            raise make(model.name)

    def _after(self, model: Any, http_response: Any = None, **kwargs: Any) -> None:
        status = getattr(http_response, "status_code", 200)
        if status >= 300:
            return  # it failed on its own: nothing took effect
        make = self._pick(model.name, "after", self.after_rate)
        if make is not None:
            self.injected[f"{model.name} after"] += 1
            raise make(model.name)
