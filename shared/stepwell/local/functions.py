"""Lambda in the local stack: the template's functions as they run here, and Lambda's API.

A function's environment is made local (API URLs on 127.0.0.1, ``/opt/...`` in its layers'
folders, its code folder as ``LAMBDA_TASK_ROOT``); functions that serve HTTP routes run one
invocation at a time; ``lambda.Invoke`` is answered by the emulator
(:mod:`stepwell.local.lambdas`) with Lambda's shapes and errors; an asynchronous invocation that
failed for good becomes the record Lambda sends its on-failure destination.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from typing import Any

from stepwell.local.httpapi import Route
from stepwell.local.intercept import Operation, ServiceError, streaming
from stepwell.local.lambdas import (
    InvalidPayload,
    InvokeResult,
    LambdaEmulator,
    PayloadTooLarge,
    UnknownFunction,
)
from stepwell.local.template import ACCOUNT, REGION, FunctionSpec, HttpRoute
from stepwell.runtime import wiring

RUNNER_HANDLER = "stepwell.handlers.runner.handler"
WORKFLOWS_HANDLER = "stepwell.handlers.workflows.handler"
PUBLISHER_HANDLER = "stepwell.handlers.publisher.handler"
TRIGGER_HANDLER = "stepwell.handlers.trigger.handler"


def localize(
    spec: FunctionSpec, endpoints: Mapping[str, str], overrides: Mapping[str, str]
) -> FunctionSpec:
    """The function's environment as it runs here: API URLs on 127.0.0.1, ``/opt/...``
    paths in the layers' folders, its code's folder as Lambda says it (a workflows
    function reads its workflow files there), the stack's overrides on top."""
    environment: dict[str, str] = {}
    for key, value in spec.environment.items():
        text = value
        for endpoint, local in endpoints.items():
            text = text.replace(endpoint, local)
        environment[key] = _opt_path(text, spec.layers)
    environment["LAMBDA_TASK_ROOT"] = str(spec.code_uri)
    environment.update(overrides)
    return replace(spec, environment=environment)


def concurrency(functions: list[FunctionSpec], limits: Mapping[str, int]) -> dict[str, int]:
    """One invocation at a time for functions that serve HTTP routes.

    Library modules are loaded once per process, so containers share what they keep at
    module level. Powertools' event handler keeps the request being handled on its router
    class (``BaseRouter.current_event``), which is safe in a Lambda container (one request at
    a time) but not across concurrent containers in one process. API requests are short;
    serializing them per function keeps each request's event its own.
    """
    found = {
        spec.name: 1
        for spec in functions
        if any(isinstance(event, HttpRoute) for event in spec.events)
    }
    found.update(limits)
    return found


def common_environment(specs: list[FunctionSpec]) -> dict[str, str]:
    """The settings every function has, with the same value (an app's function has them in
    ``STEPWELL_ENGINE``, the engine's one by one)."""
    if not specs:
        return {}
    common = wiring.settings(specs[0].environment)
    for spec in specs[1:]:
        own = wiring.settings(spec.environment)
        common = {k: v for k, v in common.items() if own.get(k) == v}
    common.pop("STEPWELL_ENGINE", None)
    return common


def _opt_path(value: str, layers: tuple[Path, ...]) -> str:
    """``/opt/...`` (where Lambda extracts layers) as the folder of the layer that has it."""
    if not layers or not (value == "/opt" or value.startswith("/opt/")):
        return value
    rest = value[len("/opt/") :] if value.startswith("/opt/") else ""
    for layer in reversed(layers):  # a later layer overwrites an earlier one
        candidate = layer / rest
        if candidate.exists():
            return str(candidate)
    return str(layers[0] / rest)


# -- Lambda's API, and what other services ask of the functions -----------------------------


def operations(emulator: LambdaEmulator) -> dict[str, Operation]:
    """Lambda's API, answered by the emulator."""
    return {"lambda.Invoke": lambda params: invoke(emulator, params)}


def invoke(emulator: LambdaEmulator, params: dict[str, Any]) -> dict[str, Any]:
    """``lambda.Invoke``, with Lambda's answer and errors."""
    name = str(params.get("FunctionName", ""))
    try:
        spec = emulator.find(name, params.get("Qualifier"))
    except UnknownFunction:
        arn = (
            name
            if name.startswith("arn:")
            else f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}"
        )
        raise ServiceError("ResourceNotFoundException", f"Function not found: {arn}", 404) from None
    payload = params.get("Payload") or b""
    if hasattr(payload, "read"):
        payload = payload.read()
    if isinstance(payload, str):
        payload = payload.encode()
    invocation_type = str(params.get("InvocationType") or "RequestResponse")
    try:
        result = emulator.invoke(spec, bytes(payload), invocation_type, source="lambda:Invoke")
    except PayloadTooLarge as exc:
        raise ServiceError("RequestEntityTooLargeException", str(exc), 413) from None
    except InvalidPayload as exc:
        raise ServiceError("InvalidRequestContentException", str(exc), 400) from None
    response: dict[str, Any] = {
        "_status": result.status_code,
        "StatusCode": result.status_code,
        "Payload": streaming(result.payload if invocation_type == "RequestResponse" else b""),
    }
    if invocation_type == "RequestResponse":
        response["ExecutedVersion"] = "$LATEST"
        if result.function_error:
            response["FunctionError"] = result.function_error
    return response


def invoke_for_http(
    emulator: LambdaEmulator, route: Route, event: dict[str, Any], timeout_s: float
) -> tuple[Any, bool]:
    """An HTTP route's function invoked by API Gateway: (its answer, whether it succeeded)."""
    spec = emulator.find(route.function)
    result = emulator.invoke(
        spec,
        json.dumps(event).encode(),
        "RequestResponse",
        source=f"http {route.route.route_key}",
        timeout_s=timeout_s,
    )
    if result.function_error:
        error = result.decoded()
        if (
            isinstance(error, dict)
            and error.get("errorType") == "Sandbox.Timedout"
            and timeout_s <= spec.timeout_s
        ):
            # API Gateway stopped waiting (its integration timeout came first): 503.
            raise TimeoutError(error.get("errorMessage"))
        return error, False
    return result.decoded(), True


def invoke_for_json(emulator: LambdaEmulator, function: str, payload: bytes) -> Any:
    """A function's JSON answer (its error raised), as CloudFormation invokes a custom
    resource's service token."""
    result = emulator.invoke(emulator.find(function), payload, "RequestResponse")
    if result.function_error:
        raise RuntimeError(result.payload.decode(errors="replace")[:2000])
    return json.loads(result.payload or b"null")


def failure_record(
    spec: FunctionSpec, payload: bytes, result: InvokeResult, invocations: int, now: datetime
) -> dict[str, Any]:
    """What Lambda sends an on-failure destination about an asynchronous invocation that
    failed for good."""
    try:
        request = json.loads(payload)
        response = result.decoded()
    except ValueError:
        request, response = payload.decode(errors="replace"), None
    return {
        "version": "1.0",
        "timestamp": now.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "requestContext": {
            "requestId": result.request_id,
            "functionArn": f"{spec.arn}:$LATEST",
            "condition": "RetriesExhausted",
            "approximateInvokeCount": invocations,
        },
        "requestPayload": request,
        "responseContext": {
            "statusCode": 200,
            "executedVersion": "$LATEST",
            "functionError": result.function_error or "Unhandled",
        },
        "responsePayload": response,
    }


def failure_event(spec: FunctionSpec, record: dict[str, Any]) -> dict[str, Any]:
    """The PutEvents entry of an on-failure destination that is an event bus."""
    assert spec.on_failure is not None
    return {
        "EventBusName": spec.on_failure,
        "Source": "lambda",
        "DetailType": "Lambda Function Invocation Result - Failure",
        "Detail": json.dumps(record),
        "Resources": [spec.on_failure, f"{spec.arn}:$LATEST"],
    }
