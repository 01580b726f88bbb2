"""Runner: runs built-in steps (http, notify, agent) and plain Lambdas, then records results."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger

from stepwell.runtime.envelope import StepEnvelope
from stepwell.runtime.runner import run_attempt
from stepwell.runtime.wiring import current

logger = Logger()


@logger.inject_lambda_context(correlation_id_path="idempotency_key")
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One step attempt."""
    envelope = StepEnvelope.from_dict(event)
    logger.append_keys(run_id=envelope.run_id, step_id=envelope.key, attempt=envelope.attempt)
    result = run_attempt(current(), envelope)
    logger.info("attempt", extra={"status": result.status, "error_type": result.error_type})
    return result.to_dict()
