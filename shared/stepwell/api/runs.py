"""Routes of runs: start, list, show, timeline, and what an operator does to a run or step.

Over 500 lines: every route of a run and its steps shares the run's lookups and views.
"""

from __future__ import annotations

import inspect
import json
from datetime import datetime
from typing import Annotated, Any, Literal

import jsonschema
from aws_lambda_powertools.event_handler import Response, content_types
from aws_lambda_powertools.event_handler.openapi.params import Body, Header, Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pynamodb.exceptions import PynamoDBException

from stepwell.api import errors, idempotency, listing
from stepwell.api.deps import ApiDeps, current
from stepwell.api.models import (
    MAX_PAYLOAD_RESPONSE_BYTES,
    CancelRequest,
    RerunRequest,
    RetryRequest,
    RunChanged,
    RunDetail,
    RunList,
    RunStarted,
    SkipRequest,
    StartRunRequest,
    TimelinePage,
    entry_view,
    run_summary,
    run_view,
    step_view,
)
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.api.request import caller, lambda_context
from stepwell.api.workflows import versions
from stepwell.code.protocol import FOR_EACH, WORKFLOW_KEY, kind_of
from stepwell.definition.models import Workflow
from stepwell.engine import compensation, core, events
from stepwell.engine.decision import Decision
from stepwell.engine.skips import skipped_with
from stepwell.engine.state import RunState, RunStatus, StepState, parse_key
from stepwell.runtime.orchestrator import UnknownWorkflow
from stepwell.store.port import Page, Store

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

MAX_SCHEMA_ERRORS = 50
RunId = Annotated[str, Path(max_length=128, description="The run's id.")]
StepKey = Annotated[
    str, Path(max_length=200, description="A step id, or `step[i]` for a for_each child.")
]
Status = RunStatus


# -- starting -------------------------------------------------------------------------------
@router.post(
    "/workflows/<name>/runs",
    status_code=201,
    summary="Start a run",
    description=(
        "Starts a run of the workflow's current version. The input is checked against the "
        "workflow's input_schema (422 lists every problem). With an Idempotency-Key header a "
        "repeat within 24 hours answers with the same run; the same key with another body is 409."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(201, "The run was started", 403, 404, 409),
)
def start_run(
    name: Annotated[str, Path(max_length=64, description="The workflow's name.")],
    request: Annotated[StartRunRequest | None, Body()] = None,
    idempotency_key: Annotated[
        str | None,
        Header(alias="Idempotency-Key", min_length=1, max_length=255, pattern=r"^[\x21-\x7e]+$"),
    ] = None,
) -> Response[RunStarted]:
    deps = current()
    request = request or StartRunRequest()
    definition = _workflow(deps, name)
    if not definition.triggers.http:
        raise errors.ApiError(
            403, f"workflow {name!r} does not start over HTTP (its triggers say http: false)"
        )
    check_input(definition, request.input)
    start_at = request.start_at
    if start_at is not None and start_at > deps.clock.now() + core.MAX_RUN_DURATION:
        raise errors.invalid(
            f"start_at {start_at.isoformat()} is more than 365 days ahead: start it later, "
            "or schedule it closer"
        )

    body = request.model_dump(mode="json")
    # With an Idempotency-Key the run id derives from the key and the request, so a retry after
    # an error that came once the run was written starts that run again (a no-op), not another.
    run_id = idempotency.run_id_for(name, idempotency_key, body) if idempotency_key else None

    def start() -> dict[str, Any]:
        started = deps.orchestrator.start(
            name,
            request.input,
            run_id,
            dry_run=request.dry_run,
            labels=dict(request.labels),
            started_by=caller(),
            start_at=start_at,
            priority=request.priority,
            definition=definition,
        )
        return _started(deps, started).model_dump(mode="json")

    if idempotency_key:
        result = idempotency.once(
            deps.idempotency,
            start,
            workflow=name,
            key=idempotency_key,
            body=body,
            context=lambda_context(),
        )
    else:
        result = start()
    return _created(RunStarted.model_validate(result))


def check_input(definition: Workflow, value: Any) -> None:
    """422 listing every way ``value`` breaks the workflow's input_schema."""
    schema = definition.input_schema
    if schema is None:
        return
    problems = schema_problems(schema, value)
    if not problems:
        return
    first = problems[0]
    raise errors.invalid(
        f"the input does not match {definition.name}'s input_schema: "
        f"{first['path']}: {first['message']}"
        + (f" (and {len(problems) - 1} more)" if len(problems) > 1 else ""),
        problems[:MAX_SCHEMA_ERRORS],
    )


def schema_problems(schema: dict[str, Any], value: Any) -> list[dict[str, str]]:
    """Every way ``value`` breaks ``schema`` (formats checked too), in the order of the paths:
    each ``{path, message, rule}``."""
    validator_class = jsonschema.validators.validator_for(schema)
    validator = validator_class(schema, format_checker=validator_class.FORMAT_CHECKER)
    problems = sorted(validator.iter_errors(value), key=lambda e: list(map(str, e.absolute_path)))
    return [
        {
            "path": "/" + "/".join(str(p) for p in problem.absolute_path),
            "message": _short(problem.message),
            "rule": str(problem.validator),
        }
        for problem in problems
    ]


def _short(text: str, limit: int = 300) -> str:
    return text if len(text) <= limit else text[:limit] + "…"


def _started(deps: ApiDeps, run_id: str) -> RunStarted:
    run = deps.orchestrator.known_run(run_id)
    if run is None:  # pragma: no cover - the run was just written
        raise errors.not_found(f"no run {run_id!r}")
    return RunStarted(
        run_id=run.id,
        workflow=run.workflow,
        version=run.version,
        status=run.status,
        dry_run=run.dry_run,
        rerun_of=run.rerun_of,
        url=f"/runs/{run.id}",
    )


def _created(started: RunStarted) -> Response[RunStarted]:
    return Response(
        status_code=201,
        content_type=content_types.APPLICATION_JSON,
        body=started,
        headers={"Location": started.url},
    )


# -- reading --------------------------------------------------------------------------------
@router.get(
    "/runs",
    summary="List runs",
    description=(
        "Runs newest first: of a workflow, in a status, both, or every run (one indexed "
        "listing each). label=key=value (or key) keeps the runs that carry it. Pass the "
        "answer's cursor for the next page."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "One page of runs", 404),
)
def list_runs(
    workflow: Annotated[str | None, Query(max_length=64)] = None,
    status: Annotated[Status | None, Query()] = None,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=100)] = 50,
    label: Annotated[str | None, Query(min_length=1, max_length=321)] = None,
) -> RunList:
    deps = current()
    if workflow and deps.store.registration(workflow) is None:
        raise errors.not_found(f"no workflow named {workflow!r}")
    store = deps.store

    def read(at: str | None) -> Page:
        return store.runs(workflow, status, at, limit)

    if label:
        page = _with_cursor(cursor, lambda: listing.with_label(read, cursor, label, limit))
    else:
        page = _with_cursor(cursor, lambda: read(cursor))
    return RunList(runs=[run_summary(r) for r in page.items], cursor=page.cursor)


def _with_cursor(cursor: str | None, call: Any) -> Page:
    """A listing call whose cursor came from the client: a cursor that is not one the API gave
    out (edited, or from another listing) is a 422, not a crash."""
    if cursor is None:
        result: Page = call()
        return result
    try:
        result = call()
    except (ValueError, TypeError, KeyError, AttributeError, IndexError, PynamoDBException):
        raise errors.invalid(
            "the cursor is not one this listing gave out: start again without it",
            [{"loc": ["query", "cursor"], "message": "not a valid cursor", "type": "value_error"}],
        ) from None
    return result


@router.get(
    "/runs/<run_id>",
    summary="Show a run",
    description="The run and its steps (for_each children are counted on their step).",
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The run and its steps", 404),
)
def get_run(run_id: RunId) -> RunDetail:
    deps = current()
    run = _run(deps, run_id)
    try:
        definition: Workflow | None = deps.orchestrator.pinned(run)
    except UnknownWorkflow:
        definition = None
    if definition is not None and definition.code is None:
        # A YAML run's steps are its definition's: read them by key, not the whole run (a
        # for_each's children, counted on their step, are not read at all).
        # Compensations (a saga's undos, keyed "<step>:compensate") follow the steps.
        keys = [*definition.steps, *compensation.keys(definition)]
        steps = list(deps.store.load_steps(run.id, keys).steps.values())
        order = {key: i for i, key in enumerate(keys)}
        steps.sort(key=lambda s: (order.get(s.key, len(order)), s.key))
    else:
        # A code-first run's (or a machine's) steps are those its replays reached: in that order.
        steps = sorted((s for s in deps.store.steps(run.id) if s.index is None), key=_reached)
    return RunDetail(run=run_view(run), steps=[step_view(s, run.id) for s in steps])


def _reached(step: StepState) -> tuple[int, bool, datetime | None, str]:
    """When a replay reached a step: the replay (the run's own step first), then when it
    started (steps not started yet last)."""
    started = step.started_at or step.ended_at
    replay = -1 if step.created_seq is None else step.created_seq
    return (replay, started is None, started, step.key)


PayloadPart = Annotated[Literal["input", "output"], Path(description="input or output")]


@router.get(
    "/runs/<run_id>/payload/<part>",
    summary="A run's input or output",
    description="The payload a run's view leaves out for its size (over 64 KB), as JSON.",
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The payload", 404, 413),
)
def get_run_payload(run_id: RunId, part: PayloadPart) -> Response[Any]:
    run = _run(current(), run_id)
    return _payload(run.input if part == "input" else run.output, f"run {run.id}'s {part}")


@router.get(
    "/runs/<run_id>/steps/<step>/payload/<part>",
    summary="A step's input or output",
    description="The payload a run's view leaves out for its size (over 64 KB), as JSON.",
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The payload", 404, 413),
)
def get_step_payload(run_id: RunId, step: StepKey, part: PayloadPart) -> Response[Any]:
    _, key, record = _step(current(), run_id, step)
    if record is None:
        raise errors.not_found(f"step {key!r} has not started")
    value = record.input if part == "input" else record.output
    return _payload(value, f"step {key!r}'s {part}")


def _payload(value: Any, what: str) -> Response[Any]:
    text = json.dumps(value, separators=(",", ":"), default=str)
    size = len(text.encode())
    if size > MAX_PAYLOAD_RESPONSE_BYTES:
        raise errors.ApiError(
            413,
            f"{what} is {size / 1024 / 1024:.1f} MB, over what one API response can carry "
            f"({MAX_PAYLOAD_RESPONSE_BYTES // 1024 // 1024} MB): it is kept in the run's payload "
            "bucket, under payloads/<run id>/",
        )
    return Response(200, "application/json", text)


@router.get(
    "/runs/<run_id>/timeline",
    summary="A run's timeline",
    description=(
        "Every transition of the run in order. The cursor of the last page points past its "
        "last entry, so a client that follows the run polls with it."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "Timeline entries", 404),
)
def get_timeline(
    run_id: RunId,
    cursor: Annotated[str | None, Query(max_length=4096)] = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 100,
) -> TimelinePage:
    deps = current()
    run = _run(deps, run_id)
    page = _with_cursor(cursor, lambda: _timeline(deps.store, run.id, cursor, limit))
    return TimelinePage(entries=[entry_view(e) for e in page.items], cursor=page.cursor)


def _timeline(store: Store, run_id: str, cursor: str | None, limit: int) -> Page:
    """A page of the timeline whose cursor, at the end, points past the last entry."""
    if "follow" in inspect.signature(store.timeline).parameters:
        followed: Page = store.timeline(run_id, cursor, limit, follow=True)  # type: ignore[call-arg]
        return followed
    if cursor is not None and int(cursor) < 0:
        raise ValueError("negative cursor")
    page = store.timeline(run_id, cursor, limit)
    if page.cursor is None:
        # The in-memory store's cursor is an offset: the end is where this page stops.
        return Page(page.items, str(int(cursor or 0) + len(page.items)))
    return page


# -- acting ---------------------------------------------------------------------------------
@router.post(
    "/runs/<run_id>/cancel",
    summary="Cancel a run",
    description="Ends the run as cancelled and cancels its open steps. 409 if it has ended.",
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The run was cancelled", 404, 409),
)
def cancel_run(
    run_id: RunId, request: Annotated[CancelRequest | None, Body()] = None
) -> RunChanged:
    deps = current()
    run = _run(deps, run_id)
    if run.terminal:
        raise errors.conflict(f"run {run.id} has already ended ({run.status}): nothing to cancel")
    reason = (request.reason if request else None) or "cancelled"
    _act(deps, run.id, events.CancelRequested(reason, by=caller()))
    after = _run(deps, run.id)
    return RunChanged(run_id=run.id, status=after.status, message=f"run {after.status}")


@router.post(
    "/runs/<run_id>/rerun",
    status_code=201,
    summary="Rerun from a step",
    description=(
        "Starts a new run that copies the outputs of the step's ancestors from this run and runs "
        "the step and everything after it again. 409 when an ancestor did not succeed."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(201, "The new run was started", 404, 409),
)
def rerun_run(run_id: RunId, request: RerunRequest) -> Response[RunStarted]:
    deps = current()
    run = _run(deps, run_id)
    definition = _rerun_version(deps, run, request.version)
    if definition.code is None and request.from_step not in definition.steps:
        known = ", ".join(definition.steps)
        which = "" if request.version == "original" else f" (version {definition.version})"
        raise errors.invalid(
            f"{definition.name}{which} has no step {request.from_step!r} (steps: {known})",
            [{"loc": ["body", "from_step"], "message": "unknown step", "type": "value_error"}],
        )
    if request.input is not None:
        check_input(definition, request.input)
    new_id = deps.orchestrator.rerun(
        run.id, request.from_step, request.input, dry_run=request.dry_run, definition=definition
    )
    return _created(_started(deps, new_id))


def _rerun_version(deps: ApiDeps, run: RunState, version: str) -> Workflow:
    """The definition a rerun pins: the run's own, the deployed one, or a saved version."""
    if version == "original":
        return deps.orchestrator.pinned(run)
    if version == "latest":
        try:
            return deps.orchestrator.workflow(run.workflow)
        except UnknownWorkflow:
            raise errors.invalid(f"workflow {run.workflow!r} is no longer deployed") from None
    found = deps.store.get_definition(run.workflow, version)
    if found is None:
        current = deps.runtime.workflows.get(run.workflow)
        known = versions(deps.store, current) if current is not None else [run.version]
        raise errors.invalid(
            f"{run.workflow} has no version {version!r}: give original, latest or one of "
            + ", ".join(known),
            [{"loc": ["body", "version"], "message": "unknown version", "type": "value_error"}],
        )
    return found


@router.post(
    "/runs/<run_id>/steps/<step>/retry",
    summary="Retry a failed step now",
    description=(
        "Starts a new attempt of a failed step now; the failed run resumes and the steps its "
        "failure cancelled start again. 409 unless the step and its run have failed."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "A new attempt was started", 404, 409),
)
def retry_step(
    run_id: RunId, step: StepKey, request: Annotated[RetryRequest | None, Body()] = None
) -> RunChanged:
    deps = current()
    run, key, record = _step(deps, run_id, step)
    if record is None or record.status != "failed":
        status = record.status if record else "not started"
        raise errors.conflict(f"step {key!r} is {status}: only a failed step can be retried")
    if run.status != "failed":
        raise errors.conflict(
            f"run {run.id} is {run.status}: a failed step is retried once its run has failed"
        )
    reason = request.reason if request else None
    decision = _act(deps, run.id, events.RetryRequested(key, by=_by(reason)))
    if decision is None:
        raise errors.conflict(f"step {key!r} could not be retried: nothing changed")
    return _changed(deps, run.id, key, f"step {key} retried")


@router.post(
    "/runs/<run_id>/steps/<step>/skip",
    summary="Skip a step",
    description=(
        "Ends a step as skipped. Without an output the steps after it that its skip rules out "
        "are skipped too (listed in `skips`); with an output it succeeds with it and what "
        "follows runs. With dry_run it only says what it would do. 409 when the step has "
        "ended or the run has ended."
    ),
    tags=["runs"],
    security=MANAGEMENT,
    responses=responses(200, "The step was skipped", 404, 409),
)
def skip_step(
    run_id: RunId, step: StepKey, request: Annotated[SkipRequest | None, Body()] = None
) -> RunChanged:
    deps = current()
    run, key, record = _step(deps, run_id, step)
    if run.terminal:
        raise errors.conflict(f"run {run.id} has ended ({run.status}): its steps cannot change")
    if record is None or record.terminal:
        status = record.status if record else "not started"
        raise errors.conflict(
            f"step {key!r} is {status}: only a step that is under way (or waiting for its "
            "dependencies) can be skipped"
        )
    request = request or SkipRequest()
    definition = deps.orchestrator.pinned(run)
    skips: list[str] = []
    if request.output is None and definition.code is None:
        skips = skipped_with(definition, key, deps.store.load_steps(run.id, definition.steps).steps)
    if request.dry_run:
        return RunChanged(
            run_id=run.id,
            status=run.status,
            step=key,
            step_status=record.status,
            message=_skip_preview(definition, key, request.output, skips),
            skips=skips,
        )
    _act(deps, run.id, events.SkipRequested(key, request.output, by=_by(request.reason)))
    also = f"; skipped with it: {', '.join(skips)}" if skips else ""
    changed = _changed(deps, run.id, key, f"step {key} skipped{also}")
    return changed.model_copy(update={"skips": skips})


def _skip_preview(definition: Workflow, key: str, output: Any, skips: list[str]) -> str:
    """What skipping ``key`` would do, for the person about to."""
    if output is not None:
        return f"skipping {key} with this output: it succeeds with it, and what follows runs"
    if definition.code is not None:
        return (
            f"skipping {key}: the code goes on with null as its result (give an output to "
            "hand it a result)"
        )
    if skips:
        return f"skipping {key} also skips {', '.join(skips)} (give an output to run what follows)"
    return f"skipping {key} skips nothing else"


# -- shared ---------------------------------------------------------------------------------
def _workflow(deps: ApiDeps, name: str) -> Workflow:
    try:
        return deps.orchestrator.workflow(name)
    except UnknownWorkflow:
        problems = deps.runtime.workflows.problems(name)
        if problems:
            raise errors.invalid(
                f"workflow {name!r} cannot run: its last publication was refused for "
                f"{len(problems)} problem{'s' if len(problems) != 1 else ''}; fix them "
                f"(stepwell validate) and publish again: {problems[0]}",
                [{"message": str(p)} for p in problems],
            ) from None
        try:
            deps.runtime.workflows.current(name)
        except LookupError as exc:
            raise errors.not_found(str(exc)) from None
        raise errors.not_found(f"no workflow named {name!r}") from None


def _run(deps: ApiDeps, run_id: str) -> RunState:
    run = deps.store.get_run(run_id)
    if run is None:
        raise errors.not_found(f"no run {run_id!r}")
    return run


def _step(deps: ApiDeps, run_id: str, key: str) -> tuple[RunState, str, StepState | None]:
    """The run, the step's key and its record (None when it has not started); 404 when the
    run has no such step.

    A YAML run's steps are its definition's. A code-first run (a Step Functions machine is
    one) has the steps its code reached, each on its own record with its definition: its
    definition's ``steps`` hold only the replay's own ``$workflow``, which is no step of the
    user's."""
    run = _run(deps, run_id)
    definition = deps.orchestrator.pinned(run)
    try:
        step_id, index = parse_key(key)
    except ValueError:
        step_id, index = key, None
    if index is not None and index < 0:
        raise errors.not_found(f"run {run.id} ({run.workflow}) has no step {key!r}")
    if definition.code is None:
        # A saga's compensation (``charge:compensate``) is a step of the run too.
        spec = definition.steps.get(compensation.undone(step_id) or step_id)
        undo = compensation.undone(step_id) is not None
        if (
            spec is None
            or (undo and spec.undo is None)
            or (index is not None and spec.for_each is None)
        ):
            raise errors.not_found(f"run {run.id} ({run.workflow}) has no step {key!r}")
        return run, key, deps.store.load(run.id, [key]).steps.get(key)
    if step_id == WORKFLOW_KEY:
        raise errors.not_found(
            f"{WORKFLOW_KEY} is run {run.id}'s replay of its code, not a step: act on the "
            "steps the code reached, or on the run"
        )
    found = deps.store.load(run.id, [key, step_id]).steps
    record, parent = found.get(key), found.get(step_id)
    if index is None and record is None:
        raise errors.not_found(
            f"run {run.id} ({run.workflow}) has not reached a step {key!r}: a code-first run's "
            "steps exist once its code reaches them (GET /runs/{id} lists them)"
        )
    if index is not None and (
        parent is None
        or kind_of(parent.spec) != FOR_EACH
        or parent.items_total is None
        or index >= parent.items_total
    ):
        raise errors.not_found(f"run {run.id} ({run.workflow}) has no step {key!r}")
    return run, key, record


def _by(reason: str | None) -> str | None:
    """Who asked, with why when they said (the engine notes it on the timeline)."""
    who = caller()
    if not reason:
        return who
    return f"{who or 'an operator'} ({reason})"


def _act(deps: ApiDeps, run_id: str, event: events.Event) -> Decision | None:
    decision = deps.orchestrator.handle(run_id, event)
    _refused(decision)
    return decision


def _refused(decision: Decision | None) -> None:
    """409 when the engine noted that it ignored the request (the state moved on meanwhile)."""
    for entry in decision.timeline if decision else ():
        if entry.type.endswith("_ignored"):
            raise errors.conflict(entry.message or entry.type.replace("_", " "))


def _changed(deps: ApiDeps, run_id: str, key: str, message: str) -> RunChanged:
    run = _run(deps, run_id)
    record = deps.store.load(run_id, [key]).steps.get(key)
    return RunChanged(
        run_id=run_id,
        status=run.status,
        step=key,
        step_status=record.status if record else None,
        message=message,
    )
