"""Routing the AWS operations that leave the process to the local stack, under the unchanged
boto3 adapters.

The runtime's adapters call ``lambda.invoke``, ``sqs.send_message``,
``scheduler.create_schedule`` and ``events.put_events`` exactly as in a deployed stack, and code
that makes EventBridge rules or Scheduler schedules calls their APIs. The local stack answers
those calls itself through botocore's event hooks:

* ``before-parameter-build.<service>.<Operation>`` keeps the call's parameters (as the caller
  gave them, already validated against the API model) in the request context;
* ``before-call.<service>.<Operation>`` hands them to the stack and returns
  ``(http_response, parsed_response)``. botocore skips the HTTP request whenever a
  ``before-call`` handler returns a value (``BaseClient._make_api_call``), then raises the
  modelled error for a status >= 300 exactly as for a real response.

The hooks are registered on boto3's default session (which ``boto3.client(...)`` uses) and on
botocore's built-in handler list, so sessions created later (Powertools makes its own) get them
too. Every other operation goes to moto, in process.

botocore checks a request's required members, types and minimums before it is sent; the service
checks the rest of its model (maximum lengths and values, patterns, enums) and answers a
``ValidationException``. :func:`constraint_errors` does that second half from the same model, so
an answered operation refuses what the service would, in the service's words.
"""

from __future__ import annotations

import io
import re
from collections.abc import Callable, Mapping
from functools import cache
from typing import Any

import boto3
import botocore.handlers
from botocore.awsrequest import AWSResponse
from botocore.compat import HTTPHeaders
from botocore.response import StreamingBody

PARAMS_KEY = "stepwell_local_params"

Operation = Callable[[dict[str, Any]], dict[str, Any] | None]
"""The stack's answer to one operation: parameters in, parsed response out (or ServiceError;
None: not the stack's to answer, moto's)."""


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
            problems = constraint_errors(model.input_shape, params)
            if problems:
                count = f"{len(problems)} validation error{'s' if len(problems) > 1 else ''}"
                raise ServiceError(
                    "ValidationException", f"{count} detected: {'; '.join(problems)}"
                )
            parsed = operation(params)
            if parsed is None:
                return None
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


def constraint_errors(shape: Any, value: Any, path: str = "") -> list[str]:
    """What the service's model forbids in ``value`` beyond what botocore checks, each as the
    service words it (``Value 'x!' at 'name' failed to satisfy constraint: Member must satisfy
    regular expression pattern: [a-z]+``); members are named as on the wire (``target.roleArn``,
    ``targets.1.member.id``)."""
    if shape is None:
        return []
    found = [_broken(value, path, broken) for broken in _broken_constraints(shape, value)]
    kind = shape.type_name
    if kind == "structure" and isinstance(value, dict):
        for name, member in shape.members.items():
            if name in value:
                where = f"{path}.{_camel(name)}" if path else _camel(name)
                found += constraint_errors(member, value[name], where)
    elif kind == "list" and isinstance(value, list):
        for index, item in enumerate(value, 1):
            found += constraint_errors(shape.member, item, f"{path}.{index}.member")
    elif kind == "map" and isinstance(value, dict):
        for key, item in value.items():
            found += constraint_errors(shape.key, key, f"{path}.key")
            found += constraint_errors(shape.value, item, f"{path}.value")
    return found


def _broken_constraints(shape: Any, value: Any) -> list[str]:
    meta = shape.metadata
    kind = shape.type_name
    broken: list[str] = []
    sized = (kind == "string" and isinstance(value, str)) or (
        kind in ("list", "map") and isinstance(value, list | dict)
    )
    if sized and len(value) > meta.get("max", len(value)):
        broken.append(f"Member must have length less than or equal to {meta['max']}")
    if kind in ("integer", "long") and isinstance(value, int) and value > meta.get("max", value):
        broken.append(f"Member must have value less than or equal to {meta['max']}")
    if kind == "string" and isinstance(value, str):
        if value not in meta.get("enum", [value]):
            broken.append(f"Member must satisfy enum value set: [{', '.join(meta['enum'])}]")
        pattern = _pattern(meta.get("pattern"))
        if pattern is not None and not pattern.fullmatch(value):
            broken.append(f"Member must satisfy regular expression pattern: {meta['pattern']}")
    return broken


def _broken(value: Any, path: str, constraint: str) -> str:
    return f"Value '{value}' at '{path}' failed to satisfy constraint: {constraint}"


def _camel(name: str) -> str:
    return name[:1].lower() + name[1:]


@cache
def _pattern(text: str | None) -> re.Pattern[str] | None:
    """A model's pattern as Python reads it (None: none, or one in a syntax Python lacks)."""
    if not text:
        return None
    try:
        return re.compile(text, re.DOTALL)
    except re.error:
        return None
