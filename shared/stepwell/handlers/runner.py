"""Runner: runs built-in steps (http, notify, agent) and plain Lambdas, then records results."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from stepwell.runtime.aws.metrics import metrics
from stepwell.runtime.results import receive
from stepwell.runtime.runner import run_attempt
from stepwell.runtime.wiring import current

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="idempotency_key")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One step attempt."""
    runtime = current()
    envelope = receive(runtime, event)
    logger.append_keys(run_id=envelope.run_id, step_id=envelope.key, attempt=envelope.attempt)
    result = run_attempt(runtime, envelope)
    logger.info("attempt", extra={"status": result.status, "error_type": result.error_type})
    return result.to_dict()
