"""A machine's Task states on Stepwell's runtime: what a ``Resource`` names (a function of the
template, ``lambda:invoke``, ``events:putEvents``, ``states:startExecution``, an AWS SDK
call), and how its
``Retry`` runs (one retrier: the engine's retry policy, on one step record; several: retried
here, each retry a new visit after a ``ctx.sleep`` of its backoff)."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from typing import Any

from stepwell.asl.errors import ERRORS, STEPWELL, MachineFailed, error_of, matches
from stepwell.asl.names import INTEGRATIONS, resource, workflow_name
from stepwell.code.context import Context
from stepwell.code.errors import StepFailed
from stepwell.definition import jobs, services

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
PUT_EVENTS = "arn:aws:states:::events:putEvents"
START_EXECUTION = "arn:aws:states:::states:startExecution"
"""With ``.sync`` (the child's output as a JSON string) or ``.sync:2`` (as JSON), or with
``.waitForTaskToken`` (the answer to the task token it passes the child)."""
TOKEN_SUFFIX = ".waitForTaskToken"
AWS_SDK = "arn:aws:states:::aws-sdk:"
"""``aws-sdk:SERVICE:ACTION``: an aws step, the call made by the runner function."""

_SUBSTITUTION = re.compile(r"^\$\{([A-Za-z][A-Za-z0-9]*?)(?:\.Arn|Arn)?\}$")


def function_of(name: str) -> str:
    """The step function a ``Resource`` or a ``FunctionName`` names. SAM's definition
    substitutions, ``${HelloFunctionArn}`` (or ``${HelloFunction}``), name the template's
    ``HelloFunction``; a logical id, a deployed name or an ARN is taken as it is."""
    found = _SUBSTITUTION.match(name)
    return found.group(1) if found else name


def names_function(resource: str) -> bool:
    """Whether a Task's Resource calls a function and waits for nothing more (a function of
    the template, an ARN, ``lambda:invoke``; not a token, an event or a child run)."""
    waits = resource.endswith(TOKEN_SUFFIX)
    return not waits and not resource.startswith((PUT_EVENTS, START_EXECUTION))


def key_name(state: str) -> str:
    """A state's name as a step name (the characters step keys reserve become ``_``)."""
    return re.sub(r"[.~\[\]/]", "_", state).strip()[:80] or "state"


def engine_retry(retriers: list[dict[str, Any]]) -> dict[str, Any] | None:
    """One retrier as the engine's retry policy (the attempts of one step record, as Step
    Functions' retries are of one state); None when there are several (the interpreter then
    retries, since each may have its own backoff) or none."""
    if len(retriers) != 1:
        return None
    (retrier,) = retriers
    names = [str(n) for n in retrier.get("ErrorEquals") or []]
    if "States.ALL" in names or "States.TaskFailed" in names:
        retry_on = ["*"]
    else:
        retry_on = [STEPWELL.get(n, n) for n in names]
    policy: dict[str, Any] = {
        "max_attempts": int(retrier.get("MaxAttempts", 3)) + 1,
        "interval": f"{float(retrier.get('IntervalSeconds', 1)):g}s",
        "backoff_rate": max(1.0, float(retrier.get("BackoffRate", 2.0))),
        "jitter": "full" if retrier.get("JitterStrategy") == "FULL" else "none",
        "retry_on": retry_on,
    }
    if "States.TaskFailed" in names and "States.ALL" not in names:
        policy["non_retryable"] = ["StepTimedOut"]
    if "MaxDelaySeconds" in retrier:
        policy["max_interval"] = f"{float(retrier['MaxDelaySeconds']):g}s"
    return policy


def with_retries(
    ctx: Context, name: str, retriers: list[dict[str, Any]], attempt: Callable[[int], Any]
) -> Any:
    """``attempt(retries so far)`` until it succeeds or no retrier retries its error: the first
    retrier whose ErrorEquals matches decides, with its own count, interval and backoff."""
    counts = [0] * len(retriers)
    while True:
        try:
            return attempt(sum(counts))
        except (StepFailed, MachineFailed) as failed:
            error = error_of(failed)[0]
            index = next(
                (i for i, r in enumerate(retriers) if matches(r.get("ErrorEquals"), error)),
                None,
            )
            if index is None or counts[index] >= int(retriers[index].get("MaxAttempts", 3)):
                raise
            retrier = retriers[index]
            delay = (
                float(retrier.get("IntervalSeconds", 1))
                * float(retrier.get("BackoffRate", 2.0)) ** counts[index]
            )
            if "MaxDelaySeconds" in retrier:
                delay = min(delay, float(retrier["MaxDelaySeconds"]))
            if retrier.get("JitterStrategy") == "FULL":
                delay *= ctx.random()
            counts[index] += 1
            ctx.sleep(f"{key_name(name)} retry", max(delay, 0.0))


def answer(handle: Any) -> Any:
    """A task token's answer: SendTaskSuccess's output, or SendTaskFailure's error and cause
    as they were sent (a timeout is ``States.Timeout`` / ``States.HeartbeatTimeout``)."""
    try:
        return handle.result()
    except StepFailed as failed:
        raise as_sent(failed) from failed


def as_sent(failed: StepFailed) -> StepFailed | MachineFailed:
    """A failure whose error and cause are as their sender wrote them (a task token's answer,
    a service's error), not a Lambda's; Stepwell's own timeouts keep their names."""
    return (
        failed if failed.error_type in ERRORS else MachineFailed(failed.error_type, failed.message)
    )


def invoke(
    ctx: Context,
    name: str,
    state: dict[str, Any],
    payload: Any,
    retry: dict[str, Any] | None = None,
) -> Any:
    """Run the Task's resource once (with the engine's ``retry`` policy, if given)."""
    step = key_name(name)
    timeout = state.get("TimeoutSeconds")
    # A token's heartbeats are the callback's; a function's are its ctx.heartbeat().
    written = resource(state)
    tokened = written.endswith(TOKEN_SUFFIX)
    heartbeat = None if tokened else state.get("HeartbeatSeconds")
    base = written.removesuffix(TOKEN_SUFFIX)
    role = (state.get("Credentials") or {}).get("RoleArn")
    if base == PUT_EVENTS:
        return put_events(ctx, step, name, payload)
    if base.startswith(INTEGRATIONS) and jobs.synced(*service_call(base)) is not None:
        return wait_for_job(ctx, step, name, base, payload, timeout, role)
    if base.startswith(AWS_SDK) or services.optimized(*service_call(base)):
        service, action = service_call(base)
        _object(name, service, action, payload)
        integration = "sdk" if base.startswith(AWS_SDK) else "optimized"
        try:
            return ctx.aws(step, service, action, payload, retry, timeout, integration, role)
        except StepFailed as failed:
            raise as_sent(failed) from failed
    if base.startswith(START_EXECUTION):
        return start_execution(ctx, step, name, written, payload, timeout)
    if base == LAMBDA_INVOKE:
        function = payload.get("FunctionName") if isinstance(payload, dict) else None
        if not isinstance(function, str):
            raise MachineFailed(
                "States.Runtime", f"Task {name!r}: lambda:invoke needs FunctionName"
            )
        output = ctx.task(
            step,
            function=function_of(function),
            input=payload.get("Payload"),
            retry=retry,
            timeout=timeout,
            heartbeat=heartbeat,
        )
        return invoke_result(output)
    return ctx.task(
        step,
        function=function_of(base),
        input=payload,
        retry=retry,
        timeout=timeout,
        heartbeat=heartbeat,
    )


def wait_for_job(
    ctx: Context, step: str, name: str, base: str, payload: Any, timeout: Any, role: Any
) -> Any:
    """``SERVICE:ACTION.sync`` of a job (``stepwell.definition.jobs``): the call that starts
    it, then its end awaited (``ctx.aws_job``), both as the Task's ``Credentials`` role when it
    names one; a job that failed is ``States.TaskFailed`` with its description as the Cause."""
    service, action = service_call(base)
    _object(name, service, action, payload)
    waited = timeout if timeout is not None else "365d"
    try:
        return ctx.aws_job(
            step, service, action.removesuffix(".sync"), payload, timeout=waited, role=role
        )
    except StepFailed as failed:
        raise as_sent(failed) from failed


def _object(name: str, service: str, action: str, payload: Any) -> None:
    if payload is not None and not isinstance(payload, dict):
        raise MachineFailed(
            "States.Runtime",
            f"Task {name!r}: the parameters of {service}:{action} must be an object",
        )


def service_call(base: str) -> tuple[str, str]:
    """The service and action of ``arn:aws:states:::aws-sdk:SERVICE:ACTION`` or of an optimized
    integration's ``arn:aws:states:::SERVICE:ACTION``."""
    service, _, action = base.removeprefix(AWS_SDK).removeprefix(INTEGRATIONS).partition(":")
    return service, action


def invoke_result(output: Any) -> dict[str, Any]:
    """What ``lambda:invoke`` gives a state: the function's output as its ``Payload``."""
    return {"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}


def put_events(ctx: Context, step: str, name: str, payload: Any) -> Any:
    """``events:putEvents``: each entry on the stack's bus."""
    entries = payload.get("Entries") if isinstance(payload, dict) else None
    if not isinstance(entries, list) or not entries:
        raise MachineFailed("States.Runtime", f"Task {name!r}: putEvents needs Entries")
    sent = []
    for index, given in enumerate(entries):
        entry = given if isinstance(given, dict) else {}
        detail = entry.get("Detail")
        if isinstance(detail, str):
            detail = json.loads(detail)
        answer = ctx.notify(
            step if index == 0 else f"{step} {index + 1}",
            detail_type=str(entry.get("DetailType") or "stepwell.event"),
            detail=detail,
            source=str(entry.get("Source") or "stepwell"),
        )
        sent.append({"EventId": (answer or {}).get("event_id")})
    return {"Entries": sent, "FailedEntryCount": 0}


def start_execution(
    ctx: Context, step: str, name: str, written: str, payload: Any, timeout: Any
) -> Any:
    """``states:startExecution``: a run of the workflow the StateMachineArn names. Plain, or
    with ``.waitForTaskToken`` (whose answer is the task's result), it is a run of its own
    that this one does not wait for, as on Step Functions; the result is its
    ``ExecutionArn`` and ``StartDate``. ``.sync`` and ``.sync:2`` wait for its end as a
    child run and give DescribeExecution's shape, its input and output as JSON text
    (``.sync``) or as JSON (``.sync:2``)."""
    arn = payload.get("StateMachineArn") if isinstance(payload, dict) else None
    if not isinstance(arn, str) or not arn:
        raise MachineFailed(
            "States.Runtime", f"Task {name!r}: startExecution needs StateMachineArn"
        )
    workflow = workflow_name(arn.rsplit(":", 1)[-1])
    child_input = payload.get("Input", {})  # Step Functions starts a child with {} when none
    if isinstance(child_input, str):
        child_input = json.loads(child_input)
    base = written.removesuffix(TOKEN_SUFFIX)
    if base == START_EXECUTION:
        started = ctx.workflow(step, workflow=workflow, input=child_input, wait=False)
        return {
            "ExecutionArn": execution_arn(arn, started["run_id"]),
            "StartDate": started["started_at"],
        }
    output = ctx.workflow(step, workflow=workflow, input=child_input, timeout=timeout)
    as_json = base.endswith(".sync:2")
    return {
        "Input": child_input if as_json else json.dumps(child_input),
        "InputDetails": {"Included": True},
        "Output": output if as_json else json.dumps(output),
        "OutputDetails": {"Included": True},
        "StateMachineArn": arn,
        "Status": "SUCCEEDED",
    }


def execution_arn(machine: str, run_id: str) -> str:
    """The ARN Step Functions gives an execution of ``machine``: the run's id as its name."""
    if ":stateMachine:" in machine:
        return f"{machine.replace(':stateMachine:', ':execution:', 1)}:{run_id}"
    return f"arn:aws:states:::execution:{machine}:{run_id}"
