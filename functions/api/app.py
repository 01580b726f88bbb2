"""API: the HTTP API's routes (runs, workflows, approval links, callbacks)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging import correlation_paths

from stepwell.api.resolver import app

logger = Logger()


@logger.inject_lambda_context(correlation_id_path=correlation_paths.API_GATEWAY_HTTP)
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One API Gateway HTTP API (payload v2) request."""
    return app.resolve(event, context)
