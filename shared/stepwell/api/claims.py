"""Single use of approval and callback tokens: a record of the tokens already used.

A signed token verifies as often as it is presented until it expires (see
:mod:`stepwell.signing`). What makes one final is a conditional write of a "used token" item
keyed by the token's nonce: the first writer wins, every later use is answered 409. The item
lives in the Stepwell table (``pk = TOKEN#<nonce>``, ``sk = TOKEN``) and carries the token's
expiry as its TTL, so DynamoDB deletes it once the token could not be used anyway.

The API claims a token after checking its signature and before delivering the decision, and
releases the claim when delivering fails, so an error never burns a link.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any, Protocol

TOKEN_PREFIX = "TOKEN#"
TOKEN_SK = "TOKEN"


@dataclass(frozen=True)
class Use:
    """What a token was used for (kept on the item, for people reading the table)."""

    nonce: str
    expires_at: int
    """Epoch seconds: the token's own expiry, used as the item's TTL."""
    purpose: str
    run_id: str
    step: str


class UsedTokens(Protocol):
    """The record of used tokens."""

    def claim(self, use: Use) -> bool:
        """Mark the token used; False when it already was (the caller answers 409)."""
        ...

    def used(self, nonce: str) -> bool:
        """Whether the token was used."""
        ...

    def release(self, nonce: str) -> None:
        """Forget a claim whose delivery failed, so the link can be used again."""
        ...


class MemoryUsedTokens:
    """Used tokens in a set (unit tests, the in-process world)."""

    def __init__(self) -> None:
        self._used: dict[str, Use] = {}
        self._lock = threading.Lock()

    def claim(self, use: Use) -> bool:
        with self._lock:
            if use.nonce in self._used:
                return False
            self._used[use.nonce] = use
            return True

    def used(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._used

    def release(self, nonce: str) -> None:
        with self._lock:
            self._used.pop(nonce, None)


class DynamoUsedTokens:
    """Used tokens as items of the Stepwell table, written with ``attribute_not_exists``.

    ``client`` is a botocore DynamoDB client (the store's own, so a request meter sees it).
    """

    def __init__(self, table: str, client: Any) -> None:
        self._table = table
        self._client = client

    @staticmethod
    def _key(nonce: str) -> dict[str, Any]:
        return {"pk": {"S": TOKEN_PREFIX + nonce}, "sk": {"S": TOKEN_SK}}

    def claim(self, use: Use) -> bool:
        item = {
            **self._key(use.nonce),
            "kind": {"S": "token"},
            "purpose": {"S": use.purpose},
            "run_id": {"S": use.run_id},
            "step": {"S": use.step},
            "expires_at": {"N": str(use.expires_at)},
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            return False
        return True

    def used(self, nonce: str) -> bool:
        found = self._client.get_item(
            TableName=self._table,
            Key=self._key(nonce),
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in found

    def release(self, nonce: str) -> None:
        self._client.delete_item(TableName=self._table, Key=self._key(nonce))
