"""A Map with ``ProcessorConfig.Mode: DISTRIBUTED`` whose ItemProcessor is one Task calling a
function: its items are one engine fan-out (``ctx.for_each``), each item one Lambda invocation
that the engine starts, retries and counts, as a YAML ``for_each`` step's children are. The
machine's replay is woken once, when the fan-out is decided, so a Map of 10,000 items costs the
replay what a Map of 10 does.

The Task's input and output processing (InputPath, Parameters, ResultSelector, ResultPath,
OutputPath) is done here, per item, around the fan-out: it is pure. Any other processor (more
states, a Catch, several retriers, a task token, JSONata) runs as an inline Map.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from stepwell.asl import paths, tasks
from stepwell.asl.errors import FailedItem
from stepwell.asl.names import resource

MAX_CONCURRENCY = 1000
"""The most children of one fan-out running at once (a YAML ``for_each``'s ``max_parallel``)."""


@dataclass(frozen=True)
class ItemTask:
    """The one Task of a distributed Map's ItemProcessor."""

    name: str
    state: dict[str, Any]

    @property
    def invokes(self) -> bool:
        """Whether it is ``lambda:invoke`` (FunctionName and Payload in its Parameters)."""
        return resource(self.state) == tasks.LAMBDA_INVOKE


def item_task(map_state: dict[str, Any], language: str, counted: bool) -> ItemTask | None:
    """The Task a distributed Map runs per item, when it can be one fan-out (None: the Map runs
    inline)."""
    processor = map_state.get("ItemProcessor") or {}
    config = processor.get("ProcessorConfig") or {}
    states = processor.get("States") or {}
    if config.get("Mode") != "DISTRIBUTED" or len(states) != 1 or counted:
        return None
    ((name, state),) = states.items()
    if (
        state.get("Type") != "Task"
        or not state.get("End")
        or state.get("Catch")
        or len(state.get("Retry") or []) > 1
        or state.get("QueryLanguage", language) != "JSONPath"
        or not tasks.names_function(resource(state))
    ):
        return None
    return ItemTask(str(name), state)


Render = Callable[[Any, Any, dict[str, Any]], Any]
"""``(template, data, context) -> value``: a payload template rendered over an item."""
Contexts = Callable[[int], dict[str, Any]]
"""The context object (``$$``) of the item at an index: made when a template needs it, so
a Map of 100,000 items never holds 100,000 of them."""


def payloads(
    task: ItemTask, inputs: list[Any], contexts: Contexts, render: Render
) -> tuple[str, list[Any]] | None:
    """The function the items call and each item's event (None: lambda:invoke names a
    function that differs between items, which one fan-out cannot do)."""
    state = task.state
    events = []
    for index, given in enumerate(inputs):
        context = contexts(index)
        effective = paths.read_field(state, "InputPath", given, context)
        if "Parameters" in state:
            effective = render(state["Parameters"], effective, context)
        events.append(effective)
    if not task.invokes:
        return tasks.function_of(resource(state)), events
    names = {e.get("FunctionName") if isinstance(e, dict) else None for e in events}
    if len(names) != 1 or not isinstance(next(iter(names)), str):
        return None
    (function,) = names
    return tasks.function_of(str(function)), [e.get("Payload") for e in events]


def outputs(
    task: ItemTask,
    inputs: list[Any],
    contexts: Contexts,
    results: list[Any],
    render: Render,
) -> list[Any]:
    """Each item's output from its function's result (a tolerated failure stays as it is)."""
    state = task.state
    found: list[Any] = []
    for index, (given, result) in enumerate(zip(inputs, results, strict=True)):
        if isinstance(result, FailedItem):
            found.append(result)
            continue
        value = result
        context = contexts(index)
        if task.invokes:
            value = tasks.invoke_result(result)
        if "ResultSelector" in state:
            value = render(state["ResultSelector"], value, context)
        merged = paths.write(paths.result_path(state), given, value)
        found.append(paths.read_field(state, "OutputPath", merged, context))
    return found
