"""An Amazon States Language machine run on Stepwell's runtime: the machine is interpreted by a
code-first workflow function, so each Task is a ``ctx.task`` (a Lambda invocation with its own
record, fenced attempts and timeline), each Wait a ``ctx.sleep``, a task token a signed
``ctx.create_callback``; Choice, Pass, Succeed and Fail are decided in the replay. A state entered
again (a loop through a Choice) gets a record of its own for each visit (``name~2``, ...).

Input and output processing follows the developer guide: InputPath, Parameters, ResultSelector,
ResultPath, OutputPath, Assign and variables, the context object ``$$`` and the intrinsic
functions (JSONata states: :mod:`stepwell.asl.jsonata_states`). A Task's resources and its
Retry are :mod:`stepwell.asl.tasks`; the Catch that matches a state's error routes its error
output (``{"Error", "Cause"}``) to its ``Next``.

Over 500 lines: the loop over states and each state type's input and output processing are read
together, in the order the developer guide gives them.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stepwell.asl import choice, distributed, paths, s3_map, tasks
from stepwell.asl.errors import FailedItem, MachineFailed, error_of, first, matches, outputs_of
from stepwell.asl.intrinsics import IntrinsicError
from stepwell.asl.jsonata import JsonataError
from stepwell.asl.jsonata_states import MAP_LIMITS, JsonataStates
from stepwell.asl.names import resource
from stepwell.asl.tasks import TOKEN_SUFFIX, key_name
from stepwell.code.batch import BatchResult
from stepwell.code.context import Context
from stepwell.code.errors import MapFailed, ParallelFailed, StepFailed

__all__ = ["Machine", "MachineFailed", "key_name"]

EVENTS = {"Task": 3, "Parallel": 2, "Map": 2}
"""The events Step Functions records for a state between its entered and exited events (a
Lambda's scheduled, started and succeeded; a Parallel's or Map's started and succeeded)."""


class Machine:
    """The workflow function of one machine (``machine(ctx, input)``)."""

    def __init__(self, name: str, document: dict[str, Any]) -> None:
        self.name = name
        self.document = document
        text = repr(document)
        self.timed = "EnteredTime" in text or "$now(" in text
        """Whether a state reads the time it was entered (``$$.State.EnteredTime``, JSONata's
        ``$now()``): a recorded time per state entered, paid for only by the machines that
        read it."""
        self.counted = "RetryCount" in text
        """Whether a state reads ``$$.State.RetryCount``: its Task is then retried by the
        interpreter, so each retry renders its payload again with the count."""

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
        run = _Run(ctx, context, self.timed, self.counted)
        run.language = str(self.document.get("QueryLanguage") or "JSONPath")
        return run.states(self.document, input)


class _Run(JsonataStates):
    def __init__(
        self,
        ctx: Context,
        context: dict[str, Any],
        timed: bool = False,
        counted: bool = False,
        variables: dict[str, Any] | None = None,
        language: str = "JSONPath",
    ) -> None:
        self.ctx = ctx
        self.context = context
        self.timed = timed
        self.counted = counted
        self.variables = dict(variables or {})
        """The machine's variables (``Assign``); a branch or a Map item has a copy of its own."""
        self.context[paths.VARIABLES] = self.variables
        self.language = language
        self.events = 1
        """How many events Step Functions' history of the run would hold so far (its first,
        ExecutionStarted): a failure's Cause names the event its state was entered at."""
        self.entered = 1
        """The event the current state was entered at."""

    def inner(self, ctx: Context, context: dict[str, Any]) -> _Run:
        """The run of a branch or a Map item: the variables so far, as a copy."""
        run = _Run(ctx, dict(context), self.timed, self.counted, self.variables, self.language)
        run.events = self.events
        return run

    def states(self, document: dict[str, Any], data: Any) -> Any:
        """Run the states of ``document`` (a machine, a branch, an item processor) from
        ``StartAt`` until one ends it; return its output."""
        states: dict[str, Any] = document["States"]
        name: str | None = document["StartAt"]
        while name is not None:
            state = states[name]
            self.context["State"] = {"Name": name, "RetryCount": 0}
            if self.timed:
                self.context["State"]["EnteredTime"] = self.ctx.now().isoformat()
            self.events += 1
            self.entered = self.events
            name, data = self.state(name, state, data)
            self.events += 1 + EVENTS.get(str(state.get("Type")), 0)
        return data

    def failure(self, name: str, detail: object) -> str:
        """A ``States.Runtime`` (or query, or intrinsic) failure's Cause, as Step Functions
        writes it."""
        return (
            f"An error occurred while executing the state '{name}' (entered at the event id "
            f"#{self.entered}). {detail}"
        )

    def state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        """Run one state; return the next state's name (None: the machine ended) and its input.
        A path that matches nothing is ``States.Runtime``, an intrinsic that cannot be
        evaluated ``States.IntrinsicFailure``, as in Step Functions."""
        try:
            if state.get("QueryLanguage", self.language) == "JSONata":
                return self.jsonata_state(name, state, data)
            return self._state(name, state, data)
        except JsonataError as exc:
            raise MachineFailed("States.QueryEvaluationError", self.failure(name, exc)) from None
        except IntrinsicError as exc:
            raise MachineFailed("States.IntrinsicFailure", self.failure(name, exc)) from None
        except (paths.PathError, ValueError, TypeError, KeyError, IndexError) as exc:
            # The machine's data did not fit what a state does with it: Step Functions names
            # that States.Runtime, whatever went wrong inside the interpreter.
            raise MachineFailed("States.Runtime", self.failure(name, exc)) from None

    def _render(self, template: Any, data: Any) -> Any:
        return paths.render(template, data, self.context, self.ctx.random)

    def _state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        if kind == "Choice":
            return self.choose(state, data)
        if kind == "Fail":
            error = state.get("Error") or self._fail_field("ErrorPath", state, data)
            cause = state.get("Cause") or self._fail_field("CausePath", state, data)
            raise MachineFailed(None if error is None else str(error), str(cause))
        effective = paths.read_field(state, "InputPath", data, self.context)
        if kind == "Succeed":
            return None, paths.read_field(state, "OutputPath", effective, self.context)
        try:
            if kind == "Task":
                timed = self._timing(state, effective)
                result = self.task(name, timed, lambda: self._parameters(state, effective))
            else:
                if kind != "Map":  # a Map's Parameters select each item (ItemSelector)
                    effective = self._parameters(state, effective)
                if kind == "Pass":
                    result = state.get("Result", effective)
                elif kind == "Wait":
                    self.wait(name, state, effective)
                    result = effective
                elif kind == "Parallel":
                    result = self.parallel(name, state, effective)
                else:  # Map
                    result = self.map(name, state, effective)
        except (StepFailed, MachineFailed) as failed:
            return self.caught(state, failed, data)
        if "ResultSelector" in state:
            result = self._render(state["ResultSelector"], result)
        assigned = self._assigned(state.get("Assign"), result)
        merged = paths.write(paths.result_path(state), data, result)
        output = paths.read_field(state, "OutputPath", merged, self.context)
        self.variables.update(assigned)
        return following, output

    def _timing(self, state: dict[str, Any], effective: Any) -> dict[str, Any]:
        """A Task with its ``TimeoutSecondsPath`` / ``HeartbeatSecondsPath`` read from its
        input (a positive whole number of seconds, or ``States.Runtime``), and the role its
        ``Credentials`` name (``RoleArn.$``: read from its input)."""
        found = dict(state)
        for field in ("TimeoutSeconds", "HeartbeatSeconds"):
            if f"{field}Path" in state:
                found[field] = _seconds(field, self._path(f"{field}Path", state, effective))
        if isinstance(state.get("Credentials"), dict):
            found["Credentials"] = self._render(state["Credentials"], effective)
        return found

    def _parameters(self, state: dict[str, Any], effective: Any) -> Any:
        if "Parameters" not in state:
            return effective
        return self._render(state["Parameters"], effective)

    def _assigned(self, assign: Any, data: Any) -> dict[str, Any]:
        """``Assign`` of a JSONPath state: its ``.$`` fields read ``data`` (the state's result),
        the context object and the variables as they were when the state was entered; the
        caller sets them once the state's output is read (which sees the old values too)."""
        return self._render(assign, data) if isinstance(assign, dict) else {}

    def _path(self, field: str, state: dict[str, Any], data: Any) -> Any:
        """A ``...Path`` field's value: a path, or an intrinsic function (None: no field)."""
        path = state.get(field)
        if not isinstance(path, str):
            return None
        return paths.evaluate(path, data, self.context, self.ctx.random)

    def _fail_field(self, field: str, state: dict[str, Any], data: Any) -> Any:
        path = state.get(field)
        if not isinstance(path, str):
            return None if field == "ErrorPath" else ""
        return paths.field_value(field, path, data, self.context, self.ctx.random)

    # -- states ----------------------------------------------------------------------------
    def choose(self, state: dict[str, Any], data: Any) -> tuple[str, Any]:
        effective = paths.read_field(state, "InputPath", data, self.context)
        for rule in state.get("Choices") or []:
            if choice.matches(rule, effective, self.context):
                return str(rule["Next"]), self._chosen(state, rule.get("Assign"), effective, data)
        if "Default" in state:
            chosen = self._chosen(state, state.get("Assign"), effective, data)
            return str(state["Default"]), chosen
        raise MachineFailed(
            "States.NoChoiceMatched", "no choice rule matched and there is no Default"
        )

    def _chosen(self, state: dict[str, Any], assign: Any, effective: Any, data: Any) -> Any:
        """A Choice's output (its input through OutputPath), then its Assign (which reads the
        effective input)."""
        assigned = self._assigned(assign, effective)
        output = paths.read_field(state, "OutputPath", data, self.context)
        self.variables.update(assigned)
        return output

    def wait(self, name: str, state: dict[str, Any], data: Any) -> None:
        """A Wait's seconds or timestamp, refused as Step Functions refuses them (a number of
        seconds that is not a whole number >= 0, a time without its offset)."""
        step = key_name(name)
        if "Seconds" in state:
            self.ctx.sleep(step, state["Seconds"])
            return
        if "SecondsPath" in state:
            path = state["SecondsPath"]
            seconds = self._path("SecondsPath", state, data)
            if isinstance(seconds, bool) or not isinstance(seconds, int):
                raise paths.PathError(
                    "The SecondsPath parameter cannot be parsed as a long value: "
                    f"{path} == {_shown(seconds)}"
                )
            if seconds < 0:
                raise paths.PathError(
                    f"The SecondsPath parameter references a negative value: {path} == {seconds}"
                )
            self.ctx.sleep(step, seconds)
            return
        if "Timestamp" in state:
            when = state["Timestamp"]
            why = "The Timestamp field cannot be parsed as an ISO-8601 extended offset "
            why += f"date-time format string: {_shown(when)}"
        else:
            when = self._path("TimestampPath", state, data)
            why = "The TimestampPath parameter does not reference a valid ISO-8601 extended "
            why += f"offset date-time format string: {state['TimestampPath']} == {_shown(when)}"
        moment = _timestamp(when)
        if moment is None:
            raise paths.PathError(why)
        self.ctx.sleep_until(step, moment)

    def task(self, name: str, state: dict[str, Any], payload: Callable[[], Any]) -> Any:
        """Run a Task's resource with its Retry; ``payload()`` renders its input (again for
        each retry the interpreter makes, with ``$$.State.RetryCount`` and a new task token).
        A ``.waitForTaskToken`` task's result is the token's answer; its Retry covers the
        wait too."""
        retriers = [dict(r) for r in state.get("Retry") or []]
        # The engine's retry policy is a function's: the other resources are retried here.
        calls_function = tasks.names_function(resource(state))
        policy = tasks.engine_retry(retriers) if calls_function and not self.counted else None
        if policy is not None:  # one retrier: the engine's own retries, on one record
            return tasks.invoke(self.ctx, name, state, payload(), policy)

        def attempt(retries: int) -> Any:
            self.context["State"]["RetryCount"] = retries
            handle = self.token(name, state)
            result = tasks.invoke(self.ctx, name, state, payload())
            return tasks.answer(handle) if handle is not None else result

        return tasks.with_retries(self.ctx, name, retriers, attempt)

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

    def parallel(self, name: str, state: dict[str, Any], data: Any) -> list[Any]:
        def branch(document: dict[str, Any]) -> Any:
            return lambda c: self.inner(c, self.context).states(document, data)

        try:
            found: list[Any] = self.ctx.parallel(
                key_name(name), [branch(b) for b in state["Branches"]]
            )
            return found
        except ParallelFailed as failed:
            raise first(failed.errors) from failed

    def map(self, name: str, state: dict[str, Any], data: Any) -> Any:
        """A Map's results (with a ResultWriter: where they were written)."""

        def render(template: Any) -> Any:
            return self._render(template, data)

        if "ItemReader" in state:
            items = s3_map.read(self.ctx, key_name(name), state["ItemReader"], render)
        else:
            items = paths.read(state.get("ItemsPath"), data, self.context)
        started = self.ctx.now() if "ResultWriter" in state else None
        results = self.map_of(name, state, data, items)
        if "ResultWriter" not in state:
            return outputs_of(results)
        workflow = self.ctx.workflow_name
        writer = state["ResultWriter"]
        return s3_map.write(
            self.ctx, key_name(name), writer, render, workflow, items, results, started
        )

    def map_of(self, name: str, state: dict[str, Any], data: Any, items: Any) -> list[Any]:
        if not isinstance(items, list):
            raise paths.PathError(f"Map state input must be an array but was: {_shown(items)}")
        selector = state.get("ItemSelector", state.get("Parameters"))

        def given(context: dict[str, Any], value: Any) -> Any:
            return paths.render(selector, data, context, self.ctx.random) if selector else value

        limits = {key: state.get(key, self._path(f"{key}Path", state, data)) for key in MAP_LIMITS}
        batcher = state.get("ItemBatcher")
        if isinstance(batcher, dict):
            selected = [given(self._item_context(i, v), v) for i, v in enumerate(items)]
            batches = self._batches(name, batcher, selected, data)
            return self.map_items(name, state, batches, lambda _, batch: batch, limits)
        return self.map_items(name, state, items, given, limits)

    def _item_context(self, index: int, value: Any) -> dict[str, Any]:
        return {**self.context, "Map": {"Item": {"Index": index, "Value": value}}}

    def _batches(
        self, name: str, batcher: dict[str, Any], items: list[Any], data: Any
    ) -> list[dict[str, Any]]:
        """``ItemBatcher``: the items in batches of ``MaxItemsPerBatch`` (and of at most
        ``MaxInputBytesPerBatch`` of JSON), each ``{"BatchInput", "Items"}``."""
        most = batcher.get("MaxItemsPerBatch", self._path("MaxItemsPerBatchPath", batcher, data))
        limit = batcher.get(
            "MaxInputBytesPerBatch", self._path("MaxInputBytesPerBatchPath", batcher, data)
        )
        if most is None and limit is None:
            raise MachineFailed(
                "States.Runtime",
                f"Map {name!r}: ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch",
            )
        batches: list[list[Any]] = []
        size = 0
        for item in items:
            bytes_of = len(json.dumps(item, separators=(",", ":")))
            full = batches and (
                (most is not None and len(batches[-1]) >= int(most))
                or (limit is not None and size + bytes_of > int(limit))
            )
            if not batches or full:
                batches.append([])
                size = 0
            batches[-1].append(item)
            size += bytes_of
        head = {"BatchInput": batcher["BatchInput"]} if "BatchInput" in batcher else {}
        return [{**head, "Items": batch} for batch in batches]

    def map_items(
        self,
        name: str,
        state: dict[str, Any],
        items: list[Any],
        given: Callable[[dict[str, Any], Any], Any],
        limits: dict[str, Any],
    ) -> list[Any]:
        """Each item through the Map's ItemProcessor (``given(context, item)``: its input),
        under the ``limits`` (MaxConcurrency, ToleratedFailureCount / Percentage): one engine
        fan-out for a distributed Map of one Task (:mod:`stepwell.asl.distributed`), else a
        ``ctx.map`` whose items run in the replay. An item that failed within the tolerated
        failures is a FailedItem."""
        processor: dict[str, Any] = state.get("ItemProcessor") or state.get("Iterator") or {}
        task = distributed.item_task(state, self.language, self.counted)
        if task is not None:
            found = self._fan_out(name, task, items, given, limits)
            if found is not None:
                return found

        failed: dict[int, FailedItem] = {}

        def item(c: Context, pair: list[Any]) -> Any:
            index, value = pair
            context = self._item_context(index, value)
            try:
                return self.inner(c, context).states(processor, given(context, value))
            except Exception as failure:  # noted (on every replay alike), then counted by ctx.map
                failed[index] = FailedItem.of(failure)
                raise

        tolerated = _tolerated(limits)
        concurrency = int(limits.get("MaxConcurrency") or 0) or None
        try:
            results: list[Any] = self.ctx.map(
                key_name(name),
                [[i, v] for i, v in enumerate(items)],
                item,
                max_concurrency=concurrency,
                tolerated_failures=tolerated,
            )
        except MapFailed as past:
            if not tolerated:
                raise first(past.errors) from past
            raise MachineFailed("States.ExceedToleratedFailureThreshold", str(past)) from past
        return [failed.get(index, result) for index, result in enumerate(results)]

    def _fan_out(
        self,
        name: str,
        task: distributed.ItemTask,
        items: list[Any],
        given: Callable[[dict[str, Any], Any], Any],
        limits: dict[str, Any],
    ) -> list[Any] | None:
        """A distributed Map's items as one ``ctx.for_each`` of its Task's function (None: the
        items call different functions, and the Map runs inline)."""
        inputs = [given(self._item_context(i, v), v) for i, v in enumerate(items)]

        def contexts(index: int) -> dict[str, Any]:
            item = self._item_context(index, items[index])
            return {**item, "State": {"Name": task.name, "RetryCount": 0}}

        planned = distributed.payloads(task, inputs, contexts, self._render_in)
        if planned is None:
            return None
        function, events = planned
        tolerated = _tolerated(limits)
        at_once = int(limits.get("MaxConcurrency") or 0) or distributed.MAX_CONCURRENCY
        state = task.state
        try:
            batch: BatchResult = self.ctx.for_each(
                key_name(name),
                function=function,
                items=events,
                max_concurrency=min(at_once, distributed.MAX_CONCURRENCY),
                tolerated_failures=tolerated,
                retry=tasks.engine_retry([dict(r) for r in state.get("Retry") or []]),
                timeout=state.get("TimeoutSeconds"),
                heartbeat=state.get("HeartbeatSeconds"),
                batch=True,
            )
        except MapFailed as failed:
            if not tolerated:
                raise first(failed.errors) from failed
            raise MachineFailed("States.ExceedToleratedFailureThreshold", str(failed)) from failed
        results = [FailedItem.of(o.error) if o.error is not None else o.value for o in batch.items]
        return distributed.outputs(task, inputs, contexts, results, self._render_in)

    def _render_in(self, template: Any, data: Any, context: dict[str, Any]) -> Any:
        return paths.render(template, data, context, self.ctx.random)

    def caught(
        self, state: dict[str, Any], failed: StepFailed | MachineFailed, data: Any
    ) -> tuple[str | None, Any]:
        """A state's error after its retries: the first Catch that matches routes it on."""
        error, cause = error_of(failed)
        for catcher in state.get("Catch") or []:
            if matches(catcher.get("ErrorEquals"), error):
                output = {"Error": error, "Cause": cause}
                self.variables.update(self._assigned(catcher.get("Assign"), output))
                return str(catcher["Next"]), paths.write(paths.result_path(catcher), data, output)
        raise MachineFailed(error, cause) from failed


def _tolerated(limits: dict[str, Any]) -> int | str:
    """A Map's tolerated failures: a count, or a share of the items (``"10%"``)."""
    if limits.get("ToleratedFailurePercentage") is not None:
        return f"{limits['ToleratedFailurePercentage']}%"
    return int(limits.get("ToleratedFailureCount") or 0)


_OFFSET_TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")


def _timestamp(value: Any) -> datetime | None:
    """An ISO-8601 extended offset date-time (``2030-01-01T00:00:00Z``; a zone is required,
    as Step Functions requires it), or None."""
    if not isinstance(value, str) or not _OFFSET_TIME.match(value):
        return None
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00"))
    except ValueError:  # a month 13, an hour 25
        return None


def _shown(value: Any) -> str:
    """A value in a Cause: a string as it is, anything else as JSON."""
    return value if isinstance(value, str) else json.dumps(value, separators=(",", ":"))


def _seconds(field: str, value: Any) -> int:
    """A timeout's seconds as the input gave them."""
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise paths.PathError(
            f"The {field}Path parameter does not reference a positive integer: {_shown(value)}"
        )
    return value
