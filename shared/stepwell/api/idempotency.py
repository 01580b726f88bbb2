"""``Idempotency-Key`` on ``POST /workflows/{name}/runs``, with Powertools Idempotency.

A repeat of the same key (per workflow) within 24 hours answers with the run the first request
started; the same key with a different body raises ``IdempotencyValidationError`` (answered
409). The run's id derives from the key and the body (:func:`run_id_for`), so a retry of a
request that failed after its run was written (the record is then forgotten) starts no second
run, and a repeat that finds the first request's record still in progress (it is running, or
it failed and DynamoDB lost its record's clean-up) starts or finds that same run at once
rather than waiting for the record to lapse. On AWS the records are items of the Stepwell
table (``pk = IDEMPOTENCY#start-run``, ``sk = <key hash>``, TTL ``expires_at``); elsewhere they
live in memory.
"""

from __future__ import annotations

import copy
import hashlib
import json
import threading
from collections.abc import Callable
from typing import Any

from aws_lambda_powertools.utilities.idempotency import (
    BasePersistenceLayer,
    DynamoDBPersistenceLayer,
    IdempotencyConfig,
    idempotent_function,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyAlreadyInProgressError,
    IdempotencyInconsistentStateError,
    IdempotencyItemAlreadyExistsError,
    IdempotencyItemNotFoundError,
)
from aws_lambda_powertools.utilities.idempotency.persistence.datarecord import (
    STATUS_CONSTANTS,
    DataRecord,
)

from stepwell.runtime.clock import SystemClock

EXPIRES_AFTER_S = 24 * 60 * 60
KEY_PREFIX = "stepwell-start-run"
"""Fixed, so the key hash does not depend on the Lambda function's name (or the local stack)."""
PARTITION = "IDEMPOTENCY#start-run"

IN_PROGRESS_S = 30
"""Outside Lambda (no context to ask), how long a first request holds its key while it runs:
a request that crashed frees the key after this, not after 24 hours."""


class _NoLambda:
    """Stands in for the Lambda context when there is none (the local stack, tests)."""

    def get_remaining_time_in_millis(self) -> int:
        return IN_PROGRESS_S * 1000


def run_id_for(workflow: str, key: str, body: Any) -> str:
    """The id of the run a request with an Idempotency-Key starts: the same for every retry of
    that request (so a retry after an error finds the run the first try wrote)."""
    text = json.dumps([workflow, key, body], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(text.encode()).hexdigest()[:32]


def config(context: Any = None) -> IdempotencyConfig:
    """The configuration of one request (Powertools reads the time left from the context)."""
    found = IdempotencyConfig(
        event_key_jmespath="[workflow, key]",
        payload_validation_jmespath="body",
        raise_on_no_idempotency_key=True,
        expires_after_seconds=EXPIRES_AFTER_S,
    )
    has_clock = context is not None and hasattr(context, "get_remaining_time_in_millis")
    found.register_lambda_context(context if has_clock else _NoLambda())  # type: ignore[arg-type]
    return found


def dynamodb_layer(table: str, client: Any) -> BasePersistenceLayer:
    """Idempotency records in the Stepwell table (its ``pk``/``sk`` and ``expires_at`` TTL)."""
    return DynamoDBPersistenceLayer(
        table_name=table,
        key_attr="pk",
        sort_key_attr="sk",
        static_pk_value=PARTITION,
        expiry_attr="expires_at",
        boto3_client=client,
    )


def once(
    layer: BasePersistenceLayer,
    start: Callable[[], dict[str, Any]],
    *,
    workflow: str,
    key: str,
    body: Any,
    context: Any = None,
) -> dict[str, Any]:
    """``start()`` the first time ``key`` is seen for ``workflow``; its stored result after.

    Raises ``IdempotencyValidationError`` when ``body`` differs from the first request's. While
    the first request's record is in progress, ``start()`` runs again: the body matched (it is
    checked first), so the run id is the first request's, and starting it again starts that
    run if it was never written or finds it (a run is written once).
    """

    def run(request: dict[str, Any]) -> dict[str, Any]:
        return start()

    guarded = idempotent_function(
        run,
        data_keyword_argument="request",
        persistence_store=layer,
        config=config(context),
        key_prefix=KEY_PREFIX,
    )
    try:
        result: dict[str, Any] = guarded(request={"workflow": workflow, "key": key, "body": body})
    except (IdempotencyAlreadyInProgressError, IdempotencyInconsistentStateError):
        return start()
    return result


class MemoryLayer(BasePersistenceLayer):
    """Idempotency records in a dict: the same conditions as the DynamoDB layer, one process."""

    def __init__(self) -> None:
        super().__init__()  # type: ignore[no-untyped-call]
        self._records: dict[str, DataRecord] = {}
        self._lock = threading.Lock()

    def _get_record(self, idempotency_key: str) -> DataRecord:
        with self._lock:
            found = self._records.get(idempotency_key)
        if found is None:
            raise IdempotencyItemNotFoundError
        return copy.copy(found)

    def _put_record(self, data_record: DataRecord) -> None:
        with self._lock:
            old = self._records.get(data_record.idempotency_key)
            if old is not None and not _replaceable(old):
                # As the DynamoDB layer does: a different payload is refused here, at the put.
                self._validate_payload(data_payload=data_record, stored_data_record=old)
                raise IdempotencyItemAlreadyExistsError(old_data_record=copy.copy(old))
            self._records[data_record.idempotency_key] = copy.copy(data_record)

    def _update_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records[data_record.idempotency_key] = copy.copy(data_record)

    def _delete_record(self, data_record: DataRecord) -> None:
        with self._lock:
            self._records.pop(data_record.idempotency_key, None)


def _replaceable(record: DataRecord) -> bool:
    """An expired record, or an in-progress one whose invocation ran out of time."""
    if record.is_expired:
        return True
    if record.status == STATUS_CONSTANTS["INPROGRESS"] and record.in_progress_expiry_timestamp:
        return _in_progress_lapsed(record.in_progress_expiry_timestamp)
    return False


def _in_progress_lapsed(expiry_ms: int) -> bool:
    # The wall clock, not the runtime's: Powertools stamps the records with the wall clock.
    return SystemClock().now().timestamp() * 1000 > expiry_ms
