"""Approval links: GET shows what is asked and never decides; POST decides, once.

A link's token is signed (HMAC-SHA256, see :mod:`stepwell.signing`) over the run, step, attempt,
decision, expiry and, when the step names approvers, the approver. The checks, in order:
signature (403), expiry (410), purpose (403), the decision posted matches the link's (403),
the run exists (404), the link was not used (409), the approval is still open for this attempt
and this approver (409). Then the decision goes to the engine, with the link's id: the engine
records it with the decision, so what makes a link used is its decision being committed (a
second or concurrent use is ignored, 409), and no error on the way can use a link up. The
approver and comment land on the run's timeline. Browsers get HTML pages, clients that accept
JSON get JSON.
"""

from __future__ import annotations

import base64
import hashlib
import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Form, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from stepwell import signing
from stepwell.api import errors, pages
from stepwell.api.deps import ApiDeps, current
from stepwell.api.links import Opened, link_id, open_link
from stepwell.api.models import ApprovalRecorded, ApprovalView, ErrorBody
from stepwell.api.openapi import responses
from stepwell.api.request import wants_json
from stepwell.engine.decision import Decision
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.waiting import LINK_USED
from stepwell.signing import TokenClaims, TokenError

log = logging.getLogger(__name__)

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

DELIVER_TRIES = 4
"""Tries of handing a decision to the engine (0.1, 0.2, 0.4 s apart): a fault that outlasts
the store's own retries is tried again well inside API Gateway's 30 s."""

Token = Annotated[
    str, Path(max_length=signing.MAX_TOKEN_CHARS, description="The token of an approval link.")
]
_TITLES = {
    403: "This link is not valid",
    404: "Nothing to decide",
    409: "Already decided",
    410: "This link has expired",
    413: "Too much text",
    422: "Something is missing",
}


def page_responses(success: int, description: str, model: Any) -> dict[int, Any]:
    """The documented answers of a link's route: a page for browsers, JSON for clients."""
    out = responses(success, description, 403, 404, 409, 410, 415)
    out[success] = {
        "description": description,
        "content": {
            "text/html": {"schema": {"type": "string"}},
            "application/json": {"model": model},
        },
    }
    for status in out:
        if status != success:
            out[status]["content"] = {
                "text/html": {"schema": {"type": "string"}},
                "application/json": {"model": ErrorBody},
            }
    return out


@router.get(
    "/approvals/<token>",
    summary="Show an approval",
    description=(
        "What is being approved, with approve and reject buttons. Never decides: mail scanners "
        "follow links. HTML for browsers; JSON (with both links) for Accept: application/json."
    ),
    tags=["approvals"],
    responses=page_responses(200, "The approval", ApprovalView),
)
def show_approval(token: Token) -> Response[Any]:
    try:
        opened = open_link(token)
        check_open(current(), opened)
        view = _view(current(), opened)
    except (errors.ApiError, TokenError) as exc:
        return refusal(exc)
    if wants_json():
        return Response(200, content_types.APPLICATION_JSON, view.model_dump(mode="json"))
    return pages.ask(
        pages.AskPage(
            workflow=view.workflow,
            run_id=view.run_id,
            step=view.step,
            message=view.message,
            decision=view.decision,
            approver=view.approver,
            quorum=view.quorum,
            approvals=view.approvals,
            expires_at=view.expires_at,
            approve_action=view.approve_url.rsplit("/", 1)[-1],
            reject_action=view.reject_url.rsplit("/", 1)[-1],
            decisions=opened.step.decisions if opened.step else [],
            hand_on=pages.hand_on_form(token, opened.claims.approver, opened.claims.delegate),
        )
    )


@router.post(
    "/approvals/<token>",
    summary="Decide an approval",
    description=(
        "Records the link's decision (approve or reject) with an optional comment. A link "
        "decides once: a second use is 409, as is a decision on an approval that has closed."
    ),
    tags=["approvals"],
    responses=page_responses(200, "The decision was recorded", ApprovalRecorded),
)
def decide_approval(
    token: Token,
    comment: Annotated[str | None, Form(max_length=2000)] = None,
    decision: Annotated[
        Literal["approve", "reject"] | None,
        Form(description="Optional; must be the link's own decision when given."),
    ] = None,
) -> Response[Any]:
    deps = current()
    try:
        opened = open_link(token)
        claims = opened.claims
        if decision is not None and decision != claims.decision:
            raise errors.ApiError(
                403, f"this link can only {claims.decision}; use the {decision} link to {decision}"
            )
        check_open(deps, opened)
        recorded = _deliver(deps, opened, (comment or "").strip() or None)
    except (errors.ApiError, TokenError) as exc:
        return refusal(exc)
    if wants_json():
        return Response(200, content_types.APPLICATION_JSON, recorded.model_dump(mode="json"))
    verb = "approved" if recorded.decision == "approve" else "rejected"
    return pages.message(
        200,
        f"You {verb}",
        f"Recorded for {recorded.run_id} / {recorded.step} as {recorded.approver}. "
        f"The step is now {recorded.step_status}. You can close this page.",
    )


def check_open(deps: ApiDeps, opened: Opened) -> None:
    """409 unless this link may still decide (or answer, a form's)."""
    claims, run, step = opened.claims, opened.run, opened.step
    asks = "form" if claims.purpose == "input" else "approval"
    if step is not None and any(d.get("link") == link_id(claims) for d in step.decisions):
        raise errors.conflict(LINK_USED)
    if run.terminal:
        raise errors.conflict(f"run {run.id} has ended ({run.status}): nothing left to decide")
    if step is None or step.waiting_for != claims.purpose:
        status = step.status if step else "not started"
        raise errors.conflict(f"this {asks} is no longer open (the step is {status})")
    if step.attempt != claims.attempt:
        raise errors.conflict("this link belongs to an earlier request: use the newest link")
    if claims.approver and any(
        claims.approver in (d.get("approver"), d.get("person")) for d in step.decisions
    ):
        raise errors.conflict(f"{claims.approver} has already decided")


def _deliver(deps: ApiDeps, opened: Opened, comment: str | None) -> ApprovalRecorded:
    claims = opened.claims
    approver = claims.approver or "anonymous"
    event = ApprovalDecided(
        claims.key,
        claims.attempt,
        claims.decision == "approve",
        approver,
        comment,
        link=link_id(claims),
        by=claims.delegate,
    )
    decision = decided(deps, claims.run_id, event)
    step = decision.steps.get(claims.key) or opened.step
    return ApprovalRecorded(
        run_id=claims.run_id,
        step=claims.key,
        decision="approve" if claims.decision == "approve" else "reject",
        approver=approver,
        step_status=step.status if step else "unknown",
        run_status=decision.run.status if decision.run else opened.run.status,
    )


def decided(deps: ApiDeps, run_id: str, event: ApprovalDecided) -> Decision:
    """Hand the decision to the engine; a fault is tried again (``DELIVER_TRIES`` in all). A
    try whose answer was lost may have recorded it: a later try that finds this link's decision
    recorded is this click's own, not a second use of the link."""
    for tries in range(DELIVER_TRIES):
        try:
            decision = deps.orchestrator.handle(run_id, event)
        except Exception as exc:
            if tries == DELIVER_TRIES - 1:
                raise
            log.warning("deciding %s of run %s failed (%s); trying again", event.key, run_id, exc)
            time.sleep(0.1 * 2**tries)
            continue
        if decision is None:
            raise errors.not_found(f"run {run_id} no longer exists")
        for entry in decision.timeline:
            if entry.type != "decision_ignored":
                continue
            if tries and entry.message == LINK_USED:
                return decision  # an earlier try of this request recorded it
            raise errors.conflict(entry.message)
        return decision
    raise AssertionError("unreachable")  # pragma: no cover


def _view(deps: ApiDeps, opened: Opened) -> ApprovalView:
    claims, run, step = opened.claims, opened.run, opened.step
    asked = step.input if step is not None and isinstance(step.input, dict) else {}
    links = {claims.decision: opened.token, _other(claims): _counterpart(deps, claims)}
    return ApprovalView(
        run_id=run.id,
        workflow=run.workflow,
        step=claims.key,
        attempt=claims.attempt,
        decision="approve" if claims.decision == "approve" else "reject",
        approver=claims.approver,
        message=str(asked.get("message") or "Approval requested"),
        quorum=int(asked.get("quorum") or 1),
        approvals=sum(
            1 for d in (step.decisions if step else []) if d.get("decision") == "approved"
        ),
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
        approve_url=f"/approvals/{links['approve']}",
        reject_url=f"/approvals/{links['reject']}",
    )


def _other(claims: TokenClaims) -> str:
    return "reject" if claims.decision == "approve" else "approve"


def _counterpart(deps: ApiDeps, claims: TokenClaims) -> str:
    """The link for the other decision, for the same approver and attempt and with the same
    expiry. Its nonce derives from this one, so showing the page twice gives the same link."""
    digest = hashlib.sha256(f"{claims.nonce}:{_other(claims)}".encode()).digest()
    nonce = base64.urlsafe_b64encode(digest[:9]).decode()
    other = replace(claims, decision=_other(claims), nonce=nonce)  # type: ignore[arg-type]
    return signing.sign(other, deps.keys())


def refusal(exc: errors.ApiError | TokenError) -> Response[Any]:
    """A refused link's answer: JSON for clients that ask for it, else a page."""
    details = None
    if isinstance(exc, TokenError):
        status = exc.status
        message = (
            "this link has expired: ask for a new one"
            if isinstance(exc, signing.TokenExpired)
            else "this link is not valid: it was changed, or it was not made by this Stepwell"
        )
    else:
        status, message, details = exc.status, exc.message, exc.details
    if wants_json():
        return errors.response(status, message, details)
    return pages.message(status, _TITLES.get(status, "Something went wrong"), message)
