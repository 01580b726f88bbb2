"""States in JSONata (``QueryLanguage: JSONata``): ``Arguments`` instead of the input paths and
``Parameters``, ``Output`` instead of ``ResultSelector`` / ``ResultPath`` / ``OutputPath``,
``Assign`` (every variable evaluated before any is set), Choice ``Condition`` rules, Map
``Items``, Catch ``Output``, and ``{% %}`` fields over ``$states`` (``input``, ``result``,
``errorOutput``, ``context``) and the variables.

:class:`JsonataStates` is the JSONata half of the interpreter's run: what it needs of the run
(a Task, a Wait, a token, a Parallel, a Map's items) is the run's, shared with JSONPath."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import Any

from stepwell.asl import jsonata, paths
from stepwell.asl.errors import MachineFailed, error_of, matches, outputs_of
from stepwell.code.context import Context
from stepwell.code.errors import StepFailed

MAP_LIMITS = ("MaxConcurrency", "ToleratedFailureCount", "ToleratedFailurePercentage")


class JsonataStates:
    """The JSONata states of a run (mixed into the interpreter's run)."""

    ctx: Context
    context: dict[str, Any]
    variables: dict[str, Any]

    # What the run provides (language-independent).
    def task(self, name: str, state: dict[str, Any], payload: Callable[[], Any]) -> Any:
        raise NotImplementedError

    def wait(self, name: str, state: dict[str, Any], data: Any) -> None:
        raise NotImplementedError

    def parallel(self, name: str, state: dict[str, Any], data: Any) -> list[Any]:
        raise NotImplementedError

    def map_items(
        self,
        name: str,
        state: dict[str, Any],
        items: list[Any],
        given: Callable[[dict[str, Any], Any], Any],
        limits: dict[str, Any],
    ) -> list[Any]:
        raise NotImplementedError

    def _functions(self) -> jsonata.Functions:
        entered = self.context.get("State", {}).get("EnteredTime")
        now = datetime.fromisoformat(entered) if isinstance(entered, str) else None
        return jsonata.functions(self.ctx.random, lambda: str(self.ctx.uuid()), now)

    def jsonata_state(self, name: str, state: dict[str, Any], data: Any) -> tuple[str | None, Any]:
        """A state in JSONata: Arguments, Output, Assign, Condition and ``{% %}`` fields."""
        kind = state["Type"]
        following = None if state.get("End") else state.get("Next")
        seen: dict[str, Any] = {"input": data, "context": paths.context_object(self.context)}
        bound = self._functions()

        def ev(value: Any, field: str, **more: Any) -> Any:
            return jsonata.render(value, {**seen, **more}, self.variables, bound, field)

        def ended(given: dict[str, Any], default: Any, **more: Any) -> Any:
            """The state's (or its rule's) Output, else ``default``, and its Assign: both over
            the variables as the state found them; the variables are set after."""
            assigned = self._assigned_now(given.get("Assign"), {**seen, **more}, bound)
            output = ev(given["Output"], "Output", **more) if "Output" in given else default
            self.variables.update(assigned)
            return output

        if kind == "Choice":
            for rule in state.get("Choices") or []:
                if ev(rule.get("Condition"), "Condition") is True:
                    given = {"Output": state["Output"]} if "Output" in state else {}
                    return str(rule["Next"]), ended({**given, **rule}, data)
            if "Default" in state:
                return str(state["Default"]), ended(state, data)
            raise MachineFailed(
                "States.NoChoiceMatched", "no choice rule matched and there is no Default"
            )
        if kind == "Fail":
            error = ev(state["Error"], "Error") if "Error" in state else None
            cause = ev(state["Cause"], "Cause") if "Cause" in state else ""
            raise MachineFailed(None if error is None else str(error), str(cause))
        if kind == "Succeed":
            return None, ended(state, data)

        def arguments() -> Any:
            seen["context"] = paths.context_object(
                self.context
            )  # with the retry count and task token
            return ev(state.get("Arguments", data), "Arguments")

        try:
            if kind == "Task":
                deadlines: dict[str, Any] = {
                    k: ev(state[k], k)
                    for k in ("TimeoutSeconds", "HeartbeatSeconds", "Credentials")
                    if k in state
                }
                result = self.task(name, {**state, **deadlines}, arguments)
            else:
                arguments = ev(state["Arguments"], "Arguments") if "Arguments" in state else data
                if kind == "Pass":
                    result = arguments
                elif kind == "Wait":
                    timing = {
                        k: ev(v, k) for k, v in state.items() if k in ("Seconds", "Timestamp")
                    }
                    self.wait(name, timing, data)
                    result = data
                elif kind == "Parallel":
                    result = self.parallel(name, state, arguments)
                else:
                    limits = {key: ev(state.get(key), key) for key in MAP_LIMITS if key in state}
                    items = ev(state.get("Items", arguments), "Items")
                    result = self._map(name, state, items, limits, bound)
        except (StepFailed, MachineFailed) as failed:
            return self._caught(state, failed, seen, bound)
        return following, ended(state, result, result=result)

    def _map(
        self,
        name: str,
        state: dict[str, Any],
        items: Any,
        limits: dict[str, Any],
        bound: jsonata.Functions,
    ) -> list[Any]:
        if not isinstance(items, list):
            written = jsonata.expression_of(state.get("Items"))
            shown = json.dumps(items, separators=(",", ":"))
            kind = {dict: "object", str: "string", bool: "boolean", type(None): "null"}.get(
                type(items), "number"
            )
            raise jsonata.JsonataError(
                f"The JSONata expression '{written}' specified for the field 'Items' returned an "
                f"unexpected result type. Expected 'array', but was '{kind}' for value: {shown}"
            )
        selector = state.get("ItemSelector")

        def given(context: dict[str, Any], value: Any) -> Any:
            if selector is None:
                return value
            seen = {"input": value, "context": paths.context_object(context)}
            return jsonata.render(selector, seen, self.variables, bound, "ItemSelector")

        return outputs_of(self.map_items(name, state, items, given, limits))

    def _assigned_now(
        self, assign: Any, seen: dict[str, Any], bound: jsonata.Functions
    ) -> dict[str, Any]:
        """Every variable of ``Assign``, evaluated over the variables as they are (the caller
        sets them all after)."""
        if not isinstance(assign, dict):
            return {}
        return dict(jsonata.render(assign, seen, self.variables, bound, "Assign"))

    def _caught(
        self,
        state: dict[str, Any],
        failed: StepFailed | MachineFailed,
        seen: dict[str, Any],
        bound: jsonata.Functions,
    ) -> tuple[str | None, Any]:
        error, cause = error_of(failed)
        output = {"Error": error, "Cause": cause}
        for catcher in state.get("Catch") or []:
            if matches(catcher.get("ErrorEquals"), error):
                more = {**seen, "errorOutput": output}
                assigned = self._assigned_now(catcher.get("Assign"), more, bound)
                given = (
                    jsonata.render(catcher["Output"], more, self.variables, bound, "Output")
                    if "Output" in catcher
                    else output
                )
                self.variables.update(assigned)
                return str(catcher["Next"]), given
        raise MachineFailed(error, cause) from failed
