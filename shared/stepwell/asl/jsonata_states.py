"""States in JSONata (``QueryLanguage: JSONata``): ``Arguments`` instead of the input paths and
``Parameters``, ``Output`` instead of ``ResultSelector`` / ``ResultPath`` / ``OutputPath``,
``Assign`` (every variable evaluated before any is set), Choice ``Condition`` rules, Map
``Items``, Catch ``Output``, and ``{% %}`` fields over ``$states`` (``input``, ``result``,
``errorOutput``, ``context``) and the variables.

:class:`JsonataStates` is the JSONata half of the interpreter's run: what it needs of the run
(a Task, a Wait, a token, a Parallel, a Map's items) is the run's, shared with JSONPath."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from stepwell.asl import jsonata, paths
from stepwell.asl.errors import MachineFailed, error_of, matches
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

        def ev(value: Any, **more: Any) -> Any:
            return jsonata.render(value, {**seen, **more}, self.variables, bound)

        if kind == "Choice":
            for rule in state.get("Choices") or []:
                if ev(rule.get("Condition")) is True:
                    self._assign(rule.get("Assign"), seen, bound)
                    return str(rule["Next"]), ev(rule.get("Output", state.get("Output", data)))
            if "Default" in state:
                self._assign(state.get("Assign"), seen, bound)
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

        def arguments() -> Any:
            seen["context"] = paths.context_object(
                self.context
            )  # with the retry count and task token
            return ev(state.get("Arguments", data))

        try:
            if kind == "Task":
                deadlines: dict[str, Any] = {
                    k: ev(state[k]) for k in ("TimeoutSeconds", "HeartbeatSeconds") if k in state
                }
                result = self.task(name, {**state, **deadlines}, arguments)
            else:
                arguments = ev(state["Arguments"]) if "Arguments" in state else data
                if kind == "Pass":
                    result = arguments
                elif kind == "Wait":
                    timing = {k: ev(v) for k, v in state.items() if k in ("Seconds", "Timestamp")}
                    self.wait(name, timing, data)
                    result = data
                elif kind == "Parallel":
                    result = self.parallel(name, state, arguments)
                else:
                    limits = {key: ev(state.get(key)) for key in MAP_LIMITS}
                    items = ev(state.get("Items", arguments))
                    result = self._map(name, state, items, limits, bound)
        except (StepFailed, MachineFailed) as failed:
            return self._caught(state, failed, seen, bound)
        self._assign(state.get("Assign"), {**seen, "result": result}, bound)
        return following, ev(state["Output"], result=result) if "Output" in state else result

    def _map(
        self,
        name: str,
        state: dict[str, Any],
        items: Any,
        limits: dict[str, Any],
        bound: jsonata.Functions,
    ) -> list[Any]:
        if not isinstance(items, list):
            raise MachineFailed("States.QueryEvaluationError", f"Map {name!r}: Items gives no list")
        selector = state.get("ItemSelector")

        def given(context: dict[str, Any], value: Any) -> Any:
            if selector is None:
                return value
            seen = {"input": value, "context": paths.context_object(context)}
            return jsonata.render(selector, seen, self.variables, bound)

        return self.map_items(name, state, items, given, limits)

    def _assign(self, assign: Any, seen: dict[str, Any], bound: jsonata.Functions) -> None:
        """Evaluate every variable of ``Assign`` first, then set them all."""
        if isinstance(assign, dict):
            values = {k: jsonata.render(v, seen, self.variables, bound) for k, v in assign.items()}
            self.variables.update(values)

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
                self._assign(catcher.get("Assign"), more, bound)
                given = (
                    jsonata.render(catcher["Output"], more, self.variables, bound)
                    if "Output" in catcher
                    else output
                )
                return str(catcher["Next"]), given
        raise MachineFailed(error, cause) from failed
