"""DynamoDB faults as Stepwell meets them: which errors AWS calls retryable, what an error is
(a read timeout has no error code), and a call tried again inside the caller's budget.

botocore already retries a request a few times; these are the faults that outlast its retries.
A read is simply sent again. A write is sent again only when sending it twice cannot apply it
twice: a conditional write that carries its own write id (see ``DynamoStore``), whose second
sending either applies it or finds it applied.
"""

from __future__ import annotations

import logging
import random
import time
from collections import Counter
from collections.abc import Callable
from typing import Any, TypeVar

from botocore.exceptions import ClientError, ConnectionError, HTTPClientError
from pynamodb.exceptions import PynamoDBException

log = logging.getLogger(__name__)

T = TypeVar("T")

TRIES = 5
"""Sendings of one request (after botocore's own retries): 0.02, 0.04, 0.08, 0.16 s apart at
most (full jitter), well inside any caller's budget."""

RETRYABLE_CODES = frozenset(
    {
        "InternalServerError",
        "ServiceUnavailable",
        "ThrottlingException",
        "ProvisionedThroughputExceededException",
        "RequestLimitExceeded",
        "TransactionInProgressException",
        "RequestTimeout",
        "RequestTimeoutException",
    }
)
"""DynamoDB's error codes for faults that pass (as botocore's standard retry mode lists them)."""


def cause_of(exc: BaseException) -> BaseException:
    """The botocore error under a pynamodb one (or the error itself)."""
    found = exc
    while isinstance(found, PynamoDBException) and found.cause is not None:
        found = found.cause
    return found


def error_code(exc: BaseException) -> str | None:
    """DynamoDB's error code (``ConditionalCheckFailedException`` ...), or None when the error
    has none: a read timeout or a dropped connection never got an answer (pynamodb's
    ``cause_response_code`` fails on those: their ``response`` is None)."""
    response = getattr(cause_of(exc), "response", None)
    if not isinstance(response, dict):
        return None
    code = response.get("Error", {}).get("Code")
    return str(code) if code else None


def retryable(exc: BaseException) -> bool:
    """Whether AWS calls the fault retryable: throttling, an internal error, a timeout, a
    connection that failed or dropped."""
    cause = cause_of(exc)
    if isinstance(cause, ConnectionError | HTTPClientError):
        return True
    if not isinstance(cause, ClientError):
        return False
    if error_code(cause) in RETRYABLE_CODES:
        return True
    status = cause.response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0)
    return isinstance(status, int) and status >= 500


def describe(exc: BaseException) -> str:
    """What the fault is, in a word: its error code, else the type of error (ReadTimeoutError)."""
    return error_code(exc) or type(cause_of(exc)).__name__


def pause(attempt: int) -> None:
    """Full-jitter backoff before sending again (``attempt`` from 0)."""
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())


def retried(
    call: Callable[[], T],
    what: str,
    faults: Counter[str] | None = None,
    tries: int = TRIES,
) -> T:
    """``call()``, sent again while it fails with a retryable fault (``tries`` sendings in all);
    each fault is logged and counted by what it is. A call that is not safe to send twice must
    not come here."""
    for attempt in range(tries):
        try:
            return call()
        except Exception as exc:
            if not retryable(exc) or attempt == tries - 1:
                raise
            noted(exc, what, faults, attempt + 1)
            pause(attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def noted(exc: BaseException, what: str, faults: Counter[str] | None, attempt: int) -> None:
    """Log and count one fault of a call that goes on (another sending follows)."""
    kind = describe(exc)
    if faults is not None:
        faults[kind] += 1
    log.warning("DynamoDB %s on %s (sending %d); sending it again", kind, what, attempt)


def answer(exc: BaseException) -> dict[str, Any]:
    """The response a ClientError carries (empty for errors that never got one)."""
    response = getattr(cause_of(exc), "response", None)
    return response if isinstance(response, dict) else {}
