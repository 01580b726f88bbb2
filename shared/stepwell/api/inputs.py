"""Form links of input steps: GET shows the form, POST answers it, once.

A form link is signed like an approval link (purpose ``input``, bound to its assignee) and goes
through the same checks (:mod:`stepwell.api.approvals`): signature (403), expiry (410), purpose
(403), the run (404), the link unused and the form still open for this attempt (409). Then the
answer is checked against the form's JSON Schema: a 422 lists every problem and records nothing
(the step keeps waiting, the link stays unused). A valid answer goes to the engine with the
link's id and becomes the step's output; a second use of the link is 409.

A browser posts the form's fields (typed back by :mod:`stepwell.api.form_page`); a client posts
the answer itself as JSON.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any
from urllib.parse import parse_qs

from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Path
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from stepwell import intake, signing
from stepwell.api import errors, form_page, pages
from stepwell.api.approvals import check_open, decided, page_responses, refusal
from stepwell.api.deps import current
from stepwell.api.links import Opened, link_id, open_link
from stepwell.api.request import event, wants_json
from stepwell.api.runs import MAX_SCHEMA_ERRORS, schema_problems
from stepwell.engine.events import ApprovalDecided
from stepwell.signing import TokenError

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

Token = Annotated[
    str, Path(max_length=signing.MAX_TOKEN_CHARS, description="The token of a form link.")
]


class InputView(BaseModel):
    """What a form link asks for (GET with Accept: application/json)."""

    run_id: str
    workflow: str
    step: str
    attempt: int
    assignee: str | None = Field(None, description="Who the link was sent to (None: anyone).")
    message: str = ""
    form: dict[str, Any] = Field(description="The JSON Schema (draft 2020-12) of the answer.")
    expires_at: datetime


class InputRecorded(BaseModel):
    """An answer that was recorded: the step's output."""

    run_id: str
    step: str
    person: str
    step_status: str
    run_status: str


@router.get(
    "/inputs/<token>",
    summary="Show an input form",
    description=(
        "The form an input step asks a person to fill in, rendered from its JSON Schema. Never "
        "answers. HTML for browsers; JSON (with the schema) for Accept: application/json."
    ),
    tags=["approvals"],
    responses=page_responses(200, "The form", InputView),
)
def show_input(token: Token) -> Response[Any]:
    try:
        opened = open_link(token, "input")
        check_open(current(), opened)
    except (errors.ApiError, TokenError) as exc:
        return refusal(exc)
    view = _view(opened)
    if wants_json():
        return Response(200, content_types.APPLICATION_JSON, view.model_dump(mode="json"))
    claims = opened.claims
    return _page(200, view, hand_on=pages.hand_on_form(token, claims.approver, claims.delegate))


@router.post(
    "/inputs/<token>",
    summary="Answer an input form",
    description=(
        "Checks the answer against the form's JSON Schema and records it as the step's output. "
        "The body is the answer as JSON, or the form's fields (from the form page). 422 lists "
        "every problem and records nothing; a link answers once (409 after)."
    ),
    tags=["approvals"],
    responses=page_responses(200, "The answer was recorded", InputRecorded),
)
def answer_input(token: Token) -> Response[Any]:
    deps = current()
    view: InputView | None = None
    answer: Any = None
    try:
        opened = open_link(token, "input")
        check_open(deps, opened)
        view = _view(opened)
        answer = _posted(view.form)
        check_answer(view.form, answer, view.step)
        claims = opened.claims
        person = claims.approver or "anonymous"
        answered = ApprovalDecided(
            claims.key,
            claims.attempt,
            True,
            person,
            link=link_id(claims),
            answer=answer,
            by=claims.delegate,
        )
        decision = decided(deps, claims.run_id, answered)
    except errors.ApiError as exc:
        if exc.status == 422 and view is not None and not wants_json():
            return _page(422, view, answer, exc.details)
        return refusal(exc)
    except TokenError as exc:
        return refusal(exc)
    step = decision.steps.get(claims.key) or opened.step
    recorded = InputRecorded(
        run_id=claims.run_id,
        step=claims.key,
        person=person,
        step_status=step.status if step else "unknown",
        run_status=decision.run.status if decision.run else opened.run.status,
    )
    if wants_json():
        return Response(200, content_types.APPLICATION_JSON, recorded.model_dump(mode="json"))
    return pages.message(
        200,
        "Thank you",
        f"Your answer was recorded for {recorded.run_id} / {recorded.step} as "
        f"{recorded.person}. The step is now {recorded.step_status}. You can close this page.",
    )


def check_answer(form: dict[str, Any], answer: Any, step: str) -> None:
    """422 listing every way ``answer`` breaks the form's schema (nothing is recorded)."""
    problems = schema_problems(form, answer)
    if problems:
        raise errors.invalid(
            f"the answer does not match the form of step '{step}': "
            + "; ".join(f"{p['path']}: {p['message']}" for p in problems[:5])
            + (f" (and {len(problems) - 5} more)" if len(problems) > 5 else ""),
            problems[:MAX_SCHEMA_ERRORS],
        )


def _posted(form: dict[str, Any]) -> Any:
    """The answer in the request: its fields typed by the form, or its JSON body."""
    request = event()
    body = request.decoded_body or ""
    kind = str(request.headers.get("content-type") or "").lower()
    if kind.startswith("application/x-www-form-urlencoded"):
        return form_page.answer_from_fields(form, parse_qs(body, keep_blank_values=True))
    try:
        return intake.parse(body, "the answer", intake.MAX_DEPTH)
    except (ValueError, intake.JsonTooDeep) as exc:
        raise errors.invalid(f"the answer is not JSON: {exc}") from None


def _view(opened: Opened) -> InputView:
    claims, run, step = opened.claims, opened.run, opened.step
    asked = step.input if step is not None and isinstance(step.input, dict) else {}
    return InputView(
        run_id=run.id,
        workflow=run.workflow,
        step=claims.key,
        attempt=claims.attempt,
        assignee=claims.approver,
        message=str(asked.get("message") or "Input requested"),
        form=dict(asked.get("form") or {}),
        expires_at=datetime.fromtimestamp(claims.expires_at, UTC),
    )


def _page(
    status: int, view: InputView, values: Any = None, problems: Any = None, hand_on: str = ""
) -> Response[str]:
    return form_page.page(
        status=status,
        title=f"Input requested: {view.workflow} / {view.step}",
        message=view.message,
        schema=view.form,
        rows=[
            ("Workflow", view.workflow),
            ("Run", view.run_id),
            ("Step", view.step),
            ("As", view.assignee or "anyone with this link"),
            ("Link expires", view.expires_at.strftime("%Y-%m-%d %H:%M UTC")),
        ],
        values=values,
        problems=problems if isinstance(problems, list) else None,
        hand_on=hand_on,
    )
