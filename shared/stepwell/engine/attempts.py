"""Attempts: steps that run somewhere else (task, http, notify, agent, shell Lambdas; child runs;
a code-first run's replays).

An attempt is recorded (status, number, fencing token, lease) in the same commit that emits the
command to run it. Its result counts only while its number is still the step's current attempt.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from stepwell import expressions
from stepwell.definition import retry
from stepwell.definition.models import (
    Step,
    TaskStep,
    Workflow,
    WorkflowStep,
)
from stepwell.engine import step_slots
from stepwell.engine.commands import (
    CancelChildRun,
    DispatchAttempt,
    ScheduleTimer,
    StartChildRun,
)
from stepwell.engine.data import schema_problem
from stepwell.engine.decision import Work, attempt_token
from stepwell.engine.events import (
    Heartbeat,
    LeaseExpired,
    StepFailed,
    StepSucceeded,
)
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState, parse_key

DEFAULT_LEASE = timedelta(minutes=15, seconds=30)
"""An attempt without a timeout is presumed lost after Lambda's longest run plus a margin."""

MAX_LOST_ATTEMPTS = 3
"""Lost attempts re-dispatched before the step fails with AttemptLost."""

NOT_STARTED_DELAY = timedelta(seconds=2)
"""The wait before the new attempt of one whose code never began (doubled each time): what
kept it from starting (a throttled invoke, a function failing to start) may pass."""


def set_timer(work: Work, step: StepState, due: datetime | None) -> None:
    """Give the step its one timer (or clear it)."""
    step.due_at = due
    if due is not None:
        work.emit(ScheduleTimer(work.run.id, step.key, due))


def start(work: Work, step: StepState, spec: Step, *, quiet: bool = False) -> None:
    """Record a new attempt and ask for it to run (``quiet``: with no timeline entry); a step
    with ``concurrency`` first waits for a slot of its key (engine.step_slots)."""
    if step_slots.waits(work, step, spec):
        return
    step.attempt += 1
    step.token = attempt_token(work.run, step.key, step.attempt)
    step.attempt_started_at = work.now
    if isinstance(spec, WorkflowStep):
        step.child_run_id = f"{work.run.id}.{step.key}.{step.attempt}"
        work.set_status(step, "waiting")
        step.waiting_for = "child_run"
        set_timer(work, step, work.now + spec.timeout if spec.timeout else None)
        work.note(
            "child_run_started",
            step,
            f"{spec.workflow} as run {step.child_run_id}",
            child_run_id=step.child_run_id,
        )
        work.emit(
            StartChildRun(
                step.child_run_id,
                spec.workflow,
                step.input,
                work.run.id,
                step.key,
                step.attempt,
                detached=not spec.wait,
            )
        )
        return
    work.set_status(step, "running")
    step.waiting_for = None
    deadline = work.now + (spec.timeout or DEFAULT_LEASE)
    beat = spec.heartbeat if isinstance(spec, TaskStep) else None
    step.heartbeat_due = work.now + beat if beat is not None else None
    if beat is not None:
        set_timer(work, step, min(deadline, work.now + beat) if spec.timeout else work.now + beat)
    elif spec.timeout is not None:
        set_timer(work, step, deadline)
    else:
        # The lease matters only when no result ever comes (the invocation died): the run's
        # watch (a for_each child's: its fan-out's) finds it from ``attempt_started_at``. A due
        # time per attempt would cost two index writes for a rare case.
        step.due_at = None
    command = dispatch(work, step.key, step.attempt, step.input, spec)
    if not quiet:
        function = command.function
        work.note(
            "step_dispatched",
            step,
            f"attempt {step.attempt}" + (f" -> {function}" if function else ""),
        )
    work.emit(command)


def dispatch(work: Work, key: str, attempt: int, input: Any, spec: Step) -> DispatchAttempt:
    """The command that runs attempt ``attempt`` of step ``key``."""
    function = spec.function if isinstance(spec, TaskStep) else None
    allowed = work.definition.allow_hosts
    if spec.type == "http" and allowed and isinstance(input, dict):
        # The run's pinned definition says where its http steps may go, not the step's input.
        input = {**input, "allow_hosts": list(allowed)}
    role = work.definition.role
    if spec.type == "aws" and role and isinstance(input, dict) and not input.get("role"):
        # A call runs with the role of the run's pinned definition unless its step names one.
        input = {**input, "role": role}
    return DispatchAttempt(
        run_id=work.run.id,
        key=key,
        step_id=parse_key(key)[0],
        step_type=spec.type,
        attempt=attempt,
        token=attempt_token(work.run, key, attempt),
        input=input,
        function=function,
        deadline=work.now + spec.timeout if spec.timeout else None,
        workflow=work.run.workflow,
        dispatched_at=work.now,
        target=target_of(work.definition, spec.type, function),
    )


def target_of(definition: Workflow, step_type: str, function: str | None) -> str | None:
    """Where the publication of ``definition`` bound what a step runs (None: not bound)."""
    if step_type == "code":
        return definition.runner
    if function is None:
        return None
    return definition.functions.get(function)


def current(
    work: Work,
    key: str,
    attempt: int,
    what: str,
    token: str | None = None,
    open_statuses: tuple[str, ...] = ("running", "waiting"),
) -> StepState | None:
    """The step if ``attempt`` is its running attempt; else note why the result is ignored."""
    record = work.peek(key)
    if (
        token is not None
        and record is not None
        and record.attempt == attempt
        and token != record.token
    ):
        work.note(
            "result_refused",
            key,
            f"{what} for attempt {attempt} with a wrong token",
            attempt=attempt,
        )
        return None
    if record is None:
        work.note("result_ignored", key, f"{what} for a step that never started", attempt=attempt)
        return None
    if record.is_fanout:
        work.note(
            "result_ignored",
            key,
            f"{what} for a for_each step: its items report, not it",
            attempt=attempt,
        )
        return None
    if record.attempt != attempt:
        work.note(
            "stale_result_ignored",
            key,
            f"{what} from attempt {attempt}; attempt {record.attempt} is current",
            attempt=attempt,
        )
        return None
    if record.status not in open_statuses or work.run.terminal:
        work.note(
            "duplicate_ignored",
            key,
            f"{what} for attempt {attempt}; step is {record.status}",
            attempt=attempt,
        )
        return None
    return work.step(key)


def on_succeeded(work: Work, event: StepSucceeded) -> None:
    """An attempt returned: shape and check its output, then succeed."""
    step = current(work, event.key, event.attempt, "result", event.token, ("running",))
    if step is None:
        return
    finish_with_output(work, step, event.output, event.usage)


def finish_with_output(work: Work, step: StepState, output: Any, usage: Any = None) -> None:
    """Apply output_path and output_schema, then mark the step succeeded."""
    spec = work.spec(step.key)
    if spec.output_path is not None:
        try:
            output = expressions.evaluate(
                spec.output_path.removeprefix("${").removesuffix("}"), output, work.now
            )
        except expressions.ExpressionError as exc:
            work.add_usage(step, usage)
            fail_step(work, step, "ExpressionError", f"step '{step.key}' output_path: {exc}")
            return
    problem = schema_problem(spec.output_schema, output)
    if problem:
        fail_step(work, step, "OutputSchemaError", f"step '{step.key}' output: {problem}")
        return
    succeed(work, step, output, usage)


def attempt_failed(
    work: Work,
    step: StepState,
    error_type: str,
    message: str,
    retryable: bool = True,
    trace: dict[str, Any] | None = None,
) -> None:
    """The current attempt failed: retry with backoff when the policy allows, else fail
    (``trace``, the failure's requestId and stackTrace, kept on the step's error)."""
    spec = work.spec(step.key)
    seed = f"{work.run.id}:{step.key}:{step.attempt}"
    # Lost attempts were the platform's failures, not the step's: they do not use up retries.
    counted = step.attempt - step.lost_attempts - step.retry_base
    choice = retry.decide(spec.retry, counted, error_type, seed)
    if not (retryable and choice.retry):
        fail_step(work, step, error_type, message, **(trace or {}))
        return
    step_slots.let_go(work, step)  # the next attempt waits for a slot again
    step.error = {"type": error_type, "message": message}
    work.note(
        "step_retrying",
        step,
        f"{error_type}: {message}; {choice.reason} in {choice.delay.total_seconds():.3g}s",
        error=error_type,
        delay_s=round(choice.delay.total_seconds(), 3),
    )
    if choice.delay.total_seconds() <= 0:
        start(work, step, spec)
        return
    work.set_status(step, "retrying")
    step.waiting_for = "retry"
    set_timer(work, step, work.now + choice.delay)


def on_failed(work: Work, event: StepFailed) -> None:
    """An attempt raised: retry or fail. One whose code never began is lost, not failed."""
    step = current(work, event.key, event.attempt, "failure", event.token, ("running",))
    if step is None:
        return
    work.add_usage(step, event.usage)
    if not event.started:
        delay = NOT_STARTED_DELAY * 2**step.lost_attempts
        lost(work, step, f"its code never began ({event.error_type}: {event.message})", delay)
        return
    attempt_failed(work, step, event.error_type, event.message, event.retryable, event.trace)


def lost(work: Work, step: StepState, why: str, delay: timedelta | None = None) -> None:
    """The running attempt did nothing the engine will hear of (its code never began, or no
    result came within its lease): a new, fenced attempt follows (after ``delay``), which the
    retry policy does not count (it is about the step's own failures); past
    MAX_LOST_ATTEMPTS the step fails with AttemptLost."""
    if step.lost_attempts >= MAX_LOST_ATTEMPTS:
        fail_step(work, step, "AttemptLost", f"{step.lost_attempts + 1} attempts were lost: {why}")
        return
    step_slots.let_go(work, step)
    step.lost_attempts += 1
    work.note("attempt_lost", step, f"{why}; dispatching again")
    if delay is None:
        start(work, step, work.spec(step.key))
        return
    work.set_status(step, "retrying")
    step.waiting_for = "retry"
    set_timer(work, step, work.now + delay)


def on_lease_expired(work: Work, event: LeaseExpired) -> None:
    """A child's attempt outlived its lease with no result (found by its fan-out's watch)."""
    record = work.peek(event.key)
    if (
        record is None
        or record.attempt != event.attempt
        or record.status != "running"
        or record.due_at is not None
        or record.attempt_started_at is None
        or record.attempt_started_at + DEFAULT_LEASE > work.now
    ):
        return  # it answered, moved on, or has a timer of its own
    step = work.step(event.key)
    assert step is not None
    on_timer(work, step)


def on_heartbeat(work: Work, event: Heartbeat) -> None:
    """The running attempt is alive: its heartbeat deadline moves on (its timer is re-armed
    when it fires, not on every heartbeat)."""
    step = current(work, event.key, event.attempt, "heartbeat", event.token, ("running",))
    if step is None:
        return
    spec = work.spec(step.key)
    beat = spec.heartbeat if isinstance(spec, TaskStep) else None
    if beat is not None:
        step.heartbeat_due = work.now + beat


def _heartbeat_timer(work: Work, step: StepState, spec: Step) -> bool:
    """A heartbeat step's timer: fail a silent attempt, or re-arm for a live one (True when
    that was all the timer meant)."""
    if not isinstance(spec, TaskStep) or spec.heartbeat is None or step.heartbeat_due is None:
        return False
    started = step.attempt_started_at or work.now
    deadline = started + spec.timeout if spec.timeout is not None else None
    if deadline is not None and deadline <= work.now:
        return False  # the attempt's own timeout: handled as a timeout
    if step.heartbeat_due <= work.now:
        step.heartbeat_due = None
        attempt_failed(
            work,
            step,
            "HeartbeatTimedOut",
            f"attempt {step.attempt} sent no heartbeat for {spec.heartbeat.total_seconds():g}s",
        )
        return True
    due = step.heartbeat_due if deadline is None else min(deadline, step.heartbeat_due)
    set_timer(work, step, due)  # alive: look again at the next heartbeat deadline
    return True


def on_timer(work: Work, step: StepState) -> None:
    """The step's timer came due while an attempt ran or a retry waited."""
    if step.status == "retrying":
        start(work, step, work.spec(step.key))
    elif step.status == "running":
        spec = work.spec(step.key)
        if _heartbeat_timer(work, step, spec):
            return
        if spec.timeout is None:
            # No result within Lambda's longest run: the attempt was lost (its invocation died
            # before it could report, or a process died before dispatching it).
            lost(work, step, f"no result within {DEFAULT_LEASE}")
            return
        attempt_failed(
            work,
            step,
            "StepTimedOut",
            f"attempt {step.attempt} did not finish within {spec.timeout.total_seconds():g}s",
        )
    elif step.waiting_for == "child_run":
        if step.child_run_id:
            work.emit(CancelChildRun(step.child_run_id))
        attempt_failed(work, step, "StepTimedOut", f"child run {step.child_run_id} timed out")
