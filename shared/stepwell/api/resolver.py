"""The HTTP API: one Powertools ``APIGatewayHttpResolver`` with a router per area.

``app.resolve(event, context)`` is all ``functions/api/app.py`` does. Before routing, the body is
checked here (size, base64, UTF-8), since Powertools validates a body before any middleware of
ours would run; JSON that cannot be parsed (non-finite numbers, huge integers) is a 422 like any
other malformed JSON, and JSON nested deeper than Stepwell keeps is a 422 located at the value.
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import re
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote

from aws_lambda_powertools.event_handler import APIGatewayHttpResolver, Response, content_types
from aws_lambda_powertools.event_handler.openapi.exceptions import RequestValidationError
from aws_lambda_powertools.utilities.typing import LambdaContext

import stepwell
from stepwell import intake
from stepwell.api import (
    approvals,
    callbacks,
    delegations,
    errors,
    events,
    inbox,
    inputs,
    operator,
    runs,
    workflows,
)
from stepwell.api.deps import MAX_BODY_BYTES
from stepwell.api.openapi import SECURITY_SCHEMES

DESCRIPTION = """Start and watch workflow runs, act on them, and decide approvals.

Management routes are authorised by AWS IAM (SigV4) or, where the stack sets JwtIssuer, a JWT.
Approval and callback routes are authorised by their signed tokens alone. Every error is JSON
`{error, message, details}`."""


class StepwellResolver(APIGatewayHttpResolver):
    """The resolver, with the body checked before routing."""

    def __init__(self, max_body_bytes: int = MAX_BODY_BYTES) -> None:
        super().__init__(enable_validation=True, json_body_deserializer=strict_json)
        self.max_body_bytes = max_body_bytes

    def resolve(self, event: Mapping[str, Any], context: LambdaContext | None) -> dict[str, Any]:
        """Answer one API Gateway HTTP API (payload v2) event."""
        checked = self._checked_body(event)
        routed = "statusCode" not in checked
        answer = super().resolve(checked, context) if routed else checked  # type: ignore[arg-type]
        # No browser may read a JSON answer as anything else (a script, a page).
        answer.setdefault("headers", {}).setdefault("X-Content-Type-Options", "nosniff")
        return answer

    def _convert_matches_into_route_keys(self, match: re.Match[str]) -> dict[str, str]:
        # A path parameter arrives as the client encoded it in rawPath: decoded here, once, so
        # the routes and the maxLength the document declares see the value itself
        # (reserve[3], not reserve%5B3%5D).
        return {name: unquote(value) for name, value in match.groupdict().items()}

    def _checked_body(self, event: Mapping[str, Any]) -> dict[str, Any]:
        """The event with a plain-text body, or the error response to give instead."""
        headers = event.get("headers") or {}
        content_type = next(
            (str(v) for k, v in headers.items() if str(k).lower() == "content-type"), ""
        )
        kind = content_type.strip().lower()
        if kind.startswith("multipart/"):
            # Nothing here takes files; Powertools would fail on a multipart body without a
            # boundary instead of refusing it.
            return errors.raw_response(415, "send application/json (or a form, for approvals)")
        path = str(event.get("rawPath") or "")
        if kind.startswith("application/x-www-form-urlencoded") and not path.startswith(
            ("/approvals/", "/inputs/", "/delegations/")
        ):
            return errors.raw_response(
                415,
                "send application/json: only approvals take a form (and input steps' forms, "
                "and delegations)",
            )
        body = event.get("body")
        if body is None or body == "":
            return dict(event)
        if not isinstance(body, str):
            return errors.raw_response(422, "the request body must be text")
        limit = self.max_body_bytes
        too_large = errors.raw_response(413, f"the request body is over {limit // 1024} KB")
        if event.get("isBase64Encoded"):
            if len(body) > (limit + 2) // 3 * 4 + 4:
                return too_large
            try:
                raw = base64.b64decode(body, validate=True)
            except (binascii.Error, ValueError):
                return errors.raw_response(422, "the request body is not valid base64")
            if len(raw) > limit:
                return too_large
            try:
                text = raw.decode("utf-8")
            except UnicodeDecodeError:
                return errors.raw_response(422, "the request body must be UTF-8 text")
            return {**event, "body": text, "isBase64Encoded": False}
        if len(body) > limit or len(body.encode("utf-8", "surrogatepass")) > limit:
            return too_large
        return dict(event)


def strict_json(text: str) -> Any:
    """A body as :func:`stepwell.intake.parse` takes it: too deep is a 422 located at the value
    that is, any other bad JSON a JSONDecodeError (which Powertools makes a 422). A body is an
    object whose fields are the values kept (``input``, ``output`` ...): one level more."""
    try:
        return intake.parse(text, "the request body", intake.MAX_DEPTH + 1)
    except intake.JsonTooDeep as exc:
        raise RequestValidationError(
            [{"type": "too_deep", "loc": ("body", *exc.path), "msg": exc.reason}]
        ) from None
    except json.JSONDecodeError:
        raise
    except ValueError as exc:
        raise json.JSONDecodeError(str(exc) or "not JSON", text, 0) from None


def _pattern(openapi_path: str) -> re.Pattern[str]:
    """``/runs/{run_id}`` as a regular expression of the paths it covers."""
    escaped = re.escape(openapi_path)
    return re.compile("^" + re.sub(r"\\\{[^/]+?\\\}", "[^/]+", escaped) + "$")


def build() -> StepwellResolver:
    """The resolver with every route."""
    app = StepwellResolver()
    app.configure_openapi(
        title="Stepwell",
        version=stepwell.__version__,
        description=DESCRIPTION,
        security_schemes=SECURITY_SCHEMES,
    )
    modules = (workflows, runs, operator, inbox, approvals, inputs, delegations, callbacks, events)
    for module in modules:
        app.include_router(module.router)

    @functools.cache
    def openapi_json() -> str:
        return app.get_openapi_json_schema()

    @functools.cache
    def paths() -> list[tuple[re.Pattern[str], list[str]]]:
        spec = json.loads(openapi_json())
        found = [("/openapi.json", ["GET"])]
        found += [(path, sorted(m.upper() for m in item)) for path, item in spec["paths"].items()]
        return [(_pattern(path), methods) for path, methods in found]

    def allowed(path: str) -> list[str]:
        return next((methods for pattern, methods in paths() if pattern.match(path)), [])

    errors.register(app, allowed)

    @app.get("/openapi.json", include_in_schema=False)
    def openapi() -> Response[str]:
        return Response(200, content_types.APPLICATION_JSON, openapi_json())

    return app


app = build()
