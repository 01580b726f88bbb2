"""OpenAPI details shared by the routers: security schemes and documented error answers."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.openapi.models import APIKey, APIKeyIn, HTTPBearer

from stepwell.api.errors import CODES
from stepwell.api.models import ErrorBody

SECURITY_SCHEMES: dict[str, Any] = {
    "sigv4": APIKey.model_validate(
        {
            "type": "apiKey",
            "in": APIKeyIn.header,
            "name": "Authorization",
            "description": "AWS Signature Version 4 (IAM auth on API Gateway).",
        }
    ),
    "jwt": HTTPBearer(
        bearerFormat="JWT",
        description="A JWT of the configured issuer (when the stack sets JwtIssuer).",
    ),
}
MANAGEMENT: list[dict[str, list[str]]] = [{"sigv4": []}, {"jwt": []}]
"""Management routes: SigV4 or, where configured, a JWT. Approval and callback routes are
authorised by their signed tokens alone."""

_WHY = {
    403: "The token was changed or not signed here.",
    404: "No such workflow, run or step.",
    409: "Not allowed in the state the run or step is in.",
    410: "The link has expired.",
    413: "The body is over 256 KB.",
    415: "The body is neither JSON nor a form.",
    422: "The request does not have the right shape; details list each problem.",
}


def responses(success: int, description: str, *failures: int) -> dict[int, Any]:
    """The documented answers of a route: its success (shaped by its return annotation) and
    the errors it may give, besides 413 and 422 which any route may give."""
    out: dict[int, Any] = {success: {"description": description}}
    for status in sorted({*failures, 413, 422}):
        out[status] = {
            "description": _WHY.get(status, CODES.get(status, "error")),
            "content": {"application/json": {"model": ErrorBody}},
        }
    return out
