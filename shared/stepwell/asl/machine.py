"""An Amazon States Language machine run on Stepwell's runtime: the machine is interpreted by a
code-first workflow function, so each Task is a ``ctx.task`` (a Lambda invocation with its own
record, fenced attempts and timeline), each Wait a ``ctx.sleep``, a task token a signed
``ctx.create_callback``; Choice, Pass, Succeed and Fail are decided in the replay. A state entered
again (a loop through a Choice) gets a record of its own for each visit (``name~2``, ...).

Input and output processing follows the developer guide: InputPath, Parameters, ResultSelector,
ResultPath, OutputPath, the context object ``$$`` and the intrinsic functions. Retry and Catch
are the interpreter's: each retry is a new visit of the Task after a ``ctx.sleep`` of the
retrier's backoff, so every attempt is on the timeline, and the Catch that matches routes its
error output (``{"Error", "Cause"}``) to its ``Next``.
"""

from __future__ import annotations

import json
import re
from datetime import datetime
from typing import Any

from stepwell.asl import choice, jsonata, paths
from stepwell.asl.intrinsics import IntrinsicError
from stepwell.asl.jsonata import JsonataError
from stepwell.code.context import Context
from stepwell.code.errors import StepFailed

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
PUT_EVENTS = "arn:aws:states:::events:putEvents"
START_EXECUTION = "arn:aws:states:::states:startExecution"
"""With ``.sync`` (the child's output as a JSON string) or ``.sync:2`` (as JSON), or alone
(start it and go on)."""
TOKEN_SUFFIX = ".waitForTaskToken"
ERRORS = {
    "StepTimedOut": "States.Timeout",
    "CallbackTimedOut": "States.Timeout",
    "HeartbeatTimedOut": "States.HeartbeatTimeout",
}
"""Stepwell's error names for what Step Functions names otherwise."""


class MachineFailed(Exception):
    """A machine ended in a Fail state (or an error nothing caught): its error is ``Error``."""

    def __init__(self, error: str, cause: str) -> None:
        super().__init__(cause)
        self.error_name = error
        self.cause = cause


def key_name(state: str) -> str:
    """A state's name as a step name (the characters step keys reserve become ``_``)."""
    return re.sub(r"[.~\[\]/]", "_", state).strip()[:80] or "state"


class Machine:
    """The workflow function of one machine (``machine(ctx, input)``)."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.document = document
        self.timed = "EnteredTime" in json.dumps(document)
        """Whether a state reads ``$$.State.EnteredTime`` (a recorded time per state entered:
        paid for only by the machines that read it)."""

    def __call__(self, ctx: Context, input: Any) -> Any:
        started = ctx.started_at.isoformat() if ctx.started_at else None
        context = {
            "Execution": {
                "Id": ctx.run_id,
                "Name": ctx.run_id,
                "Input": input,
                "StartTime": started,
            },
            "StateMachine": {"Id": self.name, "Name": self.name},
        }
        run = _Run(ctx, context, self.timed)
        run.language = str(self.document.get("QueryLanguage") or "JSONPath")
        return run.states(self.document, input)


class _Run:
    def __init__(
        self,
        ctx: Context,
        context: dict[str, Any],
        timed: bool = False,
        variables: dict[str, Any] | None = None,
        language: str = "JSONPath",
    ) -> None:
        self.ctx = ctx
        self.context = context
        self.timed = timed
        self.variables = dict(variables or {})
        """The machine's variables (``Assign``); a branch or an item has a copy of its own."""
        self.language = language

    def inner(self, ctx: Context, context: dict[str, Any]) -> _Run:
        """The run of a branch or a Map item: the variables so far, as a copy."""
        return _Run(ctx, context, self.timed, self.variables, self.language)

    def states(self, document: dict[str, Any], data: Any) -> Any:
        """Run the states of ``document`` (a machine, a branch, an item processor) from
        ``StartAt`` until one ends it; return its output."""
        states: dict[str, Any] = document["States"]
        name: str | None = document["StartAt"]
        while name is not None:
            state = states[name]
            self.context["State"] = {"Name": name}
            if self.timed:
                self.context["State"]["EnteredTime"] = self.ctx.now().isoformat()
            name, data = self.state(name, state, data)
        return data

    def state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        """Run one state; return the next state's name (None: the machine ended) and its input.
        A path that matches nothing is ``States.Runtime``, an intrinsic that cannot be
        evaluated ``States.IntrinsicFailure``, as in Step Functions."""
        try:
            if state.get("QueryLanguage", self.language) == "JSONata":
                return self._jsonata(name, state, data)
            return self._state(name, state, data)
        except JsonataError as exc:
            raise MachineFailed("States.QueryEvaluationError", f"state {name!r}: {exc}") from None
        except paths.PathError as exc:
            raise MachineFailed("States.Runtime", f"state {name!r}: {exc}") from None
        except IntrinsicError as exc:
            raise MachineFailed("States.IntrinsicFailure", f"state {name!r}: {exc}") from None

    def _state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        if kind == "Choice":
            return self.choose(state, data), paths.read(state.get("OutputPath"), data, self.context)
        if kind == "Fail":
            error = state.get("Error") or self._path(state.get("ErrorPath"), data) or "States.Fail"
            cause = state.get("Cause") or self._path(state.get("CausePath"), data) or ""
            raise MachineFailed(str(error), str(cause))
        effective = paths.read(state.get("InputPath"), data, self.context)
        if kind == "Succeed":
            return None, paths.read(state.get("OutputPath"), effective, self.context)
        handle = self.token(name, state) if kind == "Task" else None
        if "Parameters" in state:
            effective = paths.render(state["Parameters"], effective, self.context, self.ctx.random)
        try:
            if kind == "Pass":
                result = state.get("Result", effective)
            elif kind == "Wait":
                self.wait(name, state, effective)
                result = effective
            elif kind == "Task":
                result = self.task(name, state, effective)
                if handle is not None:  # the task handed the token on: its answer is the result
                    result = handle.result()
            elif kind == "Parallel":
                result = self.parallel(name, state, effective)
            else:  # Map
                result = self.map(name, state, effective, data)
        except (StepFailed, MachineFailed) as failed:
            return self.caught(state, failed, data)
        if "ResultSelector" in state:
            result = paths.render(state["ResultSelector"], result, self.context, self.ctx.random)
        merged = paths.write(_result_path(state), data, result)
        return following, paths.read(state.get("OutputPath"), merged, self.context)

    # -- QueryLanguage JSONata ----------------------------------------------------------------
    def _jsonata(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        """A state in JSONata: Arguments, Output, Assign, Condition and ``{% %}`` fields."""
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        seen: dict[str, Any] = {"input": data, "context": self.context}

        def ev(value: Any, **more: Any) -> Any:
            return jsonata.render(value, {**seen, **more}, self.variables)

        if kind == "Choice":
            for rule in state.get("Choices") or []:
                if ev(rule.get("Condition")) is True:
                    self._assign(rule.get("Assign"), seen)
                    return str(rule["Next"]), ev(rule.get("Output", state.get("Output", data)))
            if "Default" in state:
                self._assign(state.get("Assign"), seen)
                return str(state["Default"]), ev(state.get("Output", data))
            raise MachineFailed(
                "States.NoChoiceMatched", "no choice rule matched and there is no Default"
            )
        if kind == "Fail":
            raise MachineFailed(
                str(ev(state.get("Error")) or "States.Fail"), str(ev(state.get("Cause")) or "")
            )
        if kind == "Succeed":
            return None, ev(state.get("Output", data))
        handle = self.token(name, state) if kind == "Task" else None
        arguments = ev(state["Arguments"]) if "Arguments" in state else data
        try:
            if kind == "Pass":
                result = arguments
            elif kind == "Wait":
                timing = {k: ev(v) for k, v in state.items() if k in ("Seconds", "Timestamp")}
                self.wait(name, timing, data)
                result = data
            elif kind == "Task":
                result = self.task(name, state, arguments)
                if handle is not None:
                    result = handle.result()
            elif kind == "Parallel":
                result = self.parallel(name, state, arguments)
            else:
                result = self._jsonata_map(name, state, ev(state.get("Items", arguments)))
        except (StepFailed, MachineFailed) as failed:
            return self._jsonata_caught(state, failed, seen)
        self._assign(state.get("Assign"), {**seen, "result": result})
        return following, ev(state["Output"], result=result) if "Output" in state else result

    def _jsonata_map(self, name: str, state: dict[str, Any], items: Any) -> list[Any]:
        if not isinstance(items, list):
            raise MachineFailed("States.QueryEvaluationError", f"Map {name!r}: Items gives no list")
        processor: dict[str, Any] = state.get("ItemProcessor") or {}
        selector = state.get("ItemSelector")

        def item(c: Context, pair: list[Any]) -> Any:
            index, value = pair
            context = {**self.context, "Map": {"Item": {"Index": index, "Value": value}}}
            given = (
                jsonata.render(selector, {"input": value, "context": context}, self.variables)
                if selector is not None
                else value
            )
            return self.inner(c, context).states(processor, given)

        concurrency = int(state.get("MaxConcurrency", 0)) or None
        found: list[Any] = self.ctx.map(
            key_name(name), [[i, v] for i, v in enumerate(items)], item, max_concurrency=concurrency
        )
        return found

    def _assign(self, assign: Any, seen: dict[str, Any]) -> None:
        """Evaluate every variable of ``Assign`` first, then set them all."""
        if isinstance(assign, dict):
            values = {k: jsonata.render(v, seen, self.variables) for k, v in assign.items()}
            self.variables.update(values)

    def _jsonata_caught(
        self, state: dict[str, Any], failed: StepFailed | MachineFailed, seen: dict[str, Any]
    ) -> tuple[str | None, Any]:
        error, cause = error_of(failed)
        output = {"Error": error, "Cause": cause}
        for catcher in state.get("Catch") or []:
            if _matches(catcher.get("ErrorEquals"), error):
                more = {**seen, "errorOutput": output}
                self._assign(catcher.get("Assign"), more)
                given = (
                    jsonata.render(catcher["Output"], more, self.variables)
                    if "Output" in catcher
                    else output
                )
                return str(catcher["Next"]), given
        raise MachineFailed(error, cause) from failed

    def _path(self, path: Any, data: Any) -> Any:
        return paths.read(path, data, self.context) if isinstance(path, str) else None

    # -- states ----------------------------------------------------------------------------
    def choose(self, state: dict[str, Any], data: Any) -> str:
        effective = paths.read(state.get("InputPath"), data, self.context)
        for rule in state.get("Choices") or []:
            if choice.matches(rule, effective, self.context):
                return str(rule["Next"])
        if "Default" in state:
            return str(state["Default"])
        raise MachineFailed(
            "States.NoChoiceMatched", "no choice rule matched and there is no Default"
        )

    def wait(self, name: str, state: dict[str, Any], data: Any) -> None:
        step = key_name(name)
        if "Seconds" in state or "SecondsPath" in state:
            seconds = state.get("Seconds", self._path(state.get("SecondsPath"), data))
            if not isinstance(seconds, int | float) or seconds < 0:
                raise MachineFailed(
                    "States.Runtime", f"Wait {name!r}: seconds must be a number >= 0"
                )
            self.ctx.sleep(step, seconds)
            return
        when = state.get("Timestamp", self._path(state.get("TimestampPath"), data))
        try:
            moment = datetime.fromisoformat(str(when).replace("Z", "+00:00"))
        except ValueError:
            raise MachineFailed(
                "States.Runtime", f"Wait {name!r}: {when!r} is not a timestamp"
            ) from None
        self.ctx.sleep_until(step, moment)

    def task(self, name: str, state: dict[str, Any], payload: Any) -> Any:
        resource = str(state["Resource"])
        retriers = [dict(r) for r in state.get("Retry") or []]
        policy = engine_retry(retriers)
        if policy is not None:  # one retrier: the engine's own retries, on one record
            return self._invoke(name, state, resource, payload, policy)
        counts = [0] * len(retriers)
        while True:
            try:
                return self._invoke(name, state, resource, payload)
            except StepFailed as failed:
                error = ERRORS.get(failed.error_type, failed.error_type)
                index = next(
                    (i for i, r in enumerate(retriers) if _matches(r.get("ErrorEquals"), error)),
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
                    delay *= self.ctx.random()
                counts[index] += 1
                self.ctx.sleep(f"{key_name(name)} retry", max(delay, 0.0))

    def token(self, name: str, state: dict[str, Any]) -> Any:
        """A ``.waitForTaskToken`` task's callback, opened before its payload is rendered (so
        ``$$.Task.Token`` is the callback's signed token)."""
        if not str(state.get("Resource", "")).endswith(TOKEN_SUFFIX):
            return None
        timeout = state.get("TimeoutSeconds") or 365 * 86400
        handle = self.ctx.create_callback(
            f"{key_name(name)} token", timeout=timeout, heartbeat=state.get("HeartbeatSeconds")
        )
        self.context["Task"] = {"Token": handle.token or handle.key}
        return handle

    def _invoke(
        self,
        name: str,
        state: dict[str, Any],
        resource: str,
        payload: Any,
        retry: dict[str, Any] | None = None,
    ) -> Any:
        step = key_name(name)
        timeout = state.get("TimeoutSeconds")
        base = resource.removesuffix(TOKEN_SUFFIX)
        if base == PUT_EVENTS:
            return self._put_events(step, name, payload)
        if base.startswith(START_EXECUTION):
            return self._start_execution(step, name, base, payload, timeout)
        if base == LAMBDA_INVOKE:
            function = payload.get("FunctionName") if isinstance(payload, dict) else None
            if not isinstance(function, str):
                raise MachineFailed(
                    "States.Runtime", f"Task {name!r}: lambda:invoke needs FunctionName"
                )
            output = self.ctx.task(
                step, function=function, input=payload.get("Payload"), retry=retry, timeout=timeout
            )
            result: Any = {"ExecutedVersion": "$LATEST", "Payload": output, "StatusCode": 200}
        else:
            result = self.ctx.task(step, function=base, input=payload, retry=retry, timeout=timeout)
        return result

    def _put_events(self, step: str, name: str, payload: Any) -> Any:
        entries = payload.get("Entries") if isinstance(payload, dict) else None
        if not isinstance(entries, list) or not entries:
            raise MachineFailed("States.Runtime", f"Task {name!r}: putEvents needs Entries")
        sent = []
        for index, given in enumerate(entries):
            entry = given if isinstance(given, dict) else {}
            detail = entry.get("Detail")
            if isinstance(detail, str):
                detail = json.loads(detail)
            answer = self.ctx.notify(
                step if index == 0 else f"{step} {index + 1}",
                detail_type=str(entry.get("DetailType") or "stepwell.event"),
                detail=detail,
                source=str(entry.get("Source") or "stepwell"),
            )
            sent.append({"EventId": (answer or {}).get("event_id")})
        return {"Entries": sent, "FailedEntryCount": 0}

    def _start_execution(self, step: str, name: str, base: str, payload: Any, timeout: Any) -> Any:
        arn = payload.get("StateMachineArn") if isinstance(payload, dict) else None
        if not isinstance(arn, str) or not arn:
            raise MachineFailed(
                "States.Runtime", f"Task {name!r}: startExecution needs StateMachineArn"
            )
        workflow = arn.rsplit(":", 1)[-1]
        child_input = payload.get("Input")
        if isinstance(child_input, str):
            child_input = json.loads(child_input)
        output = self.ctx.workflow(step, workflow=workflow, input=child_input, timeout=timeout)
        if base.endswith(".sync:2"):
            return {"Output": output, "Status": "SUCCEEDED", "StateMachineArn": arn}
        return {"Output": json.dumps(output), "Status": "SUCCEEDED", "StateMachineArn": arn}

    def parallel(self, name: str, state: dict[str, Any], data: Any) -> list[Any]:
        from stepwell.code.errors import ParallelFailed

        def branch(document: dict[str, Any]) -> Any:
            return lambda c: self.inner(c, dict(self.context)).states(document, data)

        try:
            found: list[Any] = self.ctx.parallel(
                key_name(name), [branch(b) for b in state["Branches"]]
            )
            return found
        except ParallelFailed as failed:
            raise _first(failed.errors) from failed

    def map(self, name: str, state: dict[str, Any], data: Any, raw: Any) -> list[Any]:
        from stepwell.code.errors import MapFailed

        items = paths.read(state.get("ItemsPath"), data, self.context)
        if not isinstance(items, list):
            raise MachineFailed("States.Runtime", f"Map {name!r}: ItemsPath gives no list")
        processor: dict[str, Any] = state.get("ItemProcessor") or state.get("Iterator") or {}
        selector = state.get("ItemSelector")

        def item(c: Context, pair: list[Any]) -> Any:
            index, value = pair
            context = {**self.context, "Map": {"Item": {"Index": index, "Value": value}}}
            given = paths.render(selector, data, context, c.random) if selector else value
            return self.inner(c, context).states(processor, given)

        tolerated: int | str = int(state.get("ToleratedFailureCount", 0))
        if "ToleratedFailurePercentage" in state:
            tolerated = f"{state['ToleratedFailurePercentage']}%"
        concurrency = int(state.get("MaxConcurrency", 0)) or None
        try:
            results: list[Any] = self.ctx.map(
                key_name(name),
                [[i, v] for i, v in enumerate(items)],
                item,
                max_concurrency=concurrency,
                tolerated_failures=tolerated,
            )
            return results
        except MapFailed as failed:
            raise MachineFailed("States.ExceedToleratedFailureThreshold", str(failed)) from failed

    def caught(
        self, state: dict[str, Any], failed: StepFailed | MachineFailed, data: Any
    ) -> tuple[str | None, Any]:
        """A state's error after its retries: the first Catch that matches routes it on."""
        error, cause = error_of(failed)
        for catcher in state.get("Catch") or []:
            if _matches(catcher.get("ErrorEquals"), error):
                output = paths.write(_result_path(catcher), data, {"Error": error, "Cause": cause})
                return str(catcher["Next"]), output
        raise MachineFailed(error, cause) from failed


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
        retry_on = [_STEPWELL.get(n, n) for n in names]
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


_STEPWELL = {"States.Timeout": "StepTimedOut", "States.HeartbeatTimeout": "HeartbeatTimedOut"}


def error_of(failed: StepFailed | MachineFailed) -> tuple[str, str]:
    """A state's error as Step Functions names it: ``Error`` and ``Cause`` (a Lambda's is the
    JSON of its errorMessage and errorType)."""
    if isinstance(failed, MachineFailed):
        return failed.error_name, failed.cause
    error = ERRORS.get(failed.error_type, failed.error_type)
    return error, json.dumps({"errorMessage": failed.message, "errorType": failed.error_type})


def _result_path(state: dict[str, Any]) -> str | None:
    if "ResultPath" in state and state["ResultPath"] is None:
        return "null"
    value = state.get("ResultPath")
    return None if value is None else str(value)


def _matches(names: Any, error: str) -> bool:
    """Whether an ErrorEquals list matches ``error`` (States.ALL: any; States.TaskFailed: any
    but a timeout)."""
    listed = names if isinstance(names, list) else []
    if error in listed:
        return True
    if "States.ALL" in listed:
        return error != "States.Runtime"  # a runtime error always fails the execution
    return "States.TaskFailed" in listed and error not in ("States.Timeout", "States.Runtime")


def _first(errors: dict[int, Exception]) -> Exception:
    failure = errors[min(errors)]
    if isinstance(failure, MachineFailed | StepFailed):
        return failure
    return MachineFailed("States.BranchFailed", str(failure))
