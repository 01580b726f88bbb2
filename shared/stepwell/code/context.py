# Over 500 lines by design: Context is the whole durable API a workflow sees, a method each.
"""The Context a code-first workflow's function receives: every durable thing it can do.

    @workflow(name="release")
    def release(ctx: Context, input: dict) -> dict:
        build = ctx.task("build", function="BuildFunction", input=input)
        ctx.parallel("checks", [lambda c: c.task("lint", function="Lint", input=build), ...])
        if not ctx.approval("go", message="Ship it?", approvers=["lead@example.com"]).approved:
            return {"shipped": False}
        ...

Each call is a step with a name (unique in its scope; a repeated name gets ``#2``, ``#3`` ...).
Issued steps (task, for_each, http, agent, notify, shell, sleep, approval, callback, child
workflow) are run by the engine: the function suspends at a step until it has ended, and later
replays return its stored result. Inline steps (``ctx.step``, ``ctx.operation``, ``ctx.now``)
run in the replay itself and their results are recorded. See docs/code-first.md.
"""

from __future__ import annotations

import hashlib
import json
import random as _random
import re
import shlex
import time
import uuid as _uuid
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal, NoReturn, Protocol, TypeVar, cast

from stepwell.code import foreach
from stepwell.code import jobs as job_wait
from stepwell.code.callbacks import Callback, open_callback
from stepwell.code.errors import (
    ContextError,
    ContinueAsNew,
    MapFailed,
    ParallelFailed,
    ReplayMismatch,
    StepFailed,
    Suspend,
)
from stepwell.code.events import event_pattern, event_spec
from stepwell.code.fanouts import Completion, fan_out
from stepwell.code.logger import ReplayLogger
from stepwell.code.people import People, escalations, form_of, people_of
from stepwell.code.polls import poll
from stepwell.code.protocol import FOR_EACH, POLL, Checkpoint, Issue, Recorded, RunInfo, Yield
from stepwell.code.replay import Links, Replay, Services, describe_scope, error_of, to_json
from stepwell.code.saga import Saga
from stepwell.code.specs import (
    Duration,
    RetryPolicy,
    check_name,
    check_spec,
    concurrency_spec,
    duration,
    duration_text,
    inline_policy,
    put_duration,
    put_retry,
    seconds,
)
from stepwell.definition import retry as retries
from stepwell.definition.jobs import JOBS
from stepwell.definition.jobs import job as job_of
from stepwell.definition.models import SECRET_MARK, Retry

__all__ = [
    "INLINE_RETRY_BUDGET",
    "Approval",
    "Context",
    "ContextError",
    "MapFailed",
    "Operation",
    "ParallelFailed",
    "ReplayLogger",
    "StepFailed",
]

T = TypeVar("T")
Item = TypeVar("Item")

INLINE_RETRY_BUDGET = 30.0
"""Seconds an inline step may spend waiting between its retries in one replay, in all: a wait
that would go past it is cut short (the remaining attempts follow without a wait)."""

_SECRET_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
_PLACEHOLDER = re.compile(re.escape(SECRET_MARK).replace("%s", "([^{}]+)"))


class Operation(Protocol):
    """A user-defined kind of inline step, run by ``ctx.operation(name, op)``: the replay
    calls ``op.execute()`` once and records its result under ``op.kind``."""

    @property
    def kind(self) -> str:
        """The operation's own kind, kept on its record (``"feature-flag"``, ``"lock"`` ...)."""
        ...

    def execute(self) -> Any:
        """Do the work; return a JSON value."""
        ...


@dataclass(frozen=True)
class Approval:
    """The outcome of ``ctx.approval``: a rejection does not raise, the code decides."""

    approved: bool
    decision: Literal["approved", "rejected"]
    decisions: list[dict[str, Any]] = field(default_factory=list)
    """Each decision in order: ``{"approver", "decision", "comment", "at"}``."""
    approver: str | None = None
    """Who gave the deciding decision (None when the approval timed out into a decision)."""
    comment: str | None = None
    """The deciding decision's comment."""
    timed_out: bool = False
    """True when nobody decided in time and ``on_timeout`` approved or rejected."""

    @classmethod
    def from_output(cls, output: Any) -> Approval:
        """Build it from an approval step's output (``{"approved", "decisions", "timed_out"}``)."""
        data = output if isinstance(output, Mapping) else {}
        approved = bool(data.get("approved"))
        decisions = [dict(d) for d in data.get("decisions") or [] if isinstance(d, Mapping)]
        timed_out = bool(data.get("timed_out"))
        last = decisions[-1] if decisions and not timed_out else {}
        return cls(
            approved=approved,
            decision="approved" if approved else "rejected",
            decisions=decisions,
            approver=last.get("approver"),
            comment=last.get("comment"),
            timed_out=timed_out,
        )


class Context:
    """What a workflow function does durably. One is made per replay (and one per parallel
    branch or map item); the workflow's code never builds one itself."""

    def __init__(
        self,
        state: Replay,
        scope: str = "",
        *,
        replaying_all: bool = False,
        last: list[str] | None = None,
    ) -> None:
        self._state = state
        self._scope = scope
        self._replaying_all = replaying_all
        """True inside a fan-out the code had already gone past: all of it is replayed."""
        self._last: list[str] = list(last or [])
        """The keys of the step(s) reached just before the next one (its ``after``)."""
        self._positions = 0
        self._occurrences: dict[str, int] = {}
        self._uuids = 0
        self._randoms = 0
        self._logger = ReplayLogger(state.logger, lambda: self.is_replaying)

    def branch(self, scope: str, *, replaying_all: bool, last: list[str]) -> Context:
        """The context of a parallel branch or map item, in ``scope`` (fan-outs make them)."""
        return Context(self._state, scope, replaying_all=replaying_all, last=last)

    # -- about the run ----------------------------------------------------------------------

    @property
    def run_id(self) -> str:
        """The run's id."""
        return self._state.info.run_id

    @property
    def workflow_name(self) -> str:
        """The workflow's name."""
        return self._state.info.workflow

    @property
    def replay(self) -> int:
        """This replay's number (1 for the function's first run)."""
        return self._state.info.replay

    @property
    def started_at(self) -> datetime | None:
        """When the run started (``ctx.now() - ctx.started_at`` is how long it has run)."""
        text = self._state.info.started_at
        return datetime.fromisoformat(text) if text else None

    @property
    def cost_usd(self) -> float:
        """Model cost of the run so far, as of this replay (read it in ``ctx.step`` to branch
        on it: it grows between replays)."""
        return self._state.info.cost_usd

    @property
    def input_tokens(self) -> int:
        """Model input tokens of the run so far, as of this replay."""
        return self._state.info.input_tokens

    @property
    def output_tokens(self) -> int:
        """Model output tokens of the run so far, as of this replay."""
        return self._state.info.output_tokens

    @property
    def scope(self) -> str:
        """The prefix of this Context's step keys (``""``, ``checks.0.`` ...)."""
        return self._scope

    @property
    def is_replaying(self) -> bool:
        """True while the code re-runs what an earlier replay already ran (or a suspension
        leaves it)."""
        state = self._state
        return bool(state.suspensions) or self._replaying_all or state.unvisited(self._scope) > 0

    @property
    def logger(self) -> ReplayLogger:
        """A logger that stays quiet while the code is replayed."""
        return self._logger

    # -- steps the engine runs --------------------------------------------------------------

    def task(
        self,
        name: str,
        function: str,
        input: Any = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
        heartbeat: Duration | None = None,
        concurrency: tuple[str, int] | None = None,
    ) -> Any:
        """Invoke a Lambda function (logical id in template.yaml, name or ARN) with ``input``;
        return its output. Raises StepFailed once it failed after its retries. With
        ``heartbeat``, the function calls ``ctx.heartbeat()`` at least that often, or the
        attempt fails with HeartbeatTimedOut. With ``concurrency=(key, limit)``, at most
        ``limit`` attempts of this step per ``key`` run at once across all runs."""
        self._enter("task", name)
        if not isinstance(function, str) or not function:
            raise ValueError(
                f"step {name!r}: function must name a Lambda function (a logical id in "
                f"template.yaml, a function name or an ARN), not {function!r}"
            )
        spec: dict[str, Any] = {"function": function}
        put_retry(spec, name, retry)
        put_duration(spec, name, "timeout", timeout)
        put_duration(spec, name, "heartbeat", heartbeat)
        if concurrency is not None:
            spec["concurrency"] = concurrency_spec(name, concurrency)
        return self._issued(name, "task", input, spec)

    def http(
        self,
        name: str,
        url: str,
        method: str = "GET",
        headers: Mapping[str, str] | None = None,
        body: Any = None,
        request_timeout: Duration = "10s",
        secrets: Mapping[str, str] | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
    ) -> Any:
        """Make one HTTP request (run by the runner function); return ``{"status", "headers",
        "body"}``. ``secrets`` maps a name to a Secrets Manager id; put ``ctx.secret(NAME)``
        in the url, a header or the body and the runner fills it in (the engine and the
        records never hold the value). Any status succeeds; 5xx, 429 and connection errors
        fail the attempt (retry them with ``retry``)."""
        self._enter("http", name)
        method = method.upper() if isinstance(method, str) else method
        declared = dict(secrets or {})
        request = json.dumps(to_json([url, headers, body], f"the request of step {name!r}"))
        used = set(_PLACEHOLDER.findall(request))
        missing = sorted(used - set(declared))
        if missing:
            raise ValueError(
                f"step {name!r} uses secret {missing[0]!r} without declaring it: pass "
                f"secrets={{{missing[0]!r}: 'the secret id'}} to ctx.http"
            )
        request_timeout_s = seconds(name, "request_timeout", request_timeout)
        spec: dict[str, Any] = {
            "method": method,
            "url": url,
            "headers": dict(headers or {}),
            "request_timeout": duration_text(name, "request_timeout", request_timeout),
            "secrets": declared,
        }
        put_retry(spec, name, retry)
        put_duration(spec, name, "timeout", timeout)
        parameters = {
            "method": method,
            "url": url,
            "headers": dict(headers or {}),
            "body": body,
            "request_timeout_s": request_timeout_s,
            "secrets": declared,
        }
        return self._issued(name, "http", parameters, spec)

    def secret(self, name: str) -> str:
        """The placeholder for secret ``name`` in ``ctx.http``'s url, headers or body."""
        if not isinstance(name, str) or not _SECRET_NAME.match(name):
            raise ValueError(
                f"secret name {name!r}: use letters, digits, '_', '-' or '.' (the key of "
                "ctx.http's secrets, not the secret id)"
            )
        return SECRET_MARK % name

    def notify(
        self, name: str, detail_type: str, detail: Any = None, source: str = "stepwell"
    ) -> Any:
        """Put an event on the event bus (``detail_type``, ``detail``, ``source``)."""
        self._enter("notify", name)
        spec = {"detail_type": detail_type, "source": source}
        parameters = {"detail_type": detail_type, "detail": detail, "source": source}
        return self._issued(name, "notify", parameters, spec)

    def agent(
        self,
        name: str,
        prompt: str,
        model: str,
        system: str | None = None,
        max_tokens: int = 1024,
        budget_usd: float | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
    ) -> Any:
        """Ask a Bedrock model; return its answer. Its tokens and cost count in the run's
        totals (``ctx.cost_usd`` ...); ``budget_usd`` fails the step when a call would cost
        more."""
        self._enter("agent", name)
        spec: dict[str, Any] = {"model": model, "prompt": prompt, "max_tokens": max_tokens}
        if system is not None:
            spec["system"] = system
        if budget_usd is not None:
            spec["budget_usd"] = budget_usd
        put_retry(spec, name, retry)
        put_duration(spec, name, "timeout", timeout)
        parameters = {
            "model": model,
            "prompt": prompt,
            "system": system,
            "max_tokens": max_tokens,
            "budget_usd": budget_usd,
        }
        return self._issued(name, "agent", parameters, spec)

    def shell(self, name: str, command: str | Sequence[str], timeout: Duration = "60s") -> Any:
        """Run a command in the runner function (no shell: a list of arguments, or a string
        split here as a shell splits words); return ``{"exit_code", "stdout", "stderr"}``. Pass
        values (input, results) in a list, where each stays one argument: a string the code
        formats with them is split afterwards. It runs under the runner's limits: 15 minutes at
        most, only /tmp writable, no root, the runner's IAM role."""
        self._enter("shell", name)
        if isinstance(command, str):
            try:
                argv = shlex.split(command)
            except ValueError as exc:
                raise ValueError(
                    f"step {name!r}: the command cannot be split into arguments "
                    f"({str(exc).lower()}): close the quote, or pass a list of arguments"
                ) from None
        elif isinstance(command, Sequence) and all(isinstance(a, str) for a in command):
            argv = list(command)
        else:
            raise TypeError(f"step {name!r}: command must be a string or a list of strings")
        spec = {"command": argv, "timeout": duration_text(name, "timeout", timeout)}
        parameters = {"command": argv, "timeout_s": seconds(name, "timeout", timeout)}
        return self._issued(name, "shell", parameters, spec)

    def aws(
        self,
        name: str,
        service: str,
        action: str,
        parameters: Mapping[str, Any] | None = None,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
        integration: str = "sdk",
        role: str | None = None,
    ) -> Any:
        """Call an AWS API in the runner function, as ``role`` (an IAM role's ARN, assumed;
        by default the workflow's role, else the runner's own): ``service`` as boto3 or
        Step Functions names it (``s3``, ``sfn``), ``action`` in camelCase (``getObject``),
        ``parameters`` in PascalCase; return the response in PascalCase. A service's error
        fails the step as ``Service.CodeException`` (``S3.NoSuchKeyException``).
        ``integration="optimized"`` gives the result and errors of Step Functions' optimized
        integration of the call instead (DynamoDB items, SNS publish, SQS sendMessage)."""
        self._enter("aws", name)
        spec: dict[str, Any] = {"service": service, "action": action}
        if integration != "sdk":
            spec["integration"] = integration
        put_retry(spec, name, retry)
        put_duration(spec, name, "timeout", timeout)
        call = {"service": service, "action": action, "parameters": dict(parameters or {})}
        if integration != "sdk":
            call["integration"] = integration
        if role is not None:
            call["role"] = role
        return self._issued(name, "aws", call, spec)

    def aws_job(
        self,
        name: str,
        service: str,
        action: str,
        parameters: Mapping[str, Any] | None = None,
        *,
        timeout: Duration = "365d",
        retry: RetryPolicy | None = None,
        role: str | None = None,
    ) -> Any:
        """Start a job and wait for its end, as Step Functions' ``.sync`` integrations do:
        Batch ``submitJob``, ECS ``runTask``, Glue ``startJobRun``, Athena
        ``startQueryExecution``, CodeBuild ``startBuild``, EMR ``createCluster``, ``addStep``
        and ``terminateCluster``, SageMaker ``createTrainingJob``, ``createTransformJob`` and
        ``createProcessingJob``, MediaConvert ``createJob``. The start is an aws step (``retry``
        is its policy); the wait is one record, checked 5 s later, then twice as long each
        time up to a minute, no Lambda running meanwhile. The start and every check run as
        ``role`` (by default the workflow's role, as ``ctx.aws``). Returns the job's
        description as the integration gives it; a job that failed raises StepFailed
        ``States.TaskFailed`` (its description as JSON), one still running after ``timeout``
        ``StepTimedOut``."""
        found = job_of(service, action)
        if found is None:
            known = ", ".join(f"{s}:{a}" for s, a in JOBS)
            raise ValueError(
                f"step {name!r}: {service}:{action} starts no job Stepwell waits for ({known})"
            )
        given = dict(parameters or {})
        started = self.aws(
            name, service, action, given, retry=retry, integration="optimized", role=role
        )
        return job_wait.wait(
            name,
            found,
            service,
            given,
            started,
            self._state.services,
            self.wait_for_condition,
            timeout,
            role,
        )

    def workflow(
        self,
        name: str,
        workflow: str,
        input: Any = None,
        timeout: Duration | None = None,
        wait: bool = True,
    ) -> Any:
        """Start a run of workflow ``workflow`` (a child run; cancelled with this run) and
        return its output. Raises StepFailed when the child run fails. ``wait=False`` starts a
        run of its own (not cancelled with this one) and returns ``{"run_id", "started_at"}``
        once it exists."""
        self._enter("workflow", name)
        spec: dict[str, Any] = {"workflow": workflow}
        if not wait:
            spec["wait"] = False
        put_duration(spec, name, "timeout", timeout)
        return self._issued(name, "workflow", input, spec)

    # -- waits ------------------------------------------------------------------------------

    def sleep(self, name: str, duration: Duration) -> None:
        """Wait ``duration`` (no Lambda runs meanwhile: the engine sets a timer)."""
        self._enter("sleep", name)
        spec = {"duration": duration_text(name, "duration", duration)}
        self._issued(name, "delay", None, spec)

    def sleep_until(self, name: str, when: datetime | str) -> None:
        """Wait until ``when`` (a datetime with a time zone, or ISO 8601 text with one)."""
        self._enter("sleep_until", name)
        moment = when
        if isinstance(moment, str):
            try:
                moment = datetime.fromisoformat(moment.strip().replace("Z", "+00:00"))
            except ValueError:
                raise ValueError(
                    f"step {name!r}: {when!r} is not an ISO 8601 time: write it like "
                    "2025-01-31T09:00:00+00:00"
                ) from None
        if not isinstance(moment, datetime) or moment.tzinfo is None:
            raise ValueError(
                f"step {name!r}: sleep_until needs a time with a time zone, not {when!r} (use "
                "datetime(..., tzinfo=UTC) or an ISO 8601 time ending in Z or +00:00)"
            )
        self._issued(name, "delay", None, {"until": moment.isoformat()})

    def approval(
        self,
        name: str,
        message: str = "Approval requested",
        approvers: People = None,
        quorum: int = 1,
        timeout: Duration | None = "7d",
        on_timeout: Literal["approve", "reject", "fail"] = "fail",
        *,
        remind: Duration | None = None,
        escalate: Sequence[Mapping[str, Any]] = (),
        forbid_self_approval: bool = False,
    ) -> Approval:
        """Ask people to approve (signed approve/reject links, as for YAML approvals); return
        the decision. Any rejection decides ``approved=False``; ``quorum`` approvals decide
        ``approved=True``. When ``timeout`` passes, ``on_timeout`` approves, rejects or fails
        the step (StepFailed ``ApprovalTimedOut``). ``approvers`` are e-mails or groups
        (``{"group": "finance"}``, the people of the groups file when the wait opens).
        ``remind`` sends the links again this often to who has not decided; ``escalate`` is
        in order ``{"after": "1d", "to": [people]}`` (new approvers) or ``{"after": "2d",
        "action": "reject"}`` (or approve, or fail: StepFailed ``ApprovalEscalated``);
        ``forbid_self_approval`` refuses the decision of the person who started the run."""
        self._enter("approval", name)
        spec: dict[str, Any] = {
            "message": message,
            "approvers": people_of(approvers),
            "quorum": quorum,
            "timeout": None if timeout is None else duration_text(name, "timeout", timeout),
            "on_timeout": on_timeout,
            "on_reject": "continue",
        }
        # Only what is asked, so a spec recorded before these options existed reads the same.
        if escalate:
            spec["escalate"] = escalations(name, escalate)
        if forbid_self_approval:
            spec["forbid_self_approval"] = True
        put_duration(spec, name, "remind", remind)
        return Approval.from_output(self._issued(name, "approval", None, spec))

    def input(
        self,
        name: str,
        form: Mapping[str, Any],
        assignees: People = None,
        message: str = "Input requested",
        timeout: Duration | None = "7d",
    ) -> Any:
        """Ask people to fill in a form through signed links, as a YAML input step; return the
        answer. ``form`` is the JSON Schema (draft 2020-12) of the answer: the server refuses
        an answer that breaks it (422, every problem listed, the step still waiting), so what
        returns is exactly a valid answer. ``assignees`` are e-mails or groups (None: one link
        for anyone). When ``timeout`` passes: StepFailed ``InputTimedOut``."""
        self._enter("input", name)
        spec: dict[str, Any] = {
            "message": message,
            "assignees": people_of(assignees),
            "form": form_of(name, form),
            "timeout": None if timeout is None else duration_text(name, "timeout", timeout),
        }
        return self._issued(name, "input", None, spec)

    def wait_for_callback(
        self, name: str, timeout: Duration | None = "1d", heartbeat: Duration | None = None
    ) -> Any:
        """Wait for an outside system to call back; return the payload it sends. The engine
        puts ``callback.requested`` (with the signed token and URL) on the event bus when the
        wait opens; a callback that arrives earlier is kept for it. Raises StepFailed on a
        failure callback, ``CallbackTimedOut`` or ``HeartbeatTimedOut``."""
        self._enter("wait_for_callback", name)
        spec: dict[str, Any] = {
            "timeout": None if timeout is None else duration_text(name, "timeout", timeout)
        }
        put_duration(spec, name, "heartbeat", heartbeat)
        return self._issued(name, "callback", None, spec)

    def wait_for_event(
        self,
        name: str,
        source: str | None = None,
        detail_type: str | None = None,
        correlate: Mapping[str, Any] | None = None,
        where: str | None = None,
        schema: Mapping[str, Any] | None = None,
        *,
        events: Sequence[Mapping[str, Any]] | None = None,
        lookback: Duration = "0s",
        timeout: Duration | None = "1d",
        on_timeout: Literal["fail", "continue"] = "fail",
    ) -> Any:
        """Wait for an event from the bus of ``source`` and ``detail_type`` whose value at
        ``correlate["event"]`` (a path such as ``detail.order_id``) equals
        ``correlate["equals"]``, and that passes ``where`` (an expression over ``event``, e.g.
        ``"${event.detail.amount > 0}"``) and ``schema`` (on its detail); return it (``id``,
        ``source``, ``detail_type``, ``time``, ``detail``). Every run waiting on that value
        gets the event; one that came up to ``lookback`` before the wait opened counts; one
        delivered again completes nothing twice. ``events=[{source, detail_type, correlate,
        where?, schema?}, ...]`` waits for the first of several (the event's ``matched`` says
        which). When ``timeout`` passes: StepFailed ``EventTimedOut``, or None with
        ``on_timeout="continue"``."""
        self._enter("wait_for_event", name)
        patterns: dict[str, Any] | Sequence[Mapping[str, Any]] = (
            events
            if events is not None
            else event_pattern(name, source, detail_type, correlate, where, schema)
        )
        spec = event_spec(name, patterns, lookback, timeout, on_timeout)
        return self._issued(name, "event", None, spec)

    def create_callback(
        self, name: str, timeout: Duration = "1d", heartbeat: Duration | None = None
    ) -> Callback:
        """Open a callback wait now and go on: the handle carries its signed ``token`` and
        ``url`` to hand to the system that will answer, and ``handle.result()`` waits for the
        answer later (an answer that comes first is kept). ``timeout`` counts from now."""
        self._enter("create_callback", name)
        key, position, record, after = self._reach(name, "callback", chain=False)
        state = self._state
        if record is None:
            expires = state.now + duration(name, "timeout", timeout)
            # The wait ends at that very time, so the link made here is the engine's too.
            spec: dict[str, Any] = {"timeout": None, "until": expires.isoformat()}
            put_duration(spec, name, "heartbeat", heartbeat)
            check_spec(key, "callback", spec)
            state.issued.append(Issue(key, name, "callback", position, None, spec, after))
        else:
            expires = open_callback(record)
        link = state.links(key, expires) if state.links is not None else {}
        return Callback(self._await, key, link.get("token"), link.get("url"), expires)

    def wait_for_condition(
        self,
        name: str,
        check: Callable[[], Any],
        *,
        done: Callable[[Any], bool] = bool,
        interval: Duration = "5s",
        backoff: float = 1.5,
        max_interval: Duration = "5m",
        timeout: Duration = "1h",
    ) -> Any:
        """Call ``check()`` until ``done(value)`` (by default: the value is truthy), waiting
        ``interval`` after the first check, then ``backoff`` times longer each time, at most
        ``max_interval``; return the value that was done. No Lambda runs between checks, and
        however many checks it takes, it is one record. Raises StepFailed
        ``ConditionTimedOut`` once ``timeout`` (from the first check) has passed, or with the
        exception ``check`` raised."""
        self._enter("wait_for_condition", name)
        if not callable(check) or not callable(done):
            raise TypeError(f"wait_for_condition {name!r}: check and done must be callable")
        if not isinstance(backoff, int | float) or backoff < 1:
            raise ValueError(f"wait_for_condition {name!r}: backoff must be a number >= 1")
        key, position, record, after = self._reach(name, POLL)
        if record is not None and record.ended:
            return _result(record)
        return poll(
            self._state,
            key,
            name,
            position,
            after,
            record,
            check,
            done,
            (
                duration(name, "interval", interval),
                float(backoff),
                duration(name, "max_interval", max_interval),
                duration(name, "timeout", timeout),
            ),
        )

    def _await(self, key: str) -> Any:
        """The result of a step issued earlier without waiting (a callback's handle)."""
        self._state.unwinding()
        record = self._state.records.get(key)
        if record is None or not record.ended or record.status == "cancelled":
            self._state.interrupt()
        if record is None or not record.ended:
            raise self._state.suspend(key)
        return _result(record)

    # -- inline steps -----------------------------------------------------------------------

    def step(
        self,
        name: str,
        fn: Callable[..., T],
        *args: Any,
        retry: RetryPolicy | None = None,
    ) -> T:
        """Run ``fn(*args)`` here, in the replay, and record its result (a JSON value): later
        replays return the record without calling ``fn``. Put anything that is not
        deterministic (clocks, random numbers, reads of the world) in a step. With ``retry``,
        a failure is retried in the same replay (waits: at most INLINE_RETRY_BUDGET seconds
        in all); the last failure is recorded and raised as StepFailed."""
        self._enter("step", name)
        if not callable(fn):
            raise TypeError(f"step {name!r}: {fn!r} is not callable")
        return cast(T, self._inline(name, "step", lambda: fn(*args), retry))

    def operation(self, name: str, op: Operation, retry: RetryPolicy | None = None) -> Any:
        """Run a user-defined operation inline (``op.execute()``), recorded with ``op.kind``."""
        self._enter("operation", name)
        kind = getattr(op, "kind", None)
        execute = getattr(op, "execute", None)
        if not isinstance(kind, str) or not kind or not callable(execute):
            raise TypeError(
                f"step {name!r}: {op!r} is not an operation: give it a 'kind' (a non-empty "
                "string) and an 'execute()' method"
            )
        return self._inline(name, "operation", execute, retry, operation=kind)

    def child(self, name: str, fn: Callable[[Context], T]) -> T:
        """Run ``fn(ctx)`` as a named block of steps with a Context of its own; once it returned,
        its result is recorded on the block, and later replays return that record without
        running ``fn`` again (nor reading its steps). An exception it raises fails the block
        (recorded, raised as StepFailed)."""
        self._enter("child", name)
        if not callable(fn):
            raise TypeError(f"child {name!r}: {fn!r} is not callable")
        state = self._state
        key, position, record, after = self._reach(name, "child")
        if record is not None:
            state.pass_under(f"{key}.0.")  # its steps are the record's: none is read again
            return cast(T, _result(record))
        inner = Context(state, f"{key}.0.", replaying_all=self._replaying_all, last=after)
        state.active = inner
        try:
            value = fn(inner)
        except Exception as exc:
            if isinstance(exc, ContextError):
                raise
            error = error_of(exc)
            state.checkpoints.append(
                Checkpoint(key, name, "child", position, "failed", None, error, None, after)
            )
            raise StepFailed(key, error["type"], error["message"]) from exc
        finally:
            state.active = self
        output = to_json(value, f"the result of child {key!r}")
        state.checkpoints.append(
            Checkpoint(key, name, "child", position, "succeeded", output, None, None, after)
        )
        return cast(T, output)

    def continue_as_new(self, input: Any = None) -> NoReturn:
        """End this run and go on in a new run of the same workflow with ``input`` (linked:
        ``continued_from`` on the new run, ``{"continued_as_new": id}`` as this run's output),
        so a long loop never replays an ever-growing history. Steps still in flight are
        cancelled with this run. Never returns."""
        self._enter("continue_as_new")
        to_json(input, "the input of ctx.continue_as_new")
        raise ContinueAsNew(input)

    def saga(self) -> Saga:
        """Compensations to run, newest first, when the code fails (see stepwell.code.saga)."""
        return Saga(self.task, self.step, self.logger)

    def now(self) -> datetime:
        """The time, recorded the first time the code gets here (later replays return the
        same time). Never read the clock directly in a workflow."""
        self._enter("now")
        key, position, record, after = self._reach("$now", "now", chain=False)
        if record is not None:
            if not record.ended:
                raise self._state.suspend(key)
            return datetime.fromisoformat(str(_result(record)))
        stamp = self._state.now.isoformat()
        self._state.checkpoints.append(
            Checkpoint(key, "$now", "now", position, "succeeded", output=stamp, after=after)
        )
        return datetime.fromisoformat(stamp)

    def uuid(self) -> _uuid.UUID:
        """A UUID that is the same on every replay (derived from the run, scope and call)."""
        self._enter("uuid")
        self._uuids += 1
        digest = self._digest("uuid", self._uuids)
        return _uuid.UUID(bytes=digest[:16], version=4)

    def random(self) -> float:
        """A number in [0, 1) that is the same on every replay."""
        self._enter("random")
        self._randoms += 1
        seed = int.from_bytes(self._digest("random", self._randoms)[:8], "big")
        return _random.Random(seed).random()

    # -- fan-outs ---------------------------------------------------------------------------

    def for_each(
        self,
        name: str,
        function: str,
        items: Sequence[Any],
        max_concurrency: int = 10,
        tolerated_failures: int | str = 0,
        retry: RetryPolicy | None = None,
        timeout: Duration | None = None,
        heartbeat: Duration | None = None,
        batch: bool = False,
    ) -> Any:
        """Invoke ``function`` once per item (its input is the item), as one engine step: a
        YAML ``for_each`` task step, whose children the engine starts, retries and counts, at
        most ``max_concurrency`` (1 to 1000) at once; the replay is woken once, when the fan-out
        is decided, not per item. Returns the outputs in item order (None for a failed child
        while the failures are within ``tolerated_failures``: a count, or a share of the items
        like ``"10%"``); one failure more raises MapFailed (``.results``, ``.errors`` by index).
        ``batch``: return a BatchResult (each item's outcome, a tolerated failure's error
        included) instead of the outputs; past the tolerated failures it raises all the same.
        ``retry``, ``timeout`` and ``heartbeat`` apply to each child, as in ``ctx.task``."""
        self._enter("for_each", name)
        values = foreach.items_of(name, items)
        spec = foreach.spec_of(
            name, function, max_concurrency, tolerated_failures, retry, timeout, heartbeat
        )
        total = len(values)
        tolerated = foreach.tolerated_of(tolerated_failures, total)

        def outputs(record: Recorded) -> Any:
            foreach.raise_failed(record, total, tolerated)
            output = _result(record)
            found = list(output) if isinstance(output, list) else [None] * total  # a dry run
            return foreach.batch_of(record, found) if batch else found

        return self._issued(name, FOR_EACH, values, spec, result=outputs)

    def parallel(
        self,
        name: str,
        branches: Sequence[Callable[[Context], T]],
        fail_fast: bool = True,
        max_concurrency: int | None = None,
        tolerated_failures: int | str = 0,
        min_successful: int | str | None = None,
        batch: bool = False,
    ) -> Any:
        """Run ``branch(ctx)`` for each branch, concurrently (each gets a Context of its own);
        return their results in order. More failed branches than ``tolerated_failures`` (a
        count, or a share like ``"10%"``) raise ParallelFailed: at once with ``fail_fast``
        (steps already started in other branches keep running; no new ones start), otherwise
        once every branch ended. ``min_successful``: return as soon as that many succeeded
        (None for the others). ``batch``: return a BatchResult (each branch's outcome) instead
        of raising. ``max_concurrency``: branches running at once."""
        self._enter("parallel", name)
        jobs = list(branches)
        for branch in jobs:
            if not callable(branch):
                raise TypeError(f"parallel {name!r}: branch {branch!r} is not callable")
        rule = Completion.of(name, len(jobs), tolerated_failures, min_successful, fail_fast, batch)
        return fan_out(self, "parallel", name, jobs, max_concurrency, rule, batch)

    def map(
        self,
        name: str,
        items: Iterable[Item],
        fn: Callable[[Context, Item], T],
        max_concurrency: int | None = None,
        tolerated_failures: int | str = 0,
        min_successful: int | str | None = None,
        batch: bool = False,
    ) -> Any:
        """Run ``fn(ctx, item)`` for each item, concurrently; return the results in item order
        (None for a failed item while the failures are within ``tolerated_failures``: a count,
        or a share of the items like ``"10%"``). One failure more raises MapFailed at once.
        ``min_successful``: return as soon as that many succeeded. ``batch``: return a
        BatchResult (each item's outcome) instead of raising."""
        self._enter("map", name)
        values = list(items)
        if not callable(fn):
            raise TypeError(f"map {name!r}: {fn!r} is not callable")

        def job(item: Item) -> Callable[[Context], T]:
            return lambda ctx: fn(ctx, item)

        rule = Completion.of(name, len(values), tolerated_failures, min_successful, True, batch)
        jobs = [job(item) for item in values]
        return fan_out(self, "map", name, jobs, max_concurrency, rule, batch)

    # -- the machinery ----------------------------------------------------------------------

    def _enter(self, method: str, *name: Any) -> None:
        """Check that the code may call ``ctx.<method>`` now (and its step name, if given)."""
        state = self._state
        state.unwinding()
        if state.finished:
            raise ContextError(
                f"ctx.{method} was called after the workflow function returned: a Context "
                "lives only while its replay runs"
            )
        if state.inside_step is not None:
            raise ContextError(
                f"ctx.{method} was called inside inline step {state.inside_step!r}: an inline "
                "step's function runs once and its result is recorded; make other steps from "
                "the workflow function, before or after ctx.step"
            )
        if state.active is not self:
            running = describe_scope(state.active._scope) if state.active else "nothing"
            raise ContextError(
                f"ctx.{method} was called on the Context of {describe_scope(self._scope)} "
                f"while the code runs {running}: inside a parallel branch or map item use the "
                "ctx its function receives, and only while it runs"
            )
        for given in name:
            check_name(given, method)

    def _key(self, name: str) -> str:
        count = self._occurrences.get(name, 0) + 1
        self._occurrences[name] = count
        return f"{self._scope}{name}" if count == 1 else f"{self._scope}{name}~{count}"

    def _reach(
        self, name: str, kind: str, chain: bool = True
    ) -> tuple[str, int, Recorded | None, list[str]]:
        """Key, position, checked record and ``after`` of the step the code reached."""
        key = self._key(name)
        position = self._positions
        self._positions += 1
        record = self._state.reached(key, kind, self._scope, position)
        after = list(self._last)
        if chain:
            self._last = [key]
        return key, position, record, after

    def _issued(
        self,
        name: str,
        kind: str,
        input: Any,
        spec: dict[str, Any],
        result: Callable[[Recorded], Any] | None = None,
    ) -> Any:
        """A step the engine runs: its stored result (``result(record)``; by default its output
        or its failure raised), or an Issue and a suspension."""
        state = self._state
        key, position, record, after = self._reach(name, kind)
        if record is None or not record.ended or record.status == "cancelled":
            state.interrupt()
        if record is None:
            check_spec(key, kind, spec)
            value = to_json(input, f"the input of step {key!r}")
            state.issued.append(Issue(key, name, kind, position, value, spec, after))
            raise state.suspend(key)
        if not record.ended:
            raise state.suspend(key)
        return (result or _result)(record)

    def _inline(
        self,
        name: str,
        kind: str,
        call: Callable[[], Any],
        retry: RetryPolicy | None,
        operation: str | None = None,
    ) -> Any:
        """A step the replay runs: its stored result, or run it now and checkpoint it."""
        state = self._state
        key, position, record, after = self._reach(name, kind)
        if record is not None:
            if not record.ended:
                raise state.suspend(key)
            return _result(record)
        policy = inline_policy(key, retry)
        state.inside_step = key
        try:
            value, failure = self._attempts(key, call, policy)
        finally:
            state.inside_step = None
        if failure is None:
            output = to_json(value, f"the result of step {key!r}")
            state.checkpoints.append(
                Checkpoint(key, name, kind, position, "succeeded", output, None, operation, after)
            )
            return output
        error = error_of(failure)
        state.checkpoints.append(
            Checkpoint(key, name, kind, position, "failed", None, error, operation, after)
        )
        raise StepFailed(key, error["type"], error["message"]) from failure

    def _attempts(
        self, key: str, call: Callable[[], Any], policy: Retry | None
    ) -> tuple[Any, Exception | None]:
        """Call until it returns or its retries run out: ``(value, None)`` or ``(None, exc)``."""
        state = self._state
        waited = 0.0
        attempt = 0
        while True:
            attempt += 1
            try:
                return call(), None
            except ContextError:
                raise
            except Exception as exc:
                seed = f"{state.info.run_id}/{key}/{attempt}"
                decision = retries.decide(policy, attempt, type(exc).__name__, seed)
                if not decision.retry:
                    return None, exc
                wait = min(decision.delay.total_seconds(), INLINE_RETRY_BUDGET - waited)
                self._logger.warning(
                    "step %r attempt %d failed (%s: %s); retrying in %.1fs",
                    key,
                    attempt,
                    type(exc).__name__,
                    exc,
                    max(wait, 0.0),
                )
                if wait > 0:
                    state.sleep(wait)
                    waited += wait

    def _digest(self, what: str, counter: int) -> bytes:
        text = f"{self._state.info.run_id}\x00{self._scope}\x00{what}\x00{counter}"
        return hashlib.sha256(text.encode()).digest()


# -- helpers -----------------------------------------------------------------------------------


def _result(record: Recorded) -> Any:
    """An ended record's result: its output, or its failure raised as StepFailed."""
    if record.status in ("failed", "cancelled"):
        error = record.error or {}
        default = "StepCancelled" if record.status == "cancelled" else "StepFailed"
        trace: dict[str, Any] = {k: error[k] for k in ("requestId", "stackTrace") if k in error}
        raise StepFailed(
            record.key, str(error.get("type") or default), str(error.get("message") or ""), trace
        )
    return record.output


def replay(
    function: Callable[..., Any],
    input: Any,
    journal: Mapping[str, Recorded],
    info: RunInfo,
    now: datetime,
    *,
    sleep: Callable[[float], None] = time.sleep,
    logger: Any = None,
    links: Links | None = None,
    services: Services | None = None,
) -> Yield:
    """Run ``function(ctx, input)`` once from the top over ``journal``; say what it came to.

    ``now`` is this replay's time (what a first ``ctx.now()`` records); ``sleep`` waits between
    the retries of an inline step; ``logger`` (a ``logging.Logger`` or any object with
    ``debug``/``info``/``warning``/``error``/``exception``/``critical``) receives what the code
    logs through ``ctx.logger`` once it is past the replayed part.
    """
    state = Replay(journal, info, now, sleep=sleep, logger=logger, links=links, services=services)
    ctx = Context(state)
    state.active = ctx
    try:
        output = function(ctx, input)
    except Suspend as suspension:
        state.caught(suspension)
        return state.answer("suspended", None, None)
    except ReplayMismatch:
        return state.answer("failed", None, None)
    except ContinueAsNew as continued:
        return state.answer("continued", continued.input, None)
    except Exception as exc:
        return state.answer("failed", None, error_of(exc))
    finally:
        state.finished = True
        state.active = None
    return state.answer("completed", output, None)
