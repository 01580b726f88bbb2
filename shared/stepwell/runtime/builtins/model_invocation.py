"""Step Functions' optimized ``bedrock:invokeModel``: Bedrock Runtime's ``InvokeModel`` with
the request and result Step Functions gives it.

Parameters are ``InvokeModel``'s (``ModelId``, ``ContentType``, ``Accept``, ``Trace``,
``Guardrail...``) with ``Body`` as JSON rather than bytes, or ``Input.S3Uri`` naming the S3
object the body is read from (one or the other); ``Output.S3Uri`` names an object the model's
answer is written to. The result is ``{"Body": ANSWER}``, the answer parsed as JSON (its text
when it is not JSON); with ``Output``, ``{"Body": {"S3Uri": ...}}``, the answer's place instead
of the answer. Errors are the service's, ``Bedrock.CodeException``, and the S3 object's,
``S3.CodeException``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from stepwell.definition.services import operation
from stepwell.runtime.builtins.aws import (
    Clients,
    call,
    parameters_of,
    refused,
    role_of,
    with_role,
)
from stepwell.runtime.step_context import StepContext

ERRORS_AS = "bedrock"
"""The service Step Functions names the integration's errors after (``Bedrock.``)."""


def run(params: Mapping[str, Any], ctx: StepContext, client: Clients) -> Any:
    """Invoke the model; return ``{"Body": ...}`` as Step Functions does."""
    client = with_role(client, role_of(params, ctx))
    given = {key.lower(): value for key, value in parameters_of(params, ctx).items()}
    body, source = given.pop("body", None), given.pop("input", None)
    target = given.pop("output", None)
    if (body is None) == (source is None):
        raise refused(
            ctx,
            "bedrock:invokeModel",
            "give the model's request as Body or as Input.S3Uri (one of them)",
        )
    if source is not None:
        bucket, key = _s3_place(ctx, "Input", source)
        got = call(client, "s3", operation("s3", "GetObject"), {"Bucket": bucket, "Key": key}, ctx)
        raw = got["Body"].read()
        given.setdefault("contenttype", got.get("ContentType") or "application/json")
    else:
        raw = body.encode() if isinstance(body, str) else json.dumps(body).encode()
    invoke = operation("bedrock-runtime", "InvokeModel")
    members = invoke.input_shape.members if invoke.input_shape is not None else {}
    names = {str(member).lower(): str(member) for member in members}
    request: dict[str, Any] = {names[k]: v for k, v in given.items() if k in names}
    request["body"] = raw
    answer = call(client, "bedrock-runtime", invoke, request, ctx, "optimized", ERRORS_AS)
    text = answer["body"].read()
    if target is not None:
        bucket, key = _s3_place(ctx, "Output", target)
        put = {"Bucket": bucket, "Key": key, "Body": text}
        call(client, "s3", operation("s3", "PutObject"), put, ctx)
        return {"Body": {"S3Uri": f"s3://{bucket}/{key}"}}
    try:
        return {"Body": json.loads(text)}
    except ValueError:
        return {"Body": text.decode(errors="replace")}


def _s3_place(ctx: StepContext, field: str, given: Any) -> tuple[str, str]:
    uri = given.get("S3Uri") if isinstance(given, dict) else None
    if not isinstance(uri, str) or not uri.startswith("s3://") or "/" not in uri[5:]:
        raise refused(
            ctx,
            "bedrock:invokeModel",
            f'{field} must be {{"S3Uri": "s3://BUCKET/KEY"}}, not {given!r}',
        )
    bucket, _, key = uri[5:].partition("/")
    return bucket, key
