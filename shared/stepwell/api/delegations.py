"""Handing a link on: an approver (or a form's assignee) gives their link to another person.

``POST /delegations/{token}`` with the person's own approval or form link (either of an
approver's two links), ``to`` (who gets it) and optionally ``until`` (when the delegate's links
expire; at most, and by default, when the person's own link does). The link goes through the
checks a decision's does (signature 403, expiry 410, purpose 403, the run 404, still open 409);
then the engine records the delegation on the step and the timeline (who to whom, until when)
and sends the delegate links of their own, in the person's name (``approval.requested`` or
``input.requested`` with ``reason: delegation``). The delegate's decision counts as the
person's (once: the person's own link is spent by it, and theirs by the person's), and
``forbid_self_approval`` refuses a delegation to or from the run's starter. A delegated link
is not handed on again, nor is a link made for anyone.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Form, Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel

from stepwell import signing
from stepwell.api import errors, pages
from stepwell.api.approvals import check_open, decided, page_responses, refusal
from stepwell.api.deps import current
from stepwell.api.links import open_link
from stepwell.api.request import wants_json
from stepwell.engine.events import ApprovalDecided
from stepwell.signing import TokenError

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

Token = Annotated[
    str,
    Path(
        max_length=signing.MAX_TOKEN_CHARS,
        description="The person's own approval link's token (either decision) or form link's.",
    ),
]
PERSON = re.compile(r"^[^\s@]+(@[^\s@]+)?$")
"""An e-mail, or a plain name (an IAM user's, as approvers may be)."""


class Delegated(BaseModel):
    """A link handed on: the delegate gets links of their own."""

    run_id: str
    step: str
    delegated_by: str
    to: str
    until: datetime


@router.post(
    "/delegations/<token>",
    summary="Hand a link on to someone else",
    description=(
        "The approver (or assignee) of the link hands it on to `to` until `until` (default and "
        "at most: the link's own expiry). The delegate gets links of their own, whose decision "
        "counts as the approver's. Recorded on the timeline. 409 when the approval or form is "
        "no longer open, the person has decided or handed it on already, or the link is for "
        "anyone; 422 for a `to` or `until` that cannot be used."
    ),
    tags=["approvals"],
    responses=page_responses(200, "The link was handed on", Delegated),
)
def delegate(
    token: Token,
    to: Annotated[str, Form(min_length=1, max_length=254, description="Who gets the link.")],
    until: Annotated[
        str | None,
        Form(max_length=64, description="ISO 8601 time with a zone; default: the link's expiry."),
    ] = None,
) -> Response[Any]:
    deps = current()
    try:
        opened = open_link(token, ("approval", "input"))
        claims = opened.claims
        check_open(deps, opened)
        if claims.approver is None:
            raise errors.conflict("this link is for anyone holding it: forward it instead")
        if claims.delegate is not None:
            raise errors.conflict(
                f"this link was handed on to {claims.delegate}; it is not handed on again"
            )
        delegate_to = to.strip()
        if not PERSON.match(delegate_to):
            raise _invalid("to", f"{to!r} is not an e-mail (or a plain name)")
        ends = _until(until, claims.expires_at, deps.clock.now())
        event = ApprovalDecided(
            claims.key,
            claims.attempt,
            False,
            claims.approver,
            delegate_to=delegate_to,
            until=ends.isoformat(),
        )
        decided(deps, claims.run_id, event)
    except (errors.ApiError, TokenError) as exc:
        return refusal(exc)
    done = Delegated(
        run_id=claims.run_id,
        step=claims.key,
        delegated_by=claims.approver,
        to=delegate_to,
        until=ends,
    )
    if wants_json():
        return Response(200, content_types.APPLICATION_JSON, done.model_dump(mode="json"))
    return pages.message(
        200,
        "Handed on",
        f"{done.to} gets links of their own for {done.run_id} / {done.step}, valid until "
        f"{done.until:%Y-%m-%d %H:%M UTC}; their decision counts as yours. You can close this "
        "page.",
    )


def _until(given: str | None, expires_at: int, now: datetime) -> datetime:
    """When the delegate's links expire: ``given``, or the person's own link's expiry."""
    latest = datetime.fromtimestamp(expires_at, UTC)
    if given is None or not given.strip():
        return latest
    try:
        found = datetime.fromisoformat(given.strip().replace("Z", "+00:00"))
    except ValueError:
        raise _invalid("until", f"{given!r} is not an ISO 8601 time") from None
    if found.tzinfo is None:
        raise _invalid("until", f"{given!r} has no time zone: end it with Z or +00:00")
    if found <= now:
        raise _invalid("until", f"{given} has passed: give a time to come")
    if found > latest:
        raise _invalid(
            "until", f"{given} is after this link expires ({latest.isoformat()}): give that or less"
        )
    return found.astimezone(UTC)


def _invalid(field: str, message: str) -> errors.ApiError:
    return errors.invalid(
        f"{field}: {message}",
        [{"loc": ["body", field], "message": message, "type": "value_error"}],
    )
