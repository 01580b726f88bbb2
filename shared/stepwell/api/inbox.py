"""The operator's inbox: every approval and input form waiting for people, across runs, with
its deadline and where its reminders and escalations stand; and an operator's answer to a
waiting form (IAM-authorised, like an operator's decision of an approval, and noted on the
timeline as theirs).

The list is one page of the waiting_people index (the steps are in it while they wait for
people, put there and taken out by the very writes that open and end the wait), never a scan
of runs; what each wait's definition says (its timeout, reminders, escalations) comes from
the run's pinned version, cached.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field

from stepwell.api import errors
from stepwell.api.deps import ApiDeps, current
from stepwell.api.inputs import check_answer
from stepwell.api.models import RunChanged
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.api.operator import OPERATOR, _waiting
from stepwell.api.request import caller
from stepwell.api.runs import RunId, StepKey, _act, _changed
from stepwell.definition.durations import format_duration
from stepwell.definition.models import ApprovalStep, InputStep, Step
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.specs import parse_spec
from stepwell.engine.state import RunState, StepState, parse_key
from stepwell.runtime.orchestrator import UnknownWorkflow

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]


class Escalation(BaseModel):
    """One escalation of an approval and whether it has come."""

    at: datetime = Field(description="When it comes: the wait's opening plus its `after`.")
    to: list[str] = Field(default_factory=list, description="New approvers (or their groups).")
    action: Literal["approve", "reject", "fail"] | None = None
    done: bool = Field(description="It has come.")


class Wait(BaseModel):
    """A step waiting for people."""

    run_id: str
    workflow: str
    step: str
    kind: Literal["approval", "input"]
    message: str | None = None
    people: list[str] = Field(
        default_factory=list, description="Who may answer (empty: anyone with the link)."
    )
    quorum: int | None = Field(None, description="Approvals needed (an approval's).")
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    opened_at: datetime | None = None
    expires_at: datetime | None = Field(None, description="The deadline: the links' expiry.")
    next_at: datetime | None = Field(
        None, description="The step's next timer: a reminder, an escalation or the deadline."
    )
    remind: str | None = Field(None, description="How often undecided people are reminded.")
    escalations: list[Escalation] = Field(default_factory=list)
    form: dict[str, Any] | None = Field(None, description="An input's JSON Schema.")
    started_by: str | None = None


class Inbox(BaseModel):
    """One page of the inbox, newest first."""

    waits: list[Wait]
    cursor: str | None = Field(None, description="The next page's cursor (None: the last).")


class AnswerRequest(BaseModel):
    """An operator's answer to a waiting input form."""

    answer: Any = Field(description="The form's data; checked against its JSON Schema.")


@router.get(
    "/inbox",
    summary="Approvals and forms waiting for people",
    description=(
        "Every step waiting for people (an approval, an input form) across runs, newest "
        "first, with its deadline and where its reminders and escalations stand. Read from an "
        "index of the open waits, page by page."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "One page of the inbox", 422),
)
def inbox(
    cursor: Annotated[str | None, Query(max_length=2048)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
) -> Inbox:
    deps = current()
    try:
        page = deps.store.waiting_for_people(cursor, limit)
    except (ValueError, KeyError, TypeError):
        raise errors.invalid("cursor: not a cursor this listing gave out") from None
    return Inbox(waits=[_wait(deps, run, step) for run, step in page.items], cursor=page.cursor)


@router.post(
    "/runs/<run_id>/steps/<step>/answer",
    summary="Answer a waiting input form",
    description=(
        "Answers a waiting input step as the calling operator (noted on the timeline as who "
        "answered): the answer is checked against the form's JSON Schema first (422 listing "
        "every problem, nothing recorded). 409 when the step is not waiting for an answer or "
        "the run has ended."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The answer was recorded", 404, 409, 422),
)
def answer_step(
    run_id: RunId, step: StepKey, request: Annotated[AnswerRequest, Body()]
) -> RunChanged:
    deps = current()
    run, key, record = _waiting(deps, run_id, step, "input")
    asked = record.input if isinstance(record.input, dict) else {}
    check_answer(dict(asked.get("form") or {}), request.answer, key)
    event = ApprovalDecided(
        key, record.attempt, True, caller() or OPERATOR, answer=request.answer, operator=True
    )
    _act(deps, run.id, event)
    return _changed(deps, run.id, key, f"step {key} answered")


def _wait(deps: ApiDeps, run: RunState, step: StepState) -> Wait:
    asked = step.input if isinstance(step.input, dict) else {}
    spec = _spec(deps, run, step)
    kind: Literal["approval", "input"] = "input" if step.waiting_for == "input" else "approval"
    opened = step.attempt_started_at or step.started_at
    wait = Wait(
        run_id=run.id,
        workflow=run.workflow,
        step=step.key,
        kind=kind,
        message=asked.get("message"),
        people=list(asked.get("approvers") or asked.get("assignees") or []),
        quorum=asked.get("quorum"),
        decisions=list(step.decisions),
        opened_at=opened,
        next_at=step.due_at,
        form=asked.get("form") if kind == "input" else None,
        started_by=run.started_by,
    )
    timeout: timedelta | None = getattr(spec, "timeout", None)
    if opened is not None and timeout is not None:
        wait.expires_at = opened + timeout
    if isinstance(spec, ApprovalStep) and opened is not None:
        now = deps.clock.now()
        wait.remind = _text(spec.remind)
        wait.escalations = [
            Escalation(
                at=opened + e.after,
                to=[p if isinstance(p, str) else f"group {p.group}" for p in e.to],
                action=e.action,
                done=opened + e.after <= now,
            )
            for e in spec.escalate
        ]
    return wait


def _spec(deps: ApiDeps, run: RunState, step: StepState) -> Step | None:
    """The step's definition: on its record (code-first), else in the run's pinned version."""
    if step.spec is not None:
        return parse_spec(step.spec)
    try:
        definition = deps.orchestrator.pinned(run)
        step_id, _ = parse_key(step.key)
    except (UnknownWorkflow, ValueError):
        return None
    found = definition.steps.get(step_id)
    return found if isinstance(found, ApprovalStep | InputStep) else None


def _text(every: timedelta | None) -> str | None:
    return format_duration(every) if every is not None else None
