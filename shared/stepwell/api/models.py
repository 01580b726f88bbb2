"""The API's wire shapes: pydantic models, so requests are validated and /openapi.json is real.

Over 500 lines: every wire shape of the API in one module, from which /openapi.json is
generated.

Views are built from the engine's records by the ``*_view`` functions at the bottom; secrets
of a run (its nonce, the attempt tokens) never leave through them.
"""

from __future__ import annotations

import json
from datetime import datetime
from typing import Annotated, Any, Literal
from urllib.parse import quote

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from stepwell.code.protocol import kind_of
from stepwell.definition.loader import ASL_SUFFIXES
from stepwell.definition.models import Workflow
from stepwell.engine.attempts import DEFAULT_LEASE
from stepwell.engine.decision import TimelineEntry
from stepwell.engine.events import CallbackReceived
from stepwell.engine.state import RunState, StepState
from stepwell.intake import MAX_DEPTH, too_deep

MAX_LABELS = 20
RunId = Annotated[str, StringConstraints(min_length=1, max_length=128)]
StepKey = Annotated[str, StringConstraints(min_length=1, max_length=200)]
LabelKey = Annotated[str, StringConstraints(min_length=1, max_length=64)]
LabelValue = Annotated[str, StringConstraints(max_length=256)]
Reason = Annotated[str, StringConstraints(max_length=1000)]
ERROR_NAME_CHARS = 256
"""The longest error name a callback may give: Step Functions' own bound for SendTaskFailure's
``error``, which /tasks/failure takes as it is."""
Comment = Annotated[str, StringConstraints(max_length=2000)]


class _Request(BaseModel):
    model_config = ConfigDict(extra="forbid")


# -- errors ---------------------------------------------------------------------------------
class ErrorBody(BaseModel):
    """Every error the API answers with."""

    error: str = Field(description="A short code: not_found, invalid, conflict, gone ...")
    message: str = Field(description="What went wrong and how to fix it, for a person.")
    details: Any = Field(None, description="Machine-readable specifics (schema errors ...).")


# -- workflows ------------------------------------------------------------------------------
class TriggersView(BaseModel):
    """How runs of a workflow start besides the API."""

    http: bool
    events: list[dict[str, Any]] = Field(description="EventBridge patterns that start a run.")
    schedules: list[str] = Field(description="Schedule expressions that start a run per tick.")


WorkflowKind = Literal["yaml", "code", "asl"]


class WorkflowSummary(BaseModel):
    """One workflow of the deployment."""

    name: str
    description: str | None = None
    version: str = Field(description="Content hash of the current definition.")
    kind: WorkflowKind = Field(
        "yaml",
        description="yaml (a DAG of steps), code (a code-first function) or asl (a Step "
        "Functions machine, run as it is).",
    )
    steps: int
    triggers: TriggersView
    code: str | None = Field(
        None,
        description="Code-first workflows and machines: the function, as FILE:FUNCTION (no steps).",
    )


class BrokenWorkflow(BaseModel):
    """A workflow file that cannot be loaded: its runs are refused (422) until it is fixed."""

    name: str = Field(description="The file's name without its extension.")
    problems: list[str] = Field(description="Every problem, as FILE:LINE:COL: ... .")


class WorkflowList(BaseModel):
    """Every workflow of the deployment."""

    workflows: list[WorkflowSummary]
    broken: list[BrokenWorkflow] = Field(
        default_factory=list, description="Files that could not be loaded, with their problems."
    )


class GraphNode(BaseModel):
    """A step of a workflow's graph (a state of a machine)."""

    id: str
    label: str
    kind: str = Field(description="The step's type (for_each, compensate), or the state's Type.")
    names: list[str] = Field(
        description="The step names of the records that belong to it (a run's record belongs to "
        "the node naming its key's first part, less a ~N repeat)."
    )
    start: bool = False
    end: bool = False
    error: str | None = Field(None, description="A Fail state's error.")


class GraphEdge(BaseModel):
    """One edge of a workflow's graph."""

    source: str
    target: str
    kind: Literal["depends_on", "catch", "compensate", "next", "choice", "default"] = Field(
        description="depends_on, next, choice, default: the way a run goes; catch: where a "
        "failure goes; compensate: what undoes a step."
    )


class Graph(BaseModel):
    """A workflow's steps and edges."""

    nodes: list[GraphNode] = Field(default_factory=list)
    edges: list[GraphEdge] = Field(default_factory=list)


class WorkflowDetail(WorkflowSummary):
    """A workflow's current definition and the versions runs have pinned."""

    input_schema: dict[str, Any] | None = None
    example_input: Any = Field(
        None,
        description="An input to start a run with (statemachines/examples/<name>.json), where "
        "the workflow has one: the dashboard's start form begins with it.",
    )
    definition: dict[str, Any]
    versions: list[str] = Field(description="Versions saved so far (the current one included).")
    upstream: dict[str, list[str]] = Field(
        default_factory=dict,
        description="Step id -> the steps that end before it starts (depends_on, and the steps "
        "whose catch names it): the edges of the workflow's graph.",
    )
    graph: Graph = Field(
        default_factory=Graph,
        description="The whole definition as a graph: a YAML workflow's steps and their "
        "compensations, a machine's states; empty for a code-first workflow (its runs' steps "
        "are the ones its code reached).",
    )


class PublishRequest(_Request):
    """Publish a workflow: its definition becomes the version new runs take."""

    definition: dict[str, Any] = Field(
        description="The workflow as `stepwell validate` loads it (its JSON form)."
    )
    functions: (
        dict[
            Annotated[str, StringConstraints(min_length=1, max_length=140)],
            Annotated[str, StringConstraints(min_length=1, max_length=200)],
        ]
        | None
    ) = Field(
        None,
        description="The functions its steps name -> their ARNs; by default the binding of "
        "the version in force is kept.",
    )
    runner: Annotated[str, StringConstraints(pattern=r"^arn:", max_length=200)] | None = Field(
        None,
        description="A code-first workflow's replaying function (an ARN); by default the one "
        "of the version in force.",
    )
    owner: Annotated[str, StringConstraints(min_length=1, max_length=200)] = Field(
        "stepwell publish", description="Who publishes it: another owner cannot take the name."
    )
    dry_run: bool = Field(False, description="Say what would happen, publish nothing.")


class PublishResult(BaseModel):
    """What a publication did (or, dry, would do)."""

    name: str
    status: Literal["new", "changed", "unchanged", "retired"]
    version: str | None
    previous: str | None = None


# -- runs -----------------------------------------------------------------------------------
class StartRunRequest(_Request):
    """Start a run."""

    input: Any = Field(None, description="The run's input; checked against input_schema.")
    labels: dict[LabelKey, LabelValue] = Field(
        default_factory=dict, max_length=MAX_LABELS, description="Free-form tags of the run."
    )
    dry_run: bool = Field(
        False, strict=True, description="Record dispatched steps without invoking them."
    )
    priority: int | None = Field(
        None,
        strict=True,
        gt=-1_000_000_000,
        lt=1_000_000_000,
        description="For a workflow with `concurrency`: the run's place in its key's queue, "
        "higher first (default: the workflow's `priority`, else 0).",
    )
    start_at: AwareDatetime | None = Field(
        None,
        description=(
            "When the run starts (ISO 8601 with its offset, at most 365 days ahead); until then "
            "it is `scheduled` and can be cancelled. A time already past starts it now."
        ),
    )


class RunStarted(BaseModel):
    """A run that was started (or found again through its Idempotency-Key)."""

    run_id: str
    workflow: str
    version: str
    status: str
    dry_run: bool = False
    rerun_of: str | None = None
    url: str = Field(description="The run's path in this API.")


class Usage(BaseModel):
    """Model tokens and dollars a run or step spent."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0


class RunSummary(BaseModel):
    """A run as listings show it."""

    id: str
    workflow: str
    version: str
    status: str
    created_at: datetime
    started_at: datetime | None = None
    ended_at: datetime | None = None
    labels: dict[str, str] = Field(default_factory=dict)
    rerun_of: str | None = None
    continued_from: str | None = Field(
        None, description="The run this one continues (code-first continue_as_new)."
    )
    started_by: str | None = Field(
        None, description="Who started the run: the start request's authenticated principal."
    )
    parent_run_id: str | None = None
    dry_run: bool = False
    usage: Usage = Field(default_factory=Usage)


class RunList(BaseModel):
    """One page of runs, newest first."""

    runs: list[RunSummary]
    cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class Payloads(BaseModel):
    """A record's input and output; one over 64 KB is left out, with its size and URL."""

    input: Any = None
    output: Any = None
    input_url: str | None = Field(
        None, description="Set (and input null) when the input is over 64 KB: fetch it there."
    )
    input_bytes: int | None = None
    output_url: str | None = Field(
        None, description="Set (and output null) when the output is over 64 KB: fetch it there."
    )
    output_bytes: int | None = None


class RunView(RunSummary, Payloads):
    """A run with its input, output and error."""

    error: dict[str, Any] | None = None
    due_at: datetime | None = None


class StepView(Payloads):
    """One step of a run (for_each children are counted, not listed)."""

    key: str
    status: str
    attempt: int
    error: dict[str, Any] | None = Field(
        None, description="Its failure; while it waits to retry, the last attempt's failure."
    )
    started_at: datetime | None = None
    attempt_started_at: datetime | None = Field(None, description="When this attempt began.")
    ended_at: datetime | None = None
    due_at: datetime | None = Field(
        None,
        description="Its timer: the next retry, the end of a delay, a wait's or an attempt's "
        "timeout.",
    )
    lease_expires_at: datetime | None = Field(
        None,
        description="A running attempt: when it is presumed lost without a result (its timeout, "
        "else Lambda's longest run and a margin) and sent again.",
    )
    heartbeat_due: datetime | None = Field(None, description="The next heartbeat it must send.")
    waiting_for: str | None = None
    decisions: list[dict[str, Any]] = Field(default_factory=list)
    items_total: int | None = None
    children_succeeded: int = 0
    children_failed: int = 0
    child_run_id: str | None = None
    copied_from: str | None = None
    usage: Usage = Field(default_factory=Usage)
    name: str | None = Field(None, description="Code-first runs: the name the code gave it.")
    kind: str | None = Field(
        None, description="Code-first runs: its kind (task, step, sleep ...) as the code issued it."
    )
    after: list[str] = Field(
        default_factory=list,
        description="Code-first runs: the steps the code had read before reaching it (edges).",
    )
    awaits: list[dict[str, Any]] | None = Field(
        None,
        description="An event wait: each kind of event it waits for (source, detail_type, the "
        "path into the event and the value it must carry there; taken: the id of the event "
        "that completed it).",
    )
    timeout_at: datetime | None = Field(None, description="When its wait times out.")


class RunDetail(BaseModel):
    """A run and its steps."""

    run: RunView
    steps: list[StepView]


class TimelineEntryView(BaseModel):
    """One transition of a run."""

    at: datetime
    type: str
    step: str | None = None
    attempt: int | None = None
    message: str = ""
    data: dict[str, Any] = Field(default_factory=dict)


class TimelinePage(BaseModel):
    """Timeline entries in order; poll with ``cursor`` for more."""

    entries: list[TimelineEntryView]
    cursor: str | None = None


class CancelRequest(_Request):
    """Cancel a run."""

    reason: Reason | None = Field(None, description="Noted on the timeline.")


class RerunRequest(_Request):
    """Start a new run from a step of this one."""

    from_step: StepKey = Field(description="The step to run again, with all it leads to.")
    input: Any = Field(None, description="New input; the original run's when omitted.")
    dry_run: bool = Field(False, strict=True, description="Preview the rerun without running it.")
    version: str = Field(
        "original",
        min_length=1,
        max_length=80,
        description="The definition the new run pins: original (the run's own), latest (the "
        "deployed one), or a version id (GET /workflows/{name} lists them).",
    )


class SkipRequest(_Request):
    """Skip an open step."""

    output: Any = Field(None, description="The step's output for the steps after it.")
    reason: Reason | None = None
    dry_run: bool = Field(
        False,
        strict=True,
        description="Only say what the skip would do (the steps it would skip), changing nothing.",
    )


class RetryRequest(_Request):
    """Retry a failed step now."""

    reason: Reason | None = None


class DecisionRequest(_Request):
    """An operator's decision on a waiting approval."""

    approved: bool = Field(strict=True, description="true approves, false rejects.")
    comment: Comment | None = Field(None, description="Noted on the timeline with who decided.")


class ChildrenPage(BaseModel):
    """One page of a for_each step's children, in item order."""

    step: str
    items_total: int | None = Field(None, description="None until the fan-out has started.")
    children_succeeded: int = 0
    children_failed: int = 0
    children: list[StepView] = Field(
        description="Children not started yet are listed as pending, with attempt 0."
    )
    cursor: str | None = Field(None, description="Pass as ?cursor= for the next page.")


class LogLine(BaseModel):
    """One line a function logged while running a step attempt."""

    at: datetime
    level: str = ""
    message: str = ""
    source: str = Field("", description="The function (or service) that logged it.")


class StepLogsView(BaseModel):
    """A step attempt's log lines (the local stack keeps them), or a link to them (CloudWatch
    Logs Insights, when deployed)."""

    step: str
    attempt: int
    where: str = Field(description="Where the lines are, for a person.")
    lines: list[LogLine] | None = Field(
        None, description="The lines, oldest first, when kept here."
    )
    link: str | None = Field(None, description="The Logs Insights query of the attempt.")


class RunChanged(BaseModel):
    """What an operator action did to a run."""

    run_id: str
    status: str = Field(description="The run's status after the action.")
    step: str | None = None
    step_status: str | None = None
    message: str
    skips: list[str] = Field(
        default_factory=list,
        description="A skip without an output: the steps after it that it skips too (their "
        "trigger rules rule them out). Skipping with an output runs them instead.",
    )


# -- approvals and callbacks ----------------------------------------------------------------
class ApprovalView(BaseModel):
    """What an approval link is for (GET with Accept: application/json)."""

    run_id: str
    workflow: str
    step: str
    attempt: int
    decision: Literal["approve", "reject"] = Field(description="What this link decides.")
    approver: str | None = None
    message: str = ""
    quorum: int = 1
    approvals: int = Field(0, description="Approvals recorded so far.")
    expires_at: datetime
    approve_url: str = Field(description="Path that approves as the same approver.")
    reject_url: str = Field(description="Path that rejects as the same approver.")


class ApprovalRecorded(BaseModel):
    """A decision that was recorded."""

    run_id: str
    step: str
    decision: Literal["approve", "reject"]
    approver: str
    step_status: str
    run_status: str


class CallbackError(_Request):
    """Why the external work failed."""

    type: Annotated[str, StringConstraints(min_length=1, max_length=ERROR_NAME_CHARS)] = (
        "CallbackFailed"
    )
    message: Annotated[str, StringConstraints(max_length=4000)] = ""


class CallbackRequest(_Request):
    """A callback: the external work succeeded, failed, or is still alive (heartbeat)."""

    status: Literal["success", "failure", "heartbeat"]
    output: Any = Field(None, description="The step's output (success).")
    error: CallbackError | None = Field(None, description="Why it failed (failure).")

    def event(self, key: str, by: str | None = None) -> CallbackReceived:
        """The engine event this callback is for step ``key``."""
        error = self.error
        return CallbackReceived(
            key,
            self.status,
            self.output,
            error.type if error else "CallbackFailed",
            error.message if error else "",
            by=by,
        )

    @model_validator(mode="after")
    def _fields_of_status(self) -> CallbackRequest:
        if self.error is not None and self.status != "failure":
            raise ValueError("'error' goes with status failure only")
        if self.output is not None and self.status != "success":
            raise ValueError("'output' goes with status success only")
        return self


class TaskSuccess(_Request):
    """Step Functions' SendTaskSuccess: the task token and the task's output (JSON text)."""

    taskToken: str = Field(min_length=1, max_length=2048)
    output: str = Field(description="The task's output, as JSON text (the body's 256 KB bound).")


class TaskFailure(_Request):
    """Step Functions' SendTaskFailure: the task token, the error's name and its cause."""

    taskToken: str = Field(min_length=1, max_length=2048)
    error: str | None = Field(None, max_length=ERROR_NAME_CHARS)
    cause: str | None = Field(None, description="Kept to its first 4,000 characters.")


class TaskHeartbeat(_Request):
    """Step Functions' SendTaskHeartbeat: the task token."""

    taskToken: str = Field(min_length=1, max_length=2048)


class CallbackAccepted(BaseModel):
    """A callback that was delivered, or kept until the step's wait opens."""

    run_id: str
    step: str
    status: Literal["success", "failure", "heartbeat"]
    outcome: Literal["delivered", "kept"] = Field(
        description="kept: the step was not waiting yet; the signal completes it when it does."
    )


# -- views of the engine's records ----------------------------------------------------------
def triggers_view(workflow: Workflow) -> TriggersView:
    """A workflow's triggers."""
    triggers = workflow.triggers
    return TriggersView(
        http=triggers.http,
        events=[t.pattern for t in triggers.events],
        schedules=[s.expression for s in triggers.schedules],
    )


def workflow_kind(workflow: Workflow) -> WorkflowKind:
    """Whether a workflow is YAML, code-first or a Step Functions machine."""
    if workflow.code is None:
        return "yaml"
    return "asl" if workflow.code.split(":", 1)[0].endswith(ASL_SUFFIXES) else "code"


def workflow_summary(workflow: Workflow) -> WorkflowSummary:
    """A workflow as the list shows it."""
    kind = workflow_kind(workflow)
    return WorkflowSummary(
        name=workflow.name,
        description=workflow.description,
        version=workflow.version,
        kind=kind,
        steps=len(workflow.steps) if kind == "yaml" else 0,
        triggers=triggers_view(workflow),
        code=workflow.code,
    )


def run_summary(run: RunState) -> RunSummary:
    """A run as listings show it."""
    return RunSummary(**_summary_fields(run))


INLINE_PAYLOAD_BYTES = 64 * 1024
"""Payloads larger than this are not inlined in a run's view: the view says how large they are
and where to fetch each (so a run with large outputs stays well under Lambda's 6 MB response)."""
INLINE_DEPTH = 4 * MAX_DEPTH
"""Payloads nested deeper than this are not inlined either (fetched by URL like large ones):
every value that enters is at most MAX_DEPTH deep and templates wrap it a few levels more, but
a run's view must not fail on any one value, whatever wrote it (pydantic stops at ~250)."""
MAX_PAYLOAD_RESPONSE_BYTES = 5 * 1024 * 1024
"""The largest payload the payload routes return (Lambda's response limit is 6 MB)."""


def payload_size(value: Any) -> int:
    """A payload's size as JSON."""
    return len(json.dumps(value, separators=(",", ":"), default=str).encode())


def _inline(value: Any, url: str) -> tuple[Any, str | None, int | None]:
    """(the value, or None when it is too large, or nested too deep, to inline; its URL and
    size then)."""
    if value is None:
        return None, None, None
    size = payload_size(value)
    if size <= INLINE_PAYLOAD_BYTES and too_deep(value, INLINE_DEPTH) is None:
        return value, None, None
    return None, url, size


def payloads(input: Any, output: Any, base: str) -> dict[str, Any]:
    """The :class:`Payloads` fields of a record whose payload URLs start with ``base``."""
    fields: dict[str, Any] = {}
    for part, value in (("input", input), ("output", output)):
        inline, url, size = _inline(value, f"{base}/{part}")
        fields.update({part: inline, f"{part}_url": url, f"{part}_bytes": size})
    return fields


def run_view(run: RunState) -> RunView:
    """A run with its payloads (never its nonce); large ones by reference."""
    base = f"/runs/{quote(run.id, safe='')}/payload"
    return RunView(
        **_summary_fields(run),
        **payloads(run.input, run.output, base),
        error=run.error,
        due_at=run.due_at,
    )


def _summary_fields(run: RunState) -> dict[str, Any]:
    return {
        "id": run.id,
        "workflow": run.workflow,
        "version": run.version,
        "status": run.status,
        "created_at": run.created_at,
        "started_at": run.started_at,
        "ended_at": run.ended_at,
        "labels": dict(run.labels),
        "rerun_of": run.rerun_of,
        "continued_from": run.continued_from,
        "started_by": run.started_by,
        "parent_run_id": run.parent.run_id if run.parent else None,
        "dry_run": run.dry_run,
        "usage": Usage(**vars(run.usage)),
    }


def step_view(step: StepState, run_id: str) -> StepView:
    """A step record (never its attempt token); large payloads by reference."""
    base = f"/runs/{quote(run_id, safe='')}/steps/{quote(step.key, safe='')}/payload"
    return StepView(
        key=step.key,
        status=step.status,
        attempt=step.attempt,
        **payloads(step.input, step.output, base),
        error=step.error,
        started_at=step.started_at,
        attempt_started_at=step.attempt_started_at,
        ended_at=step.ended_at,
        due_at=step.due_at,
        lease_expires_at=_lease(step),
        heartbeat_due=step.heartbeat_due,
        waiting_for=step.waiting_for,
        decisions=list(step.decisions),
        items_total=step.items_total,
        children_succeeded=step.children_succeeded,
        children_failed=step.children_failed,
        child_run_id=step.child_run_id,
        copied_from=step.copied_from,
        usage=Usage(**vars(step.usage)),
        name=step.name,
        kind=kind_of(step.spec) or None,
        after=list(step.after),
        awaits=step.awaits,
        timeout_at=step.timeout_at,
    )


def _lease(step: StepState) -> datetime | None:
    """When a running attempt is presumed lost: its due time (its timeout or next heartbeat),
    else its start plus the default lease (the run's watch then sends it again). A fan-out's
    due time is its watch's, not a lease."""
    if step.status != "running" or step.waiting_for is not None or step.is_fanout:
        return None
    if step.due_at is not None:
        return step.due_at
    if step.attempt_started_at is None:
        return None
    return step.attempt_started_at + DEFAULT_LEASE


def entry_view(entry: TimelineEntry) -> TimelineEntryView:
    """A timeline entry."""
    return TimelineEntryView(
        at=entry.at,
        type=entry.type,
        step=entry.step,
        attempt=entry.attempt,
        message=entry.message,
        data=dict(entry.data),
    )
