"""API: the HTTP API's routes (runs, workflows, approval links, callbacks)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.logging import correlation_paths

from stepwell.api.resolver import app
from stepwell.runtime import wiring
from stepwell.runtime.aws.metrics import metrics

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway HTTP API (payload v2) request."""
    with wiring.serving_request(event):  # approval links made now point at this API
        return app.resolve(event, context)
