"""Single use of approval and callback tokens: a record of the tokens already used.

A signed token verifies as often as it is presented until it expires (see
:mod:`stepwell.signing`). What makes one final is a conditional write of a "used token" item
keyed by the token's nonce: the first writer wins, every later use is answered 409. The item
lives in the Stepwell table (``pk = TOKEN#<nonce>``, ``sk = TOKEN``) and carries the token's
expiry as its TTL, so DynamoDB deletes it once the token could not be used anyway.

The API claims a token after checking its signature and before delivering the decision, and
releases the claim when claiming or delivering fails, so an error never burns a link: a claim
carries its request's own mark, so a claim whose answer was lost (botocore sends it again and
finds the item) is still this request's, and a release removes only this request's claim.
"""

from __future__ import annotations

import contextlib
import threading
import uuid
from dataclasses import dataclass, field
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
    claimed_by: str = field(default_factory=lambda: uuid.uuid4().hex)
    """This request's own mark: a claim whose answer was lost (and that botocore sent again)
    is recognised as this request's, and a release removes only this request's claim."""


class UsedTokens(Protocol):
    """The record of used tokens."""

    def claim(self, use: Use) -> bool:
        """Mark the token used; False when it already was (the caller answers 409)."""
        ...

    def used(self, nonce: str) -> bool:
        """Whether the token was used."""
        ...

    def release(self, use: Use) -> None:
        """Forget this request's claim (its delivery failed), so the link can be used again."""
        ...


def claim_once(tokens: UsedTokens, use: Use) -> bool:
    """``tokens.claim(use)``; if the claim itself fails (perhaps after it was written), this
    request's claim is released before the error goes on, so an error never burns a link."""
    try:
        return tokens.claim(use)
    except Exception:
        tokens.release(use)
        raise


class MemoryUsedTokens:
    """Used tokens in a set (unit tests, the in-process world)."""

    def __init__(self) -> None:
        self._used: dict[str, Use] = {}
        self._lock = threading.Lock()

    def claim(self, use: Use) -> bool:
        with self._lock:
            found = self._used.get(use.nonce)
            if found is not None:
                return found.claimed_by == use.claimed_by
            self._used[use.nonce] = use
            return True

    def used(self, nonce: str) -> bool:
        with self._lock:
            return nonce in self._used

    def release(self, use: Use) -> None:
        with self._lock:
            found = self._used.get(use.nonce)
            if found is not None and found.claimed_by == use.claimed_by:
                del self._used[use.nonce]


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
            "claimed_by": {"S": use.claimed_by},
        }
        try:
            self._client.put_item(
                TableName=self._table,
                Item=item,
                ConditionExpression="attribute_not_exists(pk)",
            )
        except self._client.exceptions.ConditionalCheckFailedException:
            # Used already, or by this very request (its first try's answer was lost).
            return self._claimant(use.nonce) == use.claimed_by
        return True

    def _claimant(self, nonce: str) -> str | None:
        found = self._client.get_item(
            TableName=self._table, Key=self._key(nonce), ConsistentRead=True
        ).get("Item")
        return found.get("claimed_by", {}).get("S") if found else None

    def used(self, nonce: str) -> bool:
        found = self._client.get_item(
            TableName=self._table,
            Key=self._key(nonce),
            ConsistentRead=True,
            ProjectionExpression="pk",
        )
        return "Item" in found

    def release(self, use: Use) -> None:
        # Not claimed, or by another request: nothing of this one's to release.
        with contextlib.suppress(self._client.exceptions.ConditionalCheckFailedException):
            self._client.delete_item(
                TableName=self._table,
                Key=self._key(use.nonce),
                ConditionExpression="claimed_by = :mine",
                ExpressionAttributeValues={":mine": {"S": use.claimed_by}},
            )
