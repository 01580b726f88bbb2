"""Every error the API answers, in one place: JSON ``{error, message, details}``.

Bad input never yields a 5xx or a traceback: unknown things are 404, wrong shapes 422, illegal
transitions 409, refused tokens 403 and 410, bodies over the limit 413. What is left (a bug, an
AWS outage) is a 500 without internals; the exception goes to the log with the request id.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from http import HTTPStatus
from typing import Any

from aws_lambda_powertools import Logger
from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.exceptions import NotFoundError
from aws_lambda_powertools.event_handler.openapi.exceptions import (
    RequestUnsupportedContentType,
    RequestValidationError,
)
from aws_lambda_powertools.utilities.idempotency.exceptions import (
    IdempotencyValidationError,
)
from pydantic import ValidationError

from stepwell.engine.rerun import RerunError
from stepwell.runtime.orchestrator import UnknownWorkflow
from stepwell.signing import TokenExpired, TokenTampered
from stepwell.store.port import Conflict, RunNotFound

logger = Logger(child=True)

CODES: dict[int, str] = {
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    409: "conflict",
    410: "gone",
    413: "too_large",
    415: "unsupported_media_type",
    422: "invalid",
    500: "internal",
    503: "busy",
}


class ApiError(Exception):
    """An answer other than success, raised anywhere below a route."""

    def __init__(self, status: int, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.details = details

    @property
    def error(self) -> str:
        """The short code of the status."""
        return CODES.get(self.status, HTTPStatus(self.status).phrase.lower().replace(" ", "_"))


def not_found(message: str) -> ApiError:
    """404."""
    return ApiError(404, message)


def conflict(message: str, details: Any = None) -> ApiError:
    """409: the action is not legal in the state the run or step is in."""
    return ApiError(409, message, details)


def invalid(message: str, details: Any = None) -> ApiError:
    """422."""
    return ApiError(422, message, details)


def body(status: int, message: str, details: Any = None) -> dict[str, Any]:
    """The JSON of an error."""
    return {"error": ApiError(status, message).error, "message": message, "details": details}


def response(
    status: int, message: str, details: Any = None, headers: dict[str, str] | None = None
) -> Response[Any]:
    """An error as a Powertools response."""
    return Response(
        status_code=status,
        content_type=content_types.APPLICATION_JSON,
        body=body(status, message, details),
        headers={"Cache-Control": "no-store", **(headers or {})},
    )


def raw_response(status: int, message: str, details: Any = None) -> dict[str, Any]:
    """An error as an API Gateway v2 response (for answers given before routing)."""
    return {
        "statusCode": status,
        "headers": {"Content-Type": content_types.APPLICATION_JSON, "Cache-Control": "no-store"},
        "body": json.dumps(body(status, message, details)),
        "isBase64Encoded": False,
    }


def schema_errors(errors: Any) -> list[dict[str, Any]]:
    """Pydantic-style errors without the input values (which may be large or private)."""
    out = []
    for error in errors:
        message = str(error.get("msg", error.get("type", "invalid")))
        why = (error.get("ctx") or {}).get("error")
        if error.get("type") == "json_invalid" and why:
            message = f"{message}: {why}"  # what is wrong with the JSON, not only that it is
        out.append(
            {
                "loc": [str(part) for part in error.get("loc", ())],
                "message": message,
                "type": str(error.get("type", "invalid")),
            }
        )
    return out


def register(
    app: APIGatewayHttpResolver, allowed: Callable[[str], list[str]] | None = None
) -> None:
    """Map every exception a route may raise to its answer; ``allowed(path)`` names the methods
    a path has (a known path asked with another method is a 405, not a 404)."""

    def _no_route(exc: NotFoundError) -> Response[Any]:
        event = app.current_event
        methods = allowed(event.path) if allowed else []
        if methods and event.http_method not in methods:
            return response(
                405,
                f"{event.path} takes {', '.join(methods)}, not {event.http_method}",
                headers={"Allow": ", ".join(methods)},
            )
        if not event.path.isascii():
            return response(
                404,
                f"no route {event.http_method} {event.path}: percent-encode the characters "
                "outside ASCII in a path (é is %C3%A9)",
            )
        return response(404, f"no route {event.http_method} {event.path}")

    def _unexpected(exc: Exception) -> Response[Any]:
        request_id = (app.current_event.get("requestContext") or {}).get("requestId", "unknown")
        logger.exception("unhandled error", extra={"request_id": request_id})
        return response(
            500, f"Stepwell could not handle this request (request id {request_id}); see its log"
        )

    handlers: dict[type[Exception], Callable[[Any], Response[Any]]] = {
        ApiError: lambda exc: response(exc.status, exc.message, exc.details),
        RequestValidationError: _request_invalid,
        ValidationError: lambda exc: response(
            422, "the request is not valid", schema_errors(exc.errors())
        ),
        RequestUnsupportedContentType: lambda exc: response(
            415, "send application/json (or a form, for approvals)", schema_errors(exc.errors())
        ),
        NotFoundError: _no_route,
        UnknownWorkflow: lambda exc: response(404, f"no workflow named {_first(exc)}"),
        RunNotFound: lambda exc: response(404, f"no run {_first(exc)}"),
        RerunError: lambda exc: response(409, str(exc)),
        TokenTampered: lambda exc: response(
            403, "this link is not valid: it was changed, or it was not made by this Stepwell"
        ),
        TokenExpired: lambda exc: response(410, "this link has expired"),
        IdempotencyValidationError: lambda exc: response(
            409,
            "this Idempotency-Key was used with a different body in the last 24 hours: "
            "use a new key for a new run",
        ),
        Conflict: lambda exc: response(
            503, "the run is changing too fast to apply this now; retry shortly"
        ),
        Exception: _unexpected,
    }
    for exc_class, handler in handlers.items():
        app.exception_handler(exc_class)(handler)


def _request_invalid(exc: RequestValidationError) -> Response[Any]:
    details = schema_errors(exc.errors())
    where = ", ".join(".".join(d["loc"]) + ": " + d["message"] for d in details[:5])
    return response(422, f"the request is not valid ({where})", details)


def _first(exc: Exception) -> str:
    return repr(exc.args[0]) if exc.args else "by that name"
