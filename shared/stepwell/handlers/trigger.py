"""Trigger: EventBridge events and schedules start runs."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer

from stepwell.runtime.aws.metrics import metrics
from stepwell.runtime.triggers import start_from_trigger
from stepwell.runtime.wiring import current

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="event.id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """``{"workflow", "event"}`` from a rule, or ``{"workflow", "input"}`` from a schedule."""
    run_id = start_from_trigger(current().orchestrator, event)
    logger.info("run started", extra={"run_id": run_id, "workflow": event.get("workflow")})
    return {"run_id": run_id}
