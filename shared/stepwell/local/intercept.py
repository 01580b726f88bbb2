"""Routing four AWS operations to the local stack, under the unchanged boto3 adapters.

The runtime's adapters call ``lambda.invoke``, ``sqs.send_message``,
``scheduler.create_schedule`` and ``events.put_events`` exactly as in a deployed stack. The
local stack answers those calls itself through botocore's event hooks:

* ``before-parameter-build.<service>.<Operation>`` keeps the call's parameters (as the caller
  gave them, already validated against the API model) in the request context;
* ``before-call.<service>.<Operation>`` hands them to the stack and returns
  ``(http_response, parsed_response)``. botocore skips the HTTP request whenever a
  ``before-call`` handler returns a value (``BaseClient._make_api_call``), then raises the
  modelled error for a status >= 300 exactly as for a real response.

The hooks are registered on boto3's default session (which ``boto3.client(...)`` uses) and on
botocore's built-in handler list, so sessions created later (Powertools makes its own) get them
too. Every other operation goes to moto, in process.
"""

from __future__ import annotations

import io
from collections.abc import Callable, Mapping
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.response import StreamingBody

PARAMS_KEY = "stepwell_local_params"

Operation = Callable[[dict[str, Any]], dict[str, Any]]
"""The stack's answer to one operation: parameters in, parsed response out (or ServiceError)."""


class ServiceError(Exception):
    """An AWS error answer: ``code`` (``ResourceNotFoundException``), message, HTTP status."""

    def __init__(
        self, code: str, message: str, status: int = 400, query_code: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.status = status
        self.query_code = query_code


class _Raw:
    """The raw body botocore may read from the fake HTTP response."""

    def __init__(self, body: bytes) -> None:
        self._body = body

    def stream(self, **_: Any) -> Any:
        yield self._body


def streaming(body: bytes) -> StreamingBody:
    """A response ``Payload`` (``.read()`` like Lambda's)."""
    return StreamingBody(io.BytesIO(body), len(body))


class Interceptor:
    """Installs the hooks for ``operations`` (``"lambda.Invoke"`` -> answer)."""

    def __init__(self, operations: Mapping[str, Operation]) -> None:
        self.operations = dict(operations)
        self._registered: list[tuple[Any, str, Callable[..., Any]]] = []
        self._builtin: list[tuple[str, Callable[..., Any]]] = []
        self.active = False
        self.calls: dict[str, int] = {}

    def _keep(self, params: dict[str, Any], context: dict[str, Any], **_: Any) -> None:
        context[PARAMS_KEY] = params

    def _answer(self, model: Any, context: dict[str, Any], **_: Any) -> Any:
        if not self.active:
            return None
        service = model.service_model.service_id.hyphenize()
        key = f"{service}.{model.name}"
        operation = self.operations.get(key)
        if operation is None:
            return None
        self.calls[key] = self.calls.get(key, 0) + 1
        params = dict(context.get(PARAMS_KEY) or {})
        url = f"https://{service}.local.stepwell/{model.name}"
        meta = {"HTTPStatusCode": 200, "RequestId": "local", "HTTPHeaders": {}, "RetryAttempts": 0}
        try:
            parsed = operation(params)
        except ServiceError as exc:
            error = {"Code": exc.code, "Message": str(exc)}
            if exc.query_code:
                error["QueryErrorCode"] = exc.query_code
            meta["HTTPStatusCode"] = exc.status
            body = {"Error": error, "ResponseMetadata": meta, "message": str(exc)}
            return AWSResponse(url, exc.status, HTTPHeaders(), _Raw(b"")), body
        status = int(parsed.pop("_status", 200))
        meta["HTTPStatusCode"] = status
        parsed.setdefault("ResponseMetadata", meta)
        return AWSResponse(url, status, HTTPHeaders(), _Raw(b"")), parsed

    def install(self) -> None:
        """Register the hooks (default session and every session created from now on)."""
        session = boto3._get_default_session()
        events = session.events
        for key in self.operations:
            for event, handler in (
                (f"before-parameter-build.{key}", self._keep),
                (f"before-call.{key}", self._answer),
            ):
                events.register(event, handler, unique_id=f"stepwell-local-{event}")
                self._registered.append((events, event, handler))
                entry = (event, handler)
                botocore.handlers.BUILTIN_HANDLERS.append(entry)
                self._builtin.append(entry)
        self.active = True

    def uninstall(self) -> None:
        """Remove the hooks; clients made meanwhile fall through to the real call again."""
        self.active = False
        for events, event, handler in self._registered:
            events.unregister(event, handler, unique_id=f"stepwell-local-{event}")
        self._registered.clear()
        for entry in self._builtin:
            if entry in botocore.handlers.BUILTIN_HANDLERS:
                botocore.handlers.BUILTIN_HANDLERS.remove(entry)
        self._builtin.clear()
