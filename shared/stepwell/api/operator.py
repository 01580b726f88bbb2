"""What an operator does to a waiting step through the API (IAM-authorised, like cancel and
retry), and a for_each step's children page by page.

Deciding an approval here takes the engine path a signed link takes (``ApprovalDecided``), as
the caller API Gateway verified, marked as an operator's decision: it settles the approval
whatever its approvers and quorum say (an operator could skip the step anyway). Answering a
callback takes the path ``POST /callbacks/{token}`` takes, without a token.
"""

from __future__ import annotations

from typing import Annotated, Literal

from aws_lambda_powertools.event_handler.openapi.params import Body, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter

from stepwell.api import errors
from stepwell.api.deps import ApiDeps, current
from stepwell.api.models import (
    CallbackRequest,
    ChildrenPage,
    DecisionRequest,
    LogLine,
    RunChanged,
    StepLogsView,
    StepView,
    step_view,
)
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.api.request import caller
from stepwell.api.runs import RunId, StepKey, _act, _changed, _step, _with_cursor
from stepwell.code.protocol import FOR_EACH, kind_of
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.state import RunState, StepState, child_key
from stepwell.runtime.orchestrator import UnknownWorkflow
from stepwell.store.port import Page

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

OPERATOR = "an operator"
"""Who decided, when the request names no principal (a local stack without auth)."""


@router.post(
    "/runs/<run_id>/steps/<step>/decision",
    summary="Decide a waiting approval",
    description=(
        "Approves or rejects a waiting approval step as the calling operator (noted on the "
        "timeline as who decided). It settles the approval whatever its approvers and quorum "
        "say. 409 when the step is not waiting for an approval or the run has ended."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The decision was recorded", 404, 409),
)
def decide_step(
    run_id: RunId, step: StepKey, request: Annotated[DecisionRequest, Body()]
) -> RunChanged:
    deps = current()
    run, key, record = _waiting(deps, run_id, step, "approval")
    comment = (request.comment or "").strip() or None
    event = ApprovalDecided(
        key, record.attempt, request.approved, caller() or OPERATOR, comment, operator=True
    )
    _act(deps, run.id, event)
    verb = "approved" if request.approved else "rejected"
    return _changed(deps, run.id, key, f"step {key} {verb}")


@router.post(
    "/runs/<run_id>/steps/<step>/callback",
    summary="Answer a waiting callback",
    description=(
        "Completes a step that waits for a callback, as the external system would with its "
        "token: success (with output), failure (with error) or heartbeat. 409 when the step is "
        "not waiting for a callback or the run has ended."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The callback was delivered", 404, 409),
)
def answer_callback(
    run_id: RunId, step: StepKey, request: Annotated[CallbackRequest, Body()]
) -> RunChanged:
    deps = current()
    run, key, _ = _waiting(deps, run_id, step, "callback")
    _act(deps, run.id, request.event(key, by=caller() or OPERATOR))
    return _changed(deps, run.id, key, f"callback {request.status} delivered to {key}")


def _waiting(deps: ApiDeps, run_id: str, step: str, what: str) -> tuple[RunState, str, StepState]:
    """The run, the step's key and its record, when the step waits for ``what``; 409 if not."""
    run, key, record = _step(deps, run_id, step)
    if run.terminal:
        raise errors.conflict(f"run {run.id} has ended ({run.status}): it waits for nothing")
    if record is None or record.waiting_for != what:
        status = record.status if record else "not started"
        article = "an" if what[0] in "aeiou" else "a"
        raise errors.conflict(f"step {key!r} is {status}: it is not waiting for {article} {what}")
    return run, key, record


def _fan_out(deps: ApiDeps, run_id: str, key: str) -> tuple[RunState, str, StepState | None]:
    """The run, key and record of a for_each step: a YAML one, or a code-first ctx.for_each
    (known by its record); 404 for any other step."""
    run, key, record = _step(deps, run_id, key)
    definition = deps.orchestrator.pinned(run)
    if definition.code is None:
        spec = definition.steps.get(key)
        fans_out = spec is not None and getattr(spec, "for_each", None) is not None
    else:
        fans_out = record is not None and kind_of(record.spec) == FOR_EACH
    if not fans_out:
        raise errors.not_found(f"step {key!r} of run {run.id} is not a for_each step")
    return run, key, record


@router.get(
    "/runs/<run_id>/steps/<step>/logs",
    summary="A step attempt's logs",
    description=(
        "The log lines the functions wrote while running an attempt of the step (the current "
        "one unless attempt= says): the local stack keeps them; a deployed stack answers a link "
        "to the CloudWatch Logs Insights query of the attempt instead."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "Where the attempt's lines are, and those kept here", 404),
)
def step_logs(
    run_id: RunId,
    step: StepKey,
    attempt: Annotated[int | None, Query(ge=1, le=10_000)] = None,
) -> StepLogsView:
    deps = current()
    run, key, record = _step(deps, run_id, step)
    if record is None or record.attempt < 1:
        raise errors.not_found(f"step {key!r} of run {run.id} has run no attempt")
    number = attempt or record.attempt
    if number > record.attempt:
        raise errors.not_found(f"step {key!r} has run {record.attempt} attempt(s), not {number}")
    current_one = number == record.attempt
    since = record.attempt_started_at if current_one else record.started_at
    until = record.ended_at if current_one else None
    port = deps.runtime.logs
    if port is None:
        return StepLogsView(step=key, attempt=number, where="not known to this API")
    try:
        pinned = deps.orchestrator.pinned(run)
        functions = [*pinned.functions.values(), *([pinned.runner] if pinned.runner else [])]
    except UnknownWorkflow:  # its version is gone: the engine's own log group still answers
        functions = []
    found = port.attempt(run.id, key, number, since or record.started_at, until, functions)
    lines = None if found.lines is None else [LogLine(**line) for line in found.lines]
    return StepLogsView(step=key, attempt=number, where=found.where, lines=lines, link=found.link)


ChildStatus = Literal["pending", "running", "succeeded", "failed", "skipped", "cancelled"]
MOST_READ = 1000
"""Children a filtered page reads at most: a filter that matches few of a wide fan-out answers
what it found so far with a cursor to look further, so no request reads the whole fan-out."""


@router.get(
    "/runs/<run_id>/steps/<step>/children",
    summary="A for_each step's children",
    description=(
        "The children of a for_each step (or a code-first ctx.for_each) in item order, a page "
        "at a time (each child read by its key: a page costs its own size, however wide the "
        "fan-out). Children that have not started are listed as pending. With status, only "
        "the children in it (running also holds retrying and waiting ones): a page reads at "
        "most 1,000 children, and may come back short (even empty) with a cursor to look "
        "further."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "One page of children", 404),
)
def list_children(
    run_id: RunId,
    step: StepKey,
    cursor: Annotated[str | None, Query(max_length=12, pattern=r"^[0-9]+$")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    status: Annotated[ChildStatus | None, Query()] = None,
) -> ChildrenPage:
    deps = current()
    run, key, record = _fan_out(deps, run_id, step)
    total = (record.items_total if record else None) or 0
    start = int(cursor or 0)

    def read(first: int, last: int) -> list[StepView]:
        keys = [child_key(key, i) for i in range(first, last)]
        found = deps.store.load(run.id, keys).steps if keys else {}
        return [
            step_view(found[k], run.id)
            if k in found
            else StepView(key=k, status="pending", attempt=0)
            for k in keys
        ]

    def page() -> Page:
        if status is None:
            end = min(total, start + limit)
            return Page(read(start, end), str(end) if end < total else None)
        matched: list[StepView] = []
        at, stop = start, min(total, start + MOST_READ)
        while at < stop and len(matched) < limit:
            window = read(at, min(stop, at + limit))
            for view in window:
                at += 1
                if _in(view.status, status):
                    matched.append(view)
                    if len(matched) == limit:
                        break
        return Page(matched, str(at) if at < total else None)

    result = _with_cursor(cursor, page)
    return ChildrenPage(
        step=key,
        items_total=record.items_total if record else None,
        children_succeeded=record.children_succeeded if record else 0,
        children_failed=record.children_failed if record else 0,
        children=list(result.items),
        cursor=result.cursor,
    )


def _in(child: str, status: str) -> bool:
    """Whether a child's status is the one a filter asks for."""
    if status == "running":
        return child in ("running", "retrying", "waiting")
    return child == status
