"""The workflow definition language as pydantic v2 models.

Over 500 lines: the whole definition language, a model per step type, in one module for its JSON
Schema.

A workflow is a mapping of step ids to steps; each step has a ``type`` (``task`` when omitted)
and the fields common to every step plus the fields of its type. Strings holding ``${...}``
are JSONata expressions (see :mod:`stepwell.expressions`).
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator
from datetime import timedelta
from functools import cached_property
from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    ValidationError,
    WithJsonSchema,
    field_validator,
    model_validator,
)

from stepwell.addresses import allow_entry
from stepwell.definition.durations import Duration
from stepwell.expressions import split_words

STEP_ID = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
WORKFLOW_NAME = re.compile(r"^[a-z0-9][a-z0-9-]{0,63}$")
ROLE_ARN = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:role/[\w+=,.@/-]{1,512}$")
"""An IAM role's ARN, in any partition (``aws``, ``aws-cn``, ``aws-us-gov``)."""


def _step_id(key: str) -> str:
    if not STEP_ID.match(key):
        raise ValueError(
            f"step id {key!r} is not an identifier: use letters, digits and '_' "
            f"(e.g. {re.sub(r'[^A-Za-z0-9_]', '_', key)!r}) so expressions can name it"
        )
    return key


# Checked per key (not in a validator of the whole mapping) so an error names the bad id itself.
StepId = Annotated[
    str, AfterValidator(_step_id), WithJsonSchema({"type": "string", "pattern": STEP_ID.pattern})
]


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)


class Retry(_Model):
    """When and how often a failed attempt is tried again (exponential backoff)."""

    max_attempts: int = Field(3, ge=1, le=100, description="Attempts in all, the first included.")
    interval: Duration = Field(timedelta(seconds=1), description="Wait before the second attempt.")
    backoff_rate: float = Field(
        2.0, ge=1.0, le=10.0, description="Each wait is the last times this."
    )
    max_interval: Duration | None = Field(None, description="No wait is longer than this.")
    jitter: Literal["full", "none"] = Field(
        "full", description="full: wait a random time between 0 and the computed wait."
    )
    retry_on: list[str] = Field(
        default_factory=lambda: ["*"],
        description="Error names (exception type names) that are retried; '*' retries any.",
    )
    non_retryable: list[str] = Field(
        default_factory=list, description="Error names never retried, even when retry_on is '*'."
    )


class HttpTrigger(_Model):
    """Expose ``POST /workflows/{name}/runs`` (on by default)."""

    enabled: bool = True


class EventTrigger(_Model):
    """Start a run for every EventBridge event that matches ``pattern``."""

    pattern: dict[str, Any] = Field(description="An EventBridge event pattern.")
    input: Any = Field(
        None, description="Reshapes the event into the run input; ${...} over `event`."
    )
    bus: str | None = Field(None, description="Event bus name; Stepwell's own bus when omitted.")


class ScheduleTrigger(_Model):
    """Start a run on every tick of an EventBridge schedule expression."""

    expression: str = Field(description="rate(...) or cron(...), as EventBridge writes them.")
    input: Any = Field(None, description="Run input for every tick.")
    timezone: str = "UTC"

    @field_validator("expression")
    @classmethod
    def _expression(cls, value: str) -> str:
        if not re.match(
            r"^(rate\(\s*\d+\s+(minute|minutes|hour|hours|day|days)\s*\)|cron\(.+\))$",
            value.strip(),
        ):
            raise ValueError(
                f"{value!r} is not a schedule expression: write rate(5 minutes) or "
                "cron(0 9 * * ? *)"
            )
        return value.strip()


class Triggers(_Model):
    """How runs of this workflow start besides the API."""

    http: bool = True
    events: list[EventTrigger] = Field(default_factory=list)
    schedules: list[ScheduleTrigger] = Field(default_factory=list)


TriggerRule = Literal["all_success", "none_failed", "all_done", "one_failed"]

_SHARE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*%\s*$")


def share_of(value: Any) -> Any:
    """``value`` if it is a count (>= 0) or a share like ``"10%"``; else ValueError."""
    if isinstance(value, bool):
        raise ValueError("give a count (like 2) or a share of the items (like '10%')")
    if isinstance(value, int):
        if value < 0:
            raise ValueError(f"{value} is negative: give a count >= 0 or a share like '10%'")
        return value
    if isinstance(value, str) and (match := _SHARE.match(value)) and float(match[1]) <= 100:
        return value.strip()
    raise ValueError(f"{value!r} is not a count (like 2) or a share of the items (like '10%')")


Share = Annotated[
    int | str,
    BeforeValidator(share_of),
    WithJsonSchema(
        {
            "anyOf": [
                {"type": "integer", "minimum": 0},
                {"type": "string", "pattern": r"^\d+(\.\d+)?%$"},
            ]
        }
    ),
]
"""A number of a fan-out's items: a count, or a share of them like ``"10%"``."""


def count_of(share: int | str, total: int) -> int:
    """A share's count of ``total`` items (a percentage rounds down)."""
    if isinstance(share, int):
        return share
    match = _SHARE.match(share)
    assert match is not None
    return int(total * float(match[1]) / 100)


class Catch(_Model):
    """A rule that handles a step's failure once its retries are spent: the step ends failed
    (its error readable as ``steps.<id>.error``), the steps in ``then`` run, and the run goes
    on. The first rule whose ``errors`` match handles it."""

    errors: Annotated[
        list[str],
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = Field(
        default_factory=lambda: ["*"],
        description="Error names (exception type names) this rule handles; '*' handles any.",
    )
    then: Annotated[
        list[str],
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = Field(
        default_factory=list,
        description="Steps that run when this rule handles the failure (one id or a list); "
        "they run only then, and are skipped otherwise.",
    )

    @field_validator("errors", "then", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    def handles(self, error_type: str) -> bool:
        """Whether this rule matches an error name."""
        return "*" in self.errors or error_type in self.errors


class Compensation(_Model):
    """What undoes a step that succeeded (a saga): when the run fails, is cancelled or times
    out, the compensations of the steps that succeeded run one at a time, newest first, each
    retried under its own policy, before the run ends."""

    function: str = Field(description="Logical id in template.yaml, function name or ARN.")
    input: Any = Field(
        None,
        description="Its input; ${...} expressions are evaluated. Default: {input, output} of "
        "the step it undoes.",
    )
    retry: Retry | None = None
    timeout: Duration | None = Field(None, description="Limit for one attempt.")


class StepBase(_Model):
    """Fields every step has, whatever its type."""

    description: str | None = None
    depends_on: Annotated[
        list[str],
        # One id or a list: the schema says so too, or editors would flag `depends_on: validate`.
        WithJsonSchema(
            {"anyOf": [{"type": "string"}, {"type": "array", "items": {"type": "string"}}]}
        ),
    ] = Field(default_factory=list, description="Steps that must end first: one id or a list.")
    when: str | bool | None = Field(
        None, description="Expression; the step is skipped when it is false."
    )
    trigger_rule: TriggerRule = Field(
        "all_success",
        description="all_success: skipped when a dependency was skipped or failed (handled); "
        "none_failed: runs when its dependencies succeeded or were skipped; "
        "all_done: runs once its dependencies ended, however; "
        "one_failed: runs when a dependency failed (handled by its catch), else skipped.",
    )
    catch: list[Catch] = Field(
        default_factory=list,
        description="Rules that handle the step's failure (after its retries) instead of "
        "failing the run.",
    )
    compensate: Compensation | str | None = Field(
        None,
        description="What undoes this step once it succeeded, should the run fail or be "
        "cancelled later: a function, or {function, input, retry, timeout}.",
    )
    for_each: str | None = Field(None, description="Expression giving a list; one child per item.")
    max_parallel: int = Field(10, ge=1, le=1000, description="Children of a for_each at once.")
    tolerated_failures: Share = Field(
        0, description="Failed children a for_each tolerates: a count, or a share like '10%'."
    )
    min_successful: Share | None = Field(
        None,
        description="Children of a for_each that must succeed, a count or a share like '80%': "
        "it succeeds as soon as they have (the others are skipped), and fails as soon as they "
        "no longer can.",
    )
    input: Any = Field(None, description="The step's input; ${...} expressions are evaluated.")
    retry: Retry | None = None
    timeout: Duration | None = Field(None, description="Limit for one attempt.")
    concurrency: Concurrency | None = Field(
        None,
        description="At most `limit` attempts of this step per key at once, across all runs; "
        "the others wait for a slot in start order. The key reads only the run's input.",
    )
    output_path: str | None = Field(
        None, description="Expression over the result (as `$`) that becomes the step's output."
    )
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None

    @field_validator("depends_on", mode="before")
    @classmethod
    def _one_or_many(cls, value: Any) -> Any:
        return [value] if isinstance(value, str) else value

    @property
    def undo(self) -> Compensation | None:
        """The step's compensation (``compensate: RefundFunction`` is its function alone)."""
        if isinstance(self.compensate, str):
            return Compensation(function=self.compensate)
        return self.compensate

    def tolerated(self, total: int) -> int:
        """Failed children a for_each of ``total`` items tolerates before it fails."""
        explicit = "tolerated_failures" in self.model_fields_set or self.min_successful is None
        limit = count_of(self.tolerated_failures, total) if explicit else total
        if self.min_successful is not None:
            limit = min(limit, total - min(total, count_of(self.min_successful, total)))
        return limit

    def needed(self, total: int) -> int | None:
        """Successful children after which a for_each of ``total`` items succeeds early."""
        if self.min_successful is None:
            return None
        return min(total, count_of(self.min_successful, total))


class TaskStep(StepBase):
    """Runs a Lambda function: a logical id in template.yaml or a function ARN."""

    type: Literal["task"] = "task"
    function: str = Field(description="Logical id in template.yaml, function name or ARN.")
    heartbeat: Duration | None = Field(
        None,
        description="The function calls ctx.heartbeat() at least this often, or the attempt "
        "fails with HeartbeatTimedOut (retried as the retry policy says).",
    )


class ConditionStep(StepBase):
    """Evaluates an expression and records its boolean; dependents branch on it with ``when``."""

    type: Literal["condition"]
    condition: str | bool = Field(description="Expression; its truth is the step's output.")


class Group(_Model):
    """People named by a group of the groups file (or parameter) the team keeps: resolved when
    the wait opens, and recorded on the step."""

    group: str = Field(min_length=1, description="The group's name in the groups file.")


Person = str | Group
"""Who an approval or an input step asks: an e-mail, or ``{group: name}``."""


def _people(value: Any) -> Any:
    # ``approvers: {group: finance}`` is a list of one group.
    return [value] if isinstance(value, dict) else value


People = Annotated[list[Person], BeforeValidator(_people)]


def named_people(people: list[Person]) -> list[str]:
    """The people named directly (not through a group)."""
    return [p for p in people if isinstance(p, str)]


def group_names(people: list[Person]) -> list[str]:
    """The groups named, in order."""
    return [p.group for p in people if isinstance(p, Group)]


class Escalation(_Model):
    """One step of an approval's escalation: after a while, new approvers or a decision."""

    after: Duration = Field(description="Measured from when the wait opened.")
    to: People = Field(
        default_factory=list,
        description="New approvers (e-mails or {group: name}): they get links of their own.",
    )
    action: Literal["approve", "reject", "fail"] | None = Field(
        None, description="Decide instead: approve, reject (see on_reject) or fail."
    )

    @model_validator(mode="after")
    def _one_of(self) -> Escalation:
        if bool(self.to) == (self.action is not None):
            raise ValueError("an escalation needs exactly one of 'to' (people) or 'action'")
        return self


class ApprovalStep(StepBase):
    """Waits for a person to approve or reject through a signed URL."""

    type: Literal["approval"]
    message: str = Field("Approval requested", description="Shown to approvers; may hold ${...}.")
    approvers: People = Field(
        default_factory=list, description="Who may decide: e-mails, or {group: name}."
    )
    quorum: int = Field(1, ge=1, description="Approvals needed; any rejection vetoes.")
    timeout: Duration | None = Field(timedelta(days=7), description="How long the links live.")
    on_timeout: Literal["approve", "reject", "fail"] = "fail"
    on_reject: Literal["fail", "continue"] = Field(
        "fail", description="fail the step, or continue with output {approved: false}."
    )
    remind: Duration | None = Field(
        None, description="Send the links again this often, to who has not decided yet."
    )
    escalate: list[Escalation] = Field(
        default_factory=list,
        description="In order, measured from when the wait opened: new approvers, or a decision.",
    )
    forbid_self_approval: bool = Field(
        False, description="The person who started the run may not decide its approval."
    )

    @model_validator(mode="after")
    def _escalations(self) -> ApprovalStep:
        if self.remind is not None and self.remind <= timedelta(0):
            raise ValueError("remind must be a positive duration, e.g. 4h")
        for earlier, later in zip(self.escalate, self.escalate[1:], strict=False):
            if later.after <= earlier.after:
                raise ValueError(
                    f"escalations go in order: after {later.after} comes before or with "
                    f"after {earlier.after}; list them by their 'after'"
                )
        for escalation in self.escalate:
            if self.timeout is not None and escalation.after >= self.timeout:
                raise ValueError(
                    f"an escalation after {escalation.after} never comes: the approval times "
                    f"out after {self.timeout}; escalate sooner or raise the timeout"
                )
            if escalation.to and not self.approvers:
                raise ValueError(
                    "escalating to people needs named approvers (without them anyone holding "
                    "the link decides): list them in 'approvers'"
                )
        return self

    @model_validator(mode="after")
    def _quorum(self) -> ApprovalStep:
        # A group's size is known when the wait opens (and to `stepwell validate` when the
        # groups file is there), so only people named directly are counted here.
        named = named_people(self.approvers)
        if self.approvers and named == self.approvers and self.quorum > len(named):
            raise ValueError(
                f"quorum {self.quorum} is more than the {len(self.approvers)} approvers named: "
                "lower the quorum or name more approvers"
            )
        if not self.approvers and self.quorum > 1:
            raise ValueError(
                f"quorum {self.quorum} needs named approvers (each gets links of their own, so "
                "the quorum counts people): list them in 'approvers'"
            )
        return self


class InputStep(StepBase):
    """Waits for a person to fill in a form through a signed URL; the answer, checked against
    the form's JSON Schema, is the step's output."""

    type: Literal["input"]
    message: str = Field("Input requested", description="Shown above the form; may hold ${...}.")
    assignees: People = Field(
        default_factory=list,
        description="Who may answer: e-mails, or {group: name}; empty: anyone with the link.",
    )
    form: dict[str, Any] = Field(description="JSON Schema (draft 2020-12) of the answer.")
    timeout: Duration | None = Field(timedelta(days=7), description="How long the links live.")


class DelayStep(StepBase):
    """Waits for a duration, or until a point in time."""

    type: Literal["delay"]
    duration: Duration | None = None
    until: str | None = Field(None, description="ISO 8601 time or an expression giving one.")

    @model_validator(mode="after")
    def _one_of(self) -> DelayStep:
        if (self.duration is None) == (self.until is None):
            raise ValueError("a delay step needs exactly one of 'duration' or 'until'")
        return self


class NotifyStep(StepBase):
    """Puts an event on the EventBridge bus."""

    type: Literal["notify"]
    detail_type: str
    detail: Any = None
    source: str = "stepwell"


class CallbackStep(StepBase):
    """Waits for an external system to call back with a signed token."""

    type: Literal["callback"]
    timeout: Duration | None = Field(timedelta(days=1), description="How long to wait in all.")
    until: str | None = Field(
        None,
        description="Wait until this ISO 8601 time at the latest (or an expression giving one); "
        "the earlier of it and timeout ends the wait.",
    )
    heartbeat: Duration | None = Field(None, description="Fail if no heartbeat within this.")


class Correlation(_Model):
    """Which events belong to the waiting run: a value of the event equal to one of the run."""

    event: str = Field(
        description="A dotted path into the event (detail.order_id): the value the event carries."
    )
    equals: Any = Field(
        description="The run's value, known when the step starts: a constant or a ${...} "
        "expression over input, context and the steps the step depends on."
    )

    @field_validator("event")
    @classmethod
    def _path(cls, value: str) -> str:
        parts = value.split(".")
        if not all(re.fullmatch(r"[A-Za-z0-9_-]+", part) for part in parts) or parts[0] not in (
            "detail",
            "source",
            "detail_type",
            "id",
        ):
            raise ValueError(
                f"{value!r} is not a path into the event: use dotted names under detail, "
                "e.g. detail.order_id"
            )
        return value


class EventPattern(_Model):
    """One kind of event a step waits for."""

    model_config = ConfigDict(
        extra="forbid", frozen=True, populate_by_name=True, serialize_by_alias=True
    )

    source: str = Field(description="The event's EventBridge source.")
    detail_type: str = Field(description="The event's EventBridge detail-type.")
    correlate: Correlation
    where: str | None = Field(
        None,
        description="An extra filter, an expression over `event` and the run's data; an "
        "event for which it is false does not count.",
    )
    schema_: dict[str, Any] | None = Field(
        None,
        alias="schema",
        description="A JSON Schema the event's detail must satisfy (else it does not count).",
    )


class EventStep(StepBase):
    """Waits for an event from the bus that carries the run's correlation value (``event``),
    or for the first of several (``events``)."""

    type: Literal["event"]
    event: EventPattern | None = None
    events: list[EventPattern] | None = Field(
        None,
        min_length=1,
        description="Wait for the first of these instead of one `event`; the output's "
        "`matched` says which (its index).",
    )
    lookback: Duration = Field(
        timedelta(0),
        description="Events that arrived up to this long before the wait opened count too.",
    )
    timeout: Duration | None = Field(timedelta(days=1), description="How long to wait.")
    on_timeout: Literal["fail", "continue"] = Field(
        "fail", description="fail the step (EventTimedOut), or continue with output null."
    )

    @model_validator(mode="after")
    def _one_form(self) -> EventStep:
        if (self.event is None) == (self.events is None):
            raise ValueError(
                "an event step needs exactly one of 'event' (one kind of event) or 'events' "
                "(the first of several)"
            )
        return self

    @property
    def patterns(self) -> list[EventPattern]:
        """The kinds of event it waits for (one, or the first of several)."""
        return [self.event] if self.event is not None else list(self.events or [])

    @property
    def templates(self) -> list[Any]:
        """Its templated values: each correlation's value and filter."""
        return [v for p in self.patterns for v in (p.correlate.equals, p.where)]


class WorkflowStep(StepBase):
    """Starts a run of another workflow and waits for it to end."""

    type: Literal["workflow"]
    workflow: str = Field(description="The child workflow's name.")
    wait: bool = Field(
        True,
        description="false: start the run and go on; the step's output is the run's id and "
        "start time (a run of its own: it is not cancelled with this run, nor awaited).",
    )


SECRET_MARK = "{{secret:%s}}"
"""Placeholder the runner swaps for a secret's value in an http step's rendered fields: the
engine never sees secrets."""


class HttpStep(StepBase):
    """Calls an HTTP endpoint; status, headers and body (JSON parsed) become the output."""

    type: Literal["http"]
    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE", "HEAD"] = "GET"
    url: str
    headers: dict[str, str] = Field(default_factory=dict)
    body: Any = None
    request_timeout: Duration = Field(timedelta(seconds=10), description="Limit per request.")
    secrets: dict[str, str] = Field(
        default_factory=dict,
        description="Name -> secret id; use as ${secrets.NAME} in url, headers or body.",
    )


class AgentStep(StepBase):
    """Calls a model on Amazon Bedrock (Converse) with a prompt."""

    type: Literal["agent"]
    model: str
    prompt: str
    system: str | None = None
    max_tokens: int = Field(1024, ge=1, le=200_000)
    budget_usd: float | None = Field(None, gt=0, description="Fail when a call would cost more.")


class ShellStep(StepBase):
    """Runs a command in the runner function (no shell: a list of arguments, or a string split
    into arguments like a shell would, before its ${...} are rendered, so each renders into one
    argument); exit code, stdout and stderr become the output."""

    type: Literal["shell"]
    command: str | list[str] = Field(
        description="A list of arguments, or a command line split like a shell splits words "
        "(quotes, backslashes; no variables, globs or pipes). A ${...} never adds arguments."
    )
    timeout: Duration | None = Field(timedelta(minutes=1), description="Limit for the command.")

    @field_validator("command")
    @classmethod
    def _command(cls, value: str | list[str]) -> str | list[str]:
        words = split_words(value) if isinstance(value, str) else value
        if not words:
            raise ValueError("the command is empty: name a program, e.g. [echo, hello]")
        return value


class CodeStep(StepBase):
    """The step of a code-first run itself: each attempt replays the workflow function. Made by
    the engine, never written in a definition."""

    type: Literal["code"] = "code"


class AwsStep(StepBase):
    """Calls an AWS API with boto3 in the runner function (Step Functions' AWS SDK
    integration): the response, in PascalCase, becomes the output."""

    type: Literal["aws"]
    service: str = Field(description="The service, as boto3 or Step Functions names it (s3).")
    action: str = Field(description="The API action, in camelCase (listObjectsV2).")
    parameters: Any = Field(None, description="The action's parameters, in PascalCase.")
    integration: Literal["sdk", "optimized"] = Field(
        "sdk",
        description="Step Functions' shape of the result and errors: sdk (its AWS SDK "
        "integration) or optimized (its optimized integration of the call).",
    )
    role: str | None = Field(
        None,
        description="The IAM role (an ARN, or an expression giving one) the call runs with: "
        "the runner assumes it (Step Functions' Credentials); by default the workflow's role.",
        exclude_if=lambda value: value is None,
    )

    @model_validator(mode="after")
    def _call(self) -> AwsStep:
        from stepwell.definition.services import OPTIMIZED, optimized, parameter_names

        parameter_names(self.service, self.action, self.integration)
        if self.integration == "optimized" and not optimized(self.service, self.action):
            runs = ", ".join(sorted(OPTIMIZED))
            raise ValueError(
                f"{self.service}:{self.action} is no optimized integration Stepwell runs (of "
                f"{runs}; docs/asl.md lists their actions): use integration: sdk"
            )
        return self


Step = Annotated[
    TaskStep
    | ConditionStep
    | ApprovalStep
    | InputStep
    | DelayStep
    | NotifyStep
    | CallbackStep
    | WorkflowStep
    | HttpStep
    | AgentStep
    | ShellStep
    | AwsStep
    | EventStep,
    Field(discriminator="type"),
]

STEP_TYPES = (
    "task",
    "condition",
    "approval",
    "input",
    "delay",
    "notify",
    "callback",
    "workflow",
    "http",
    "agent",
    "shell",
    "aws",
    "event",
)
TEMPLATE_FIELDS = (
    "input",
    "when",
    "for_each",
    "condition",
    "message",
    "detail_type",
    "detail",
    "url",
    "headers",
    "body",
    "prompt",
    "system",
    "until",
    "command",
    "parameters",
)
"""Step fields whose ``${...}`` expressions the engine evaluates over the run's data."""

DISPATCHED_TYPES = frozenset({"task", "http", "notify", "agent", "shell", "aws"})
"""Step types whose attempts run as a Lambda invocation (the runner or the user's function)."""


AllowHost = Annotated[
    str,
    AfterValidator(allow_entry),
    WithJsonSchema(
        {
            "type": "string",
            "description": "A hostname (api.internal.example.com), its subdomains "
            "(*.internal.example.com), an address or a CIDR (10.0.0.0/8, fd00::/8).",
        }
    ),
]


def _digest(value: Any, length: int) -> str:
    body = json.dumps(value, sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()[:length]


class FlowControl(_Model):
    """Flow control per key: runs of one key share a limit, runs of different keys do not."""

    key: str = Field(
        "",
        max_length=1000,
        description="An expression over the input (e.g. ${input.customer}); empty: one key "
        "for the whole workflow.",
    )

    def problems(self) -> Iterator[tuple[str, str]]:
        """What pydantic cannot check: ``(field, message)`` each."""
        return iter(())


class Windowed(FlowControl):
    """Flow control over time per key: it counts starts, or waits for quiet, over ``period``."""

    period: Duration = Field(
        description="A throttle's window, in which it counts starts; a debounce's quiet time, "
        "after the last start, before the run starts."
    )
    example: ClassVar[str]
    """A period such a control is often given, for a message's fix."""

    def problems(self) -> Iterator[tuple[str, str]]:
        if self.period <= timedelta(0):
            yield "period", f"period must be longer than 0s, e.g. period: {self.example}"


class Concurrency(FlowControl):
    """At most ``limit`` runs of the workflow per key hold a slot at once; the others wait
    ``queued``, by priority then in start order."""

    limit: int = Field(ge=1, le=1000, description="Runs per key at once.")


class Singleton(FlowControl):
    """At most one run of the workflow per key at once: a start while one runs is skipped
    (``skip``), or cancels the running one and every older start still waiting
    (``cancel_previous``)."""

    mode: Literal["skip", "cancel_previous"] = Field(
        description="skip: the new run ends cancelled (Skipped) while one runs; "
        "cancel_previous: the running one is cancelled and the new one starts."
    )


class Throttle(Windowed):
    """At most ``limit`` runs of the workflow per key start within any ``period``; the others
    wait ``queued`` (by priority, then in start order) and start as the window allows."""

    example = "1m"
    limit: int = Field(ge=1, le=100, description="Starts per key within any period.")


class Debounce(Windowed):
    """Starts of one key close together make one run: it starts ``period`` after the last of
    them, with the last one's input."""

    example = "30s"


class EmailChannel(_Model):
    """A workflow's own e-mail to each person (``${...}`` over the notification: ``message``,
    ``workflow``, ``run_id``, ``step``, ``reason``, ``person``, ``expires_at`` and the person's
    ``approve_url``/``reject_url`` or ``form_url``); unset parts keep Stepwell's."""

    subject: str | None = Field(None, max_length=1000, description="The subject line.")
    text: str | None = Field(None, max_length=4000, description="The plain-text body.")


class SlackChannel(_Model):
    """A Slack incoming webhook the notifications go to (buttons that open the signed links)."""

    webhook: str = Field(
        min_length=1,
        max_length=512,
        pattern=r"^[A-Za-z0-9/_+=.@-]+$",
        description="The secret (Secrets Manager, named after the engine's stack: "
        "<stack>/...) holding the webhook's URL; never the URL itself.",
    )

    @field_validator("webhook", mode="before")
    @classmethod
    def _not_a_url(cls, value: Any) -> Any:
        if isinstance(value, str) and "://" in value:
            raise ValueError(
                "a webhook's URL is a secret: put it in Secrets Manager (named <stack>/...) "
                "and give the secret's name here"
            )
        return value


class Notify(_Model):
    """How the people an approval or input step asks are told (Notifications): each channel
    on (the stack's setting), off, or the workflow's own."""

    email: bool | EmailChannel = Field(
        True,
        description="true: e-mail each person through SES when the stack names a sender "
        "(NotifyEmailFrom); false: no e-mail; {subject, text}: this workflow's own e-mail.",
    )
    slack: bool | SlackChannel = Field(
        True,
        description="true: the stack's webhook (NotifySlackWebhookSecret), if any; false: no "
        "Slack; {webhook: SECRET}: this workflow's own.",
    )


class Workflow(_Model):
    """A workflow definition: a DAG of steps."""

    name: str
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    output: Any = Field(
        None, description="The run's output; by default the outputs of the steps nobody depends on."
    )
    context: dict[str, Any] = Field(default_factory=dict, description="Constants for expressions.")
    timeout: Duration | None = None
    triggers: Triggers = Field(default_factory=Triggers)
    allow_hosts: list[AllowHost] = Field(
        default_factory=list,
        description="Hosts and networks this workflow's http steps may reach although they are "
        "not public (loopback, private, link-local ...): its internal services.",
        exclude_if=lambda value: not value,
    )
    steps: dict[StepId, Step]
    cancel_on: list[EventPattern] = Field(
        default_factory=list,
        description="Events that cancel the run: one that carries the run's correlation value "
        "(computed from its input and context as it starts) cancels it as POST "
        "/runs/{id}/cancel would; an ended run is left alone.",
        exclude_if=lambda value: not value,
    )
    code: str | None = Field(
        None,
        description="A code-first workflow's function, as FILE:FUNCTION (set by @workflow, "
        "not written in YAML).",
        exclude_if=lambda value: value is None,
    )
    code_version: str | None = Field(
        None,
        description="The declared version of a code-first workflow, else a hash of its source.",
        exclude_if=lambda value: value is None,
    )
    replay_timeout: Duration | None = Field(
        None,
        description="Limit for one replay of a code-first workflow.",
        exclude_if=lambda value: value is None,
    )
    functions: dict[str, str] = Field(
        default_factory=dict,
        description="The Lambda functions the steps name, by the name a step gives (a logical "
        "id) -> the function's ARN; set when the workflow is published, not written in YAML.",
        exclude_if=lambda value: not value,
    )
    runner: str | None = Field(
        None,
        description="The function (a version's ARN) that replays a code-first workflow: the one "
        "whose package holds its code; set when the workflow is published.",
        exclude_if=lambda value: value is None,
    )
    example_input: Any = Field(
        None,
        description="An input to try the workflow with (examples/<name>.json beside its file), "
        "the dashboard's start form begins with it; set when the workflow is published.",
        exclude_if=lambda value: value is None,
    )
    concurrency: Concurrency | None = Field(
        None,
        description="At most `limit` runs per key at once; the rest wait queued (Flow control).",
        exclude_if=lambda value: value is None,
    )
    singleton: Singleton | None = Field(
        None,
        description="One run per key at once: a new start is skipped or cancels the previous "
        "(Flow control).",
        exclude_if=lambda value: value is None,
    )
    throttle: Throttle | None = Field(
        None,
        description="At most `limit` starts per key within any `period`; the rest wait queued "
        "(Flow control).",
        exclude_if=lambda value: value is None,
    )
    debounce: Debounce | None = Field(
        None,
        description="Starts of one key close together make one run, `period` after the last, "
        "with its input (Flow control).",
        exclude_if=lambda value: value is None,
    )
    priority: int | str | None = Field(
        None,
        description="A queued run's priority, higher first: an integer, or an expression over "
        "the input (default 0; the start request may set it).",
        exclude_if=lambda value: value is None,
    )
    notify: Notify | None = Field(
        None,
        description="How the people its approval and input steps ask are told (e-mail, "
        "Slack); None: as the stack says.",
        exclude_if=lambda value: value is None,
    )
    machine_graph: dict[str, list[dict[str, Any]]] | None = Field(
        None,
        description="A Step Functions machine's states and transitions ({nodes, edges}), for "
        "the dashboard to draw (the engine does not hold the machine's file); set when the "
        "machine is loaded, not written by hand.",
        exclude_if=lambda value: value is None,
    )
    role: str | None = Field(
        None,
        description="The IAM role (an ARN) its aws steps run with, as Step Functions' RoleArn: "
        "the runner assumes it for the run's service calls, so the engine's own role need not "
        "reach every service a team uses.",
        exclude_if=lambda value: value is None,
    )

    @field_validator("name")
    @classmethod
    def _name(cls, value: str) -> str:
        if not WORKFLOW_NAME.match(value):
            slug = re.sub(r"[^a-z0-9]+", "-", value.lower()).strip("-")[:64] or "my-workflow"
            raise ValueError(
                f"{value!r} is not a workflow name: use lower-case letters, digits and '-' "
                f"(e.g. {slug!r})"
            )
        return value

    @field_validator("steps", mode="before")
    @classmethod
    def _default_type(cls, value: Any) -> Any:
        if isinstance(value, dict):
            return {
                key: (
                    {"type": "task", **step}
                    if isinstance(step, dict) and "type" not in step
                    else step
                )
                for key, step in value.items()
            }
        return value

    @field_validator("role")
    @classmethod
    def _role(cls, value: str | None) -> str | None:
        if value is not None and not ROLE_ARN.match(value):
            raise ValueError(
                f"role {value!r} is not an IAM role's ARN: write "
                "arn:aws:iam::123456789012:role/NAME"
            )
        return value

    @model_validator(mode="after")
    def _some_steps(self) -> Workflow:
        if not self.steps and self.code is None:
            raise ValueError("a workflow needs at least one step")
        return self

    @cached_property
    def version(self) -> str:
        """What a run pins: the hash of the definition's content, then, once a publication
        bound it to the functions it runs, a hash of that binding (``<content>-<binding>``:
        the same file published with other functions is another version, and `stepwell
        validate`'s hash of the file is the first part)."""
        content = self.model_dump(mode="json", exclude={"functions", "runner", "machine_graph"})
        version = _digest(content, 16)
        if self.functions or self.runner:
            version += "-" + _digest({"functions": self.functions, "runner": self.runner}, 8)
        return version

    @cached_property
    def upstream(self) -> dict[str, tuple[str, ...]]:
        """Step id -> the steps that must end before it: its ``depends_on``, and the steps
        whose ``catch`` names it in ``then`` (it handles their failure)."""
        out: dict[str, list[str]] = {key: list(step.depends_on) for key, step in self.steps.items()}
        for key, step in self.steps.items():
            for rule in step.catch:
                for handler in rule.then:
                    if handler in out and key not in out[handler]:
                        out[handler].append(key)
        return {key: tuple(value) for key, value in out.items()}

    @cached_property
    def handlers(self) -> dict[str, dict[str, int]]:
        """Step id -> {handler step id: index of the catch rule whose ``then`` names it}."""
        out: dict[str, dict[str, int]] = {}
        for key, step in self.steps.items():
            for index, rule in enumerate(step.catch):
                for handler in rule.then:
                    out.setdefault(key, {}).setdefault(handler, index)
        return out

    @cached_property
    def dependents(self) -> dict[str, tuple[str, ...]]:
        """Step id -> the steps that depend on it (or handle its failure), in definition
        order."""
        out: dict[str, list[str]] = {key: [] for key in self.steps}
        for key in self.steps:
            for dep in self.upstream[key]:
                out.setdefault(dep, []).append(key)
        return {key: tuple(value) for key, value in out.items()}

    @cached_property
    def roots(self) -> tuple[str, ...]:
        """Steps with no dependencies: they are ready when the run starts."""
        return tuple(key for key in self.steps if not self.upstream[key])

    @cached_property
    def sinks(self) -> tuple[str, ...]:
        """Steps nobody depends on: their outputs form the default run output."""
        return tuple(key for key, deps in self.dependents.items() if not deps)


def with_role(workflow: Workflow, role: str) -> Workflow:
    """``workflow`` with its service calls run as ``role``, named beside it where it is
    published (Step Functions' ``RoleArn``); ValueError says why ``role`` cannot be one."""
    try:
        return Workflow.model_validate({**workflow.model_dump(), "role": role})
    except ValidationError as exc:
        raise ValueError(str(exc.errors()[0]["msg"]).removeprefix("Value error, ")) from None
