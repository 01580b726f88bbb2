"""What the routes read from the request besides its parameters: who calls, what they accept."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools.event_handler.api_gateway import BaseRouter


def event() -> Any:
    """The API Gateway v2 event being handled."""
    return BaseRouter.current_event


def caller() -> str | None:
    """Who made the request, as API Gateway's authorizer saw them: the IAM principal (SigV4) or
    the JWT's subject. None when the route is not authorised (or locally, without auth)."""
    context = event().get("requestContext") or {}
    authorizer = context.get("authorizer") or {}
    iam = authorizer.get("iam") or {}
    if iam.get("userArn"):
        return str(iam["userArn"])
    claims = (authorizer.get("jwt") or {}).get("claims") or {}
    for name in ("email", "sub"):
        if claims.get(name):
            return str(claims[name])
    return None


def wants_json() -> bool:
    """True when the client prefers JSON to HTML (the CLI, scripts); browsers get pages."""
    accept = str(event().headers.get("accept") or "")
    if "application/json" not in accept:
        return False
    return "text/html" not in accept or accept.index("application/json") < accept.index("text/html")


def lambda_context() -> Any:
    """The Lambda context of the invocation (None when called in-process without one)."""
    return BaseRouter.lambda_context
