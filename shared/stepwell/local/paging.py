"""Pages of a List* answer, as AWS hands them out: at most ``limit`` items, and a ``NextToken``
while more follow.

The token is the key of the last item given (opaque to the caller), so a page that follows a
deletion neither repeats nor skips an item.
"""

from __future__ import annotations

import base64
from collections.abc import Callable, Iterable
from typing import TypeVar

T = TypeVar("T")


class BadToken(ValueError):
    """A ``NextToken`` this service never gave out."""


def page(
    items: Iterable[T], key: Callable[[T], str], token: str | None, limit: int
) -> tuple[list[T], str | None]:
    """The items after ``token`` in key order, at most ``limit``, and the next token (None on
    the last page)."""
    after = _decode(token) if token else None
    ordered = sorted((i for i in items if after is None or key(i) > after), key=key)
    chosen = ordered[:limit]
    more = len(ordered) > limit
    return chosen, _encode(key(chosen[-1])) if more and chosen else None


def _encode(key: str) -> str:
    return base64.urlsafe_b64encode(key.encode()).decode()


def _decode(token: str) -> str:
    try:
        return base64.b64decode(token.encode(), altchars=b"-_", validate=True).decode()
    except ValueError:
        raise BadToken(f"Invalid NextToken {token!r}.") from None
