"""Callbacks: an external system completes (or keeps alive) a callback step with its token.

``POST /callbacks/{token}`` with ``{status: success, output}``, ``{status: failure, error}`` or
``{status: heartbeat}``. The token is signed like an approval link (purpose ``callback``); a
success or failure uses it up (409 after), heartbeats do not. A signal that arrives before the
step's wait opens is kept by the engine and completes the step when it opens (202).
"""

from __future__ import annotations

from datetime import datetime
from typing import Annotated

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from stepwell import intake, signing
from stepwell.api import errors
from stepwell.api.claims import Use, claim_once
from stepwell.api.deps import current
from stepwell.api.links import open_link
from stepwell.api.models import (
    CallbackAccepted,
    CallbackError,
    CallbackRequest,
    TaskFailure,
    TaskHeartbeat,
    TaskSuccess,
)
from stepwell.api.openapi import responses
from stepwell.signing import TokenClaims

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

Token = Annotated[
    str, Path(max_length=signing.MAX_TOKEN_CHARS, description="The callback step's token.")
]


def callback_token(
    keys: list[bytes], run_id: str, key: str, attempt: int, expires_at: datetime
) -> str:
    """The token of a callback step's attempt (``attempt`` 1 for a step that has not opened
    yet: a signal sent with it before the wait opens is kept for it)."""
    return signing.sign(TokenClaims.for_callback(run_id, key, attempt, expires_at), keys)


@router.post(
    "/callbacks/<token>",
    summary="Call back",
    description=(
        "Completes the callback step the token was made for: success (with output), failure "
        "(with error) or heartbeat. 202 when the step is not waiting yet: the signal is kept "
        "and completes the step when it starts waiting."
    ),
    tags=["callbacks"],
    responses={
        **responses(200, "Delivered", 403, 404, 409, 410, 415),
        202: {"description": "Kept until the step starts waiting"},
    },
)
def call_back(token: Token, request: CallbackRequest) -> Response[CallbackAccepted]:
    deps = current()
    opened = open_link(token, "callback")
    claims, run, step = opened.claims, opened.run, opened.step
    if run.terminal:
        raise errors.conflict(f"run {run.id} has ended ({run.status})")
    if step is not None and step.terminal:
        raise errors.conflict(f"step {claims.key} has already ended ({step.status})")
    if step is not None and step.attempt > claims.attempt:
        raise errors.conflict("this token belongs to an earlier attempt of the step")
    if deps.used_tokens.used(claims.nonce):
        raise errors.conflict("this token has already been used")
    waiting = step is not None and step.waiting_for == "callback"
    if request.status == "heartbeat" and not waiting:
        raise errors.conflict(f"step {claims.key} is not waiting for a callback: no heartbeat")
    final = request.status != "heartbeat"
    if final:
        use = Use(claims.nonce, claims.expires_at, "callback", claims.run_id, claims.key)
        if not claim_once(deps.used_tokens, use):
            raise errors.conflict("this token has already been used")
    event = request.event(claims.key)
    try:
        decision = deps.orchestrator.handle(run.id, event)
    except Exception:
        if final:
            deps.used_tokens.release(use)
        raise
    types = {entry.type for entry in decision.timeline} if decision else set()
    if decision is None or "callback_ignored" in types:
        if final:
            deps.used_tokens.release(use)
        raise errors.conflict(f"step {claims.key} is not waiting for a callback")
    kept = "callback_kept" in types
    accepted = CallbackAccepted(
        run_id=run.id,
        step=claims.key,
        status=request.status,
        outcome="kept" if kept else "delivered",
    )
    return Response(202 if kept else 200, content_types.APPLICATION_JSON, accepted)


# -- Step Functions' task token calls ---------------------------------------------------------
@router.post(
    "/tasks/success",
    summary="Send task success (Step Functions' SendTaskSuccess)",
    description="The same as POST /callbacks/{token} with status success, in the shape of "
    "Step Functions' SendTaskSuccess, for code written against it.",
    tags=["callbacks"],
    responses={
        **responses(200, "Delivered", 403, 404, 409, 410, 415, 422),
        202: {"description": "Kept"},
    },
)
def send_task_success(request: TaskSuccess) -> Response[CallbackAccepted]:
    try:
        output = intake.parse(request.output, "output")
    except intake.JsonTooDeep as exc:
        raise errors.invalid(
            str(exc), [{"loc": ["body", "output"], "message": exc.reason, "type": "too_deep"}]
        ) from None
    except ValueError:
        raise errors.invalid(
            "output must be JSON text (SendTaskSuccess sends the output as a string of JSON)",
            [{"loc": ["body", "output"], "message": "not JSON", "type": "value_error"}],
        ) from None
    return call_back(request.taskToken, CallbackRequest(status="success", output=output))


@router.post(
    "/tasks/failure",
    summary="Send task failure (Step Functions' SendTaskFailure)",
    description="The same as POST /callbacks/{token} with status failure: error is the "
    "failure's name (TaskFailed when none), cause its message.",
    tags=["callbacks"],
    responses={
        **responses(200, "Delivered", 403, 404, 409, 410, 415, 422),
        202: {"description": "Kept"},
    },
)
def send_task_failure(request: TaskFailure) -> Response[CallbackAccepted]:
    cause = (request.cause or "")[:4000]
    error = CallbackError(type=request.error or "TaskFailed", message=cause)
    return call_back(request.taskToken, CallbackRequest(status="failure", error=error))


@router.post(
    "/tasks/heartbeat",
    summary="Send task heartbeat (Step Functions' SendTaskHeartbeat)",
    description="The same as POST /callbacks/{token} with status heartbeat.",
    tags=["callbacks"],
    responses={**responses(200, "Delivered", 403, 404, 409, 410, 415, 422)},
)
def send_task_heartbeat(request: TaskHeartbeat) -> Response[CallbackAccepted]:
    return call_back(request.taskToken, CallbackRequest(status="heartbeat"))
