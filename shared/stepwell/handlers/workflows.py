"""Workflows: an app's function that holds its workflow files (its CodeUri): it describes them
to the engine's publisher, and replays its code-first workflows and Step Functions machines."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from stepwell.runtime import describing
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
    """A describe request from the publisher, or one replay of a code-first run."""
    runtime = current()
    if describing.is_request(event):
        return describing.answer(event, runtime.code.folder)
    envelope = receive(runtime, event)
    logger.append_keys(run_id=envelope.run_id, step_id=envelope.key, attempt=envelope.attempt)
    result = run_attempt(runtime, envelope)
    logger.info("replay", extra={"status": result.status, "error_type": result.error_type})
    return result.to_dict()
