"""Step Functions machines as Stepwell YAML (``stepwell asl import``), where the YAML says the
same thing.

Over 500 lines: one small translation per state type, all sharing the rules for paths and
parameters.

A machine hands one JSON value from state to state (InputPath, Parameters, ResultSelector,
ResultPath, OutputPath); a YAML step reads the run's input and earlier steps' outputs by name.
So each state's data is followed as YAML expressions would name it (:data:`Data`): ``input``,
``steps.validate.output``, constants, or an object made of those. A Task's input becomes the
template of its data, a Pass only changes the data, and the data the machine ends with is the
run's ``output``.

What the YAML cannot say the same way stays ASL, and :func:`convert` says why, per state and
located in the file. Nothing is guessed: a machine with one such state is not converted at all
(it runs as it is).
"""

from __future__ import annotations

import io
import json
import re
from dataclasses import dataclass
from typing import Any

from ruamel.yaml import YAML

from stepwell.asl import names, paths
from stepwell.asl.loader import plain_document
from stepwell.asl.symbolic import (
    UNKNOWN,
    Arr,
    Const,
    Data,
    Expr,
    Hidden,
    Obj,
    Refused,
    Where,
    evaluate,
    expression,
    render,
    template,
    write,
)
from stepwell.asl.tasks import (
    LAMBDA_INVOKE,
    PUT_EVENTS,
    START_EXECUTION,
    TOKEN_SUFFIX,
    engine_retry,
)
from stepwell.definition.errors import PathPart, Problem, SourceMap
from stepwell.definition.models import WORKFLOW_NAME

# -- the machine, state by state ------------------------------------------------------------

CHOICE = (
    "a Choice: Stepwell YAML skips steps (a condition step and `when`) rather than sending "
    "each branch's data on to where the branches meet; not converted"
)
CHOICE_LOOP = "a Choice loop: Stepwell YAML is a DAG (each step runs once per run)"
LOOP = "a loop back to this state: Stepwell YAML is a DAG (each step runs once per run)"
JOIN = (
    "reached from two states (paths meet here): a YAML step has one input, and it would "
    "depend on which path ran; not converted"
)
FAIL = (
    "a Fail state: a YAML run fails with the error of the step that failed, and has no step "
    "that ends it with an error of its own"
)
TOKEN = (
    "a task token (.waitForTaskToken): a YAML callback step announces its own "
    "callback.requested event, not this Task's call with $$.Task.Token"
)
JSONATA = (
    "JSONata: its expressions read $states and the machine's variables, which YAML expressions "
    "do not have; not converted"
)


@dataclass
class Conversion:
    """What :func:`convert` made of a machine: the YAML workflow (None when a state stays
    ASL), why states stay ASL, and the machine's states (in branches and Maps too)."""

    workflow: dict[str, Any] | None
    problems: list[Problem]
    states: list[str]


@dataclass
class _Walked:
    """A path through the states that ended (End or Succeed): its data, and the steps that
    succeeded when it is the one that ran."""

    data: Data
    last: list[str]
    state: str
    at: tuple[PathPart, ...]


@dataclass
class _Handler:
    """A Catch to walk once the states it does not catch for have been: its Next, the data it
    gets, and the YAML catch rule whose ``then`` its first steps are."""

    start: str
    data: Data
    rule: dict[str, Any]
    known: bool
    state: str
    at: tuple[PathPart, ...]


def convert(document: Any, source: SourceMap, name: str) -> Conversion:
    """The Stepwell YAML workflow of a checked machine (the document as loaded, ``source``
    locating its parts), named ``name``; or why it stays ASL."""
    machine = plain_document(document)
    states = _names(machine)
    if machine.get("QueryLanguage") == "JSONata":
        return Conversion(None, [source.problem(("QueryLanguage",), JSONATA)], states)
    into = _Importer(source, machine, name)
    walked = into.chain(machine["States"], (), machine["StartAt"], Expr("input"), [], True)
    endings = [walked] if walked is not None else []
    while into.handlers:
        endings += into.handle(into.handlers.pop(0))
    output = into.output(endings)
    if not into.steps and not into.problems:
        into.problems.append(
            source.problem(("StartAt",), "no state runs anything: a YAML workflow needs a step")
        )
    problems = sorted(set(into.problems), key=lambda p: (p.line, p.col, p.message))
    if problems:
        return Conversion(None, problems, states)
    workflow: dict[str, Any] = {"name": name}
    if machine.get("Comment"):
        workflow["description"] = machine["Comment"]
    if "TimeoutSeconds" in machine:
        workflow["timeout"] = duration(machine["TimeoutSeconds"])
    workflow["steps"] = into.steps
    workflow["output"] = output
    return Conversion(workflow, [], states)


def to_yaml(workflow: dict[str, Any], machine_file: str) -> str:
    """The text of a converted workflow, saying which machine file it came from."""
    yaml = YAML(typ="rt")
    yaml.width = 4096  # an expression stays on its line
    yaml.indent(mapping=2, sequence=4, offset=2)
    out = io.StringIO()
    out.write(f"# Converted from {machine_file} by `stepwell asl import`.\n")
    yaml.dump(workflow, out)
    return out.getvalue()


class _Importer:
    def __init__(self, source: SourceMap, machine: dict[str, Any], name: str) -> None:
        self.source = source
        self.machine = machine
        self.name = name
        self.steps: dict[str, dict[str, Any]] = {}
        self.problems: list[Problem] = []
        self.handlers: list[_Handler] = []
        self.seen: set[tuple[PathPart, ...]] = set()
        self.loops = _loops(machine, ())

    def refuse(self, state: str, at: tuple[PathPart, ...], refused: Refused) -> None:
        if refused.why is None:
            return
        if refused.state is not None:
            state, at = refused.state
        self.problems.append(self.source.problem((*at, *refused.where), refused.why, step=state))

    def chain(
        self,
        states: dict[str, Any],
        at: tuple[PathPart, ...],
        start: str,
        data: Data,
        after: list[str],
        top: bool,
        known: bool = True,
    ) -> _Walked | None:
        """The states from ``start`` on, each after the steps before it, until one ends the
        machine (or branch); None when one stays ASL (the rest are checked all the same)."""
        name = start
        while True:
            here = (*at, "States", name)
            state = states[name]
            if here in self.seen:
                if known:
                    self.refuse(name, here, Refused(LOOP if here in self.loops else JOIN))
                return None
            self.seen.add(here)
            try:
                following, data, after = self.state(name, state, here, data, after, top, known)
            except Refused as refused:
                self.refuse(name, here, refused)
                for inner, inner_at in _inner(state, here):
                    self.chain(
                        inner["States"], inner_at, inner["StartAt"], UNKNOWN, [], False, False
                    )
                for target in _targets(state):
                    if (*at, "States", target) not in self.seen:
                        self.chain(states, at, target, UNKNOWN, [], top, False)
                return None
            if following is None:
                return _Walked(data, after, name, here)
            name = following

    def state(
        self,
        name: str,
        state: dict[str, Any],
        here: tuple[PathPart, ...],
        data: Data,
        after: list[str],
        top: bool,
        known: bool,
    ) -> tuple[str | None, Data, list[str]]:
        """One state: the next state's name (None: the end), its data and the steps it waits
        for."""
        kind = state["Type"]
        if state.get("QueryLanguage") == "JSONata":
            raise Refused(JSONATA, ("QueryLanguage",))
        if kind == "Choice":
            raise Refused(CHOICE_LOOP if here in self.loops else CHOICE)
        if kind == "Fail":
            raise Refused(FAIL)
        if kind == "Task":
            _resource(state)  # a task token is the reason, whatever its Parameters read
        for key in ("InputPath", "OutputPath"):
            if key in state and state[key] is None:
                raise Refused(f"{key} null (an empty object): not converted", (key,))
        following = None if state.get("End") or kind == "Succeed" else state.get("Next")
        where = Where(name, "InputPath")
        effective = evaluate(state["InputPath"], data, where) if "InputPath" in state else data
        if kind == "Map" and "Parameters" in state:
            raise Refused(
                "Parameters on a Map: Step Functions renders them per item (the old name of "
                "ItemSelector); rename them ItemSelector",
                ("Parameters",),
            )
        if "Parameters" in state:
            effective = render(state["Parameters"], effective, Where(name, "Parameters"))
        if kind in ("Succeed", "Wait"):
            if kind == "Wait":
                fields = {"type": "delay", **_wait(name, state, effective)}
                after = [self.add(step_id(name, self.steps), state, fields, after)]
            return following, self.output_path(name, state, effective), after
        if kind == "Pass":
            result: Data = Const(state["Result"]) if "Result" in state else effective
        elif kind == "Task":
            result, after = self.task(name, state, here, data, effective, after, top, known)
        elif kind == "Parallel":
            result, after = self.parallel(name, state, here, effective, after, known)
        else:
            result, after = self.map(name, state, here, effective, after)
        if "ResultSelector" in state:
            result = render(state["ResultSelector"], result, Where(name, "ResultSelector"))
        merged = write(data, paths.result_path(state), result)
        return following, self.output_path(name, state, merged), after

    def output_path(self, name: str, state: dict[str, Any], data: Data) -> Data:
        if "OutputPath" not in state:
            return data
        return evaluate(state["OutputPath"], data, Where(name, "OutputPath"))

    def add(self, key: str, state: dict[str, Any], fields: dict[str, Any], after: list[str]) -> str:
        """Step ``key`` for a state, after the steps ``after``; its id."""
        step: dict[str, Any] = {"type": fields.pop("type")} if "type" in fields else {}
        if state.get("Comment"):
            step["description"] = state["Comment"]
        if after:
            step["depends_on"] = after[0] if len(after) == 1 else list(after)
        step.update(fields)
        self.steps[key] = step
        return key

    def task(
        self,
        name: str,
        state: dict[str, Any],
        here: tuple[PathPart, ...],
        data: Data,
        effective: Data,
        after: list[str],
        top: bool,
        known: bool,
    ) -> tuple[Data, list[str]]:
        resource = _resource(state)
        if state.get("Catch") and not top:
            raise Refused(
                "Catch inside a Parallel branch or a Map: YAML catch rules send a failure on to "
                "other steps of the run, not within a branch; not converted",
                ("Catch",),
            )
        retry = _retry(state)
        errors = [
            [_caught(error, index) for error in catcher["ErrorEquals"]]
            for index, catcher in enumerate(state.get("Catch") or [])
        ]
        key = step_id(name, self.steps)
        output = Expr(f"steps.{key}.output")
        fields, result = self.call(resource, effective, output)
        if retry:
            fields["retry"] = retry
        if "TimeoutSeconds" in state:
            fields["timeout"] = duration(state["TimeoutSeconds"])
        rules: list[dict[str, Any]] = []
        for index, catcher in enumerate(state.get("Catch") or []):
            rule = {"errors": errors[index], "then": []}
            rules.append(rule)
            error = Hidden(
                f"reads the error of state {name!r} ({{Error, Cause}}), which YAML gives as "
                f"steps.{key}.error ({{type, message}}); not converted"
            )
            given = write(data, paths.result_path(catcher), error)
            at = (*here, "Catch", index)
            self.handlers.append(_Handler(str(catcher["Next"]), given, rule, known, name, at))
        if rules:
            fields["catch"] = rules
        return result, [self.add(key, state, fields, after)]

    def call(self, resource: str, effective: Data, output: Expr) -> tuple[dict[str, Any], Data]:
        """A Task's step fields for its resource, and its result."""
        if resource == LAMBDA_INVOKE:
            given = _fields(effective, resource, {"FunctionName", "Payload"})
            function = given.get("FunctionName")
            if not isinstance(function, Const) or not isinstance(function.value, str):
                raise Refused("FunctionName is not a constant; not converted", ("Parameters",))
            payload = given.get("Payload", Const(None))
            result: dict[str, Data] = {"ExecutedVersion": Const("$LATEST"), "Payload": output}
            result["StatusCode"] = Const(200)
            return {"function": function.value, "input": _input(payload)}, Obj(result)
        if resource == PUT_EVENTS:
            return _notify(effective), Hidden(
                "reads the answer of events:putEvents, which a YAML notify step does not give; "
                "not converted"
            )
        if resource.startswith(START_EXECUTION):
            return self.child(resource, effective, output)
        return {"function": resource, "input": _input(effective)}, output

    def child(self, resource: str, effective: Data, output: Expr) -> tuple[dict[str, Any], Data]:
        if not resource.endswith(".sync:2"):
            raise Refused(
                f"{resource}: the child's output comes as a JSON string, which a YAML workflow "
                "step does not make (use .sync:2, which gives it as JSON)",
                ("Resource",),
            )
        given = _fields(effective, resource, {"StateMachineArn", "Input"})
        arn = given.get("StateMachineArn")
        if not isinstance(arn, Const) or not isinstance(arn.value, str):
            raise Refused("StateMachineArn is not a constant; not converted", ("Parameters",))
        workflow = names.workflow_name(arn.value.rsplit(":", 1)[-1])
        if not WORKFLOW_NAME.match(workflow) or workflow == self.name:
            raise Refused(
                f"StateMachineArn names {workflow!r}, which a YAML workflow step cannot start",
                ("Parameters",),
            )
        child_input = given.get("Input", Const({}))
        if isinstance(child_input, Const) and isinstance(child_input.value, str):
            child_input = Const(_json(child_input.value, "Input"))
        result = Obj(
            {
                "Input": child_input,
                "InputDetails": Const({"Included": True}),
                "Output": output,
                "OutputDetails": Const({"Included": True}),
                "StateMachineArn": Const(arn.value),
                "Status": Const("SUCCEEDED"),
            }
        )
        return {"type": "workflow", "workflow": workflow, "input": _input(child_input)}, result

    def parallel(
        self,
        name: str,
        state: dict[str, Any],
        here: tuple[PathPart, ...],
        effective: Data,
        after: list[str],
        known: bool,
    ) -> tuple[Data, list[str]]:
        for key in ("Retry", "Catch"):
            if key in state:
                raise Refused(
                    f"{key} on a Parallel: YAML retries and catches a step, not a group of steps",
                    (key,),
                )
        results: list[Data] = []
        ends: list[str] = []
        whole = True
        for index, branch in enumerate(state["Branches"]):
            at = (*here, "Branches", index)
            walked = self.chain(
                branch["States"], at, branch["StartAt"], effective, after, False, known
            )
            if walked is None:
                whole = False
                continue
            results.append(walked.data)
            ends += walked.last
        if not whole:
            raise Refused(None)
        return Arr(tuple(results)), list(dict.fromkeys(ends))

    def map(
        self,
        name: str,
        state: dict[str, Any],
        here: tuple[PathPart, ...],
        effective: Data,
        after: list[str],
    ) -> tuple[Data, list[str]]:
        for key in ("Retry", "Catch"):
            if key in state:
                raise Refused(
                    f"{key} on a Map: a YAML for_each step retries each item, and catches "
                    "ForEachFailed rather than the item's error; not converted",
                    (key,),
                )
        processor_key = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        processor = state[processor_key]
        config = processor.get("ProcessorConfig") or {}
        if config.get("Mode") == "DISTRIBUTED":
            raise Refused("a distributed Map: not converted", (processor_key, "ProcessorConfig"))
        inner_states = processor["States"]
        if len(inner_states) != 1 or next(iter(inner_states.values()))["Type"] != "Task":
            raise Refused(
                f"an {processor_key} that is not one Task: a YAML for_each step runs one step "
                "per item; not converted",
                (processor_key,),
            )
        ((inner_name, inner),) = inner_states.items()
        inner_at = (*here, processor_key, "States", inner_name)
        self.seen.add(inner_at)
        where = Where(name, "ItemsPath")
        items = (
            evaluate(state["ItemsPath"], effective, where) if "ItemsPath" in state else effective
        )
        child: Data = Expr("item")
        if "ItemSelector" in state:
            child = render(state["ItemSelector"], effective, Where(name, "ItemSelector", True))
        fields: dict[str, Any] = {"for_each": "${" + expression(items) + "}"}
        fields["max_parallel"] = min(int(state.get("MaxConcurrency") or 1000), 1000)
        if "ToleratedFailurePercentage" in state:
            fields["tolerated_failures"] = f"{float(state['ToleratedFailurePercentage']):g}%"
        elif state.get("ToleratedFailureCount"):
            fields["tolerated_failures"] = int(state["ToleratedFailureCount"])
        try:
            fields.update(_item_task(inner_name, inner, child))
        except Refused as refused:
            refused.state = refused.state or (inner_name, inner_at)
            raise
        key = step_id(name, self.steps)
        self.add(key, state if state.get("Comment") else inner, fields, after)
        return Expr(f"steps.{key}.output"), [key]

    def handle(self, handler: _Handler) -> list[_Walked]:
        """Walk a Catch's states; its first steps are its rule's ``then``."""
        before = len(self.steps)
        states = self.machine["States"]
        walked = self.chain(states, (), handler.start, handler.data, [], True, handler.known)
        first = [key for key in list(self.steps)[before:] if "depends_on" not in self.steps[key]]
        handler.rule["then"] = first[0] if len(first) == 1 else first
        if not first and walked is not None:
            self.refuse(
                handler.state,
                handler.at,
                Refused(
                    f"Catch to {handler.start!r}, which runs no step: YAML could not tell the "
                    "run's output from the other way's; not converted"
                ),
            )
            return []
        return [walked] if walked is not None else []

    def output(self, endings: list[_Walked]) -> Any:
        """The run's output: the data of the path that ran (a Catch's, when its last steps
        succeeded)."""
        rendered: list[Any] = []
        for ending in endings:
            try:
                data = ending.data
                rendered.append(template(data) if len(endings) == 1 else expression(data))
            except Refused as refused:
                self.refuse(ending.state, ending.at, refused)
        if len(rendered) != len(endings) or not endings:
            return None
        if len(endings) == 1:
            return rendered[0]
        text = rendered[0]
        for index, (ending, other) in enumerate(zip(endings[1:], rendered[1:], strict=True)):
            ran = " and ".join(f'steps.{key}.status = "succeeded"' for key in ending.last)
            text = f"{ran} ? {other} : {f'({text})' if index else text}"
        return "${" + text + "}"


def _item_task(name: str, task: dict[str, Any], item: Data) -> dict[str, Any]:
    """The step fields of a Map's one Task, run per item (its input rendered over ``item``)."""
    for key in ("ResultSelector", "ResultPath", "OutputPath", "Catch", "QueryLanguage"):
        if key in task:
            raise Refused(
                f"{key} in a Map's item Task: a YAML for_each step's output is its items' "
                "results as the function returns them; not converted",
                (key,),
            )
    resource = _resource(task)
    if resource.startswith("arn:aws:states:::"):
        raise Refused(
            f"{resource} per item: a YAML for_each step here runs a function per item",
            ("Resource",),
        )
    fields: dict[str, Any] = {"function": resource}
    retry = _retry(task)
    if "InputPath" in task:
        item = evaluate(task["InputPath"], item, Where(name, "InputPath", True))
    if "Parameters" in task:
        item = render(task["Parameters"], item, Where(name, "Parameters", True))
    if item != Expr("item"):  # without input, a for_each child's input is its item
        fields["input"] = _input(item)
    if retry:
        fields["retry"] = retry
    if "TimeoutSeconds" in task:
        fields["timeout"] = duration(task["TimeoutSeconds"])
    return fields


def _wait(name: str, state: dict[str, Any], effective: Data) -> dict[str, Any]:
    if "Seconds" in state:
        return {"duration": duration(state["Seconds"])}
    if "Timestamp" in state:
        return {"until": state["Timestamp"]}
    if "TimestampPath" in state:
        until = evaluate(state["TimestampPath"], effective, Where(name, "TimestampPath"))
        return {"until": "${" + expression(until) + "}"}
    raise Refused(
        "SecondsPath: a YAML delay's duration is written in the file, not read from the data; "
        "not converted",
        ("SecondsPath",),
    )


def _notify(effective: Data) -> dict[str, Any]:
    entries = _fields(effective, PUT_EVENTS, {"Entries"}).get("Entries")
    if not isinstance(entries, Arr) or len(entries.items) != 1:
        raise Refused(
            "Entries that are not one event: a YAML notify step puts one event", ("Parameters",)
        )
    entry = _fields(
        entries.items[0], PUT_EVENTS, {"Source", "DetailType", "Detail", "EventBusName"}
    )
    source = entry.get("Source", Const("stepwell"))
    if not isinstance(source, Const) or not isinstance(source.value, str):
        raise Refused("Source is not a constant: a YAML notify step's source is", ("Parameters",))
    detail = entry.get("Detail", Const(None))
    if isinstance(detail, Const) and isinstance(detail.value, str):
        detail = Const(_json(detail.value, "Detail"))
    fields = {"type": "notify", "detail_type": template(entry.get("DetailType", Const("")))}
    fields["source"] = source.value
    if detail != Const(None):
        fields["detail"] = template(detail)
    return fields


def _fields(data: Data, resource: str, allowed: set[str]) -> dict[str, Data]:
    if not isinstance(data, Obj) or data.base is not None:
        raise Refused(f"{resource} given its fields by a path; not converted", ("Parameters",))
    extra = sorted(set(data.fields) - allowed)
    if extra:
        raise Refused(
            f"{resource} with {', '.join(extra)}: a YAML step has no such field; not converted",
            ("Parameters",),
        )
    return data.fields


def _input(data: Data) -> Any:
    if data == Const(None):
        raise Refused(
            "its input is null: a YAML step given no input gets the run's input; not converted"
        )
    return template(data)


def _json(text: str, field: str) -> Any:
    try:
        return json.loads(text)
    except ValueError:
        raise Refused(
            f"{field} is a string that is not JSON; not converted", ("Parameters",)
        ) from None


def _resource(state: dict[str, Any]) -> str:
    resource = names.resource(state)
    if resource.endswith(TOKEN_SUFFIX):
        raise Refused(TOKEN, ("Resource",))
    if "HeartbeatSeconds" in state:
        raise Refused(
            "HeartbeatSeconds on a Task with no task token: a YAML task's heartbeat is its "
            "function calling ctx.heartbeat(); not converted",
            ("HeartbeatSeconds",),
        )
    return resource


def _retry(state: dict[str, Any]) -> dict[str, Any] | None:
    """A Task's one retrier as the YAML retry policy (the mapping the machine itself uses)."""
    retriers = state.get("Retry") or []
    if len(retriers) > 1:
        raise Refused(
            f"{len(retriers)} retriers: a YAML step has one retry policy (one backoff); "
            "not converted",
            ("Retry",),
        )
    policy = engine_retry(retriers)
    if policy is None:
        return None
    if policy["max_attempts"] > 100 or policy["backoff_rate"] > 10:
        raise Refused(
            "Retry beyond YAML's bounds (MaxAttempts up to 99, BackoffRate up to 10)", ("Retry",)
        )
    for key in ("interval", "max_interval"):
        if key in policy:
            policy[key] = duration(float(policy[key].removesuffix("s")))
    order = ("max_attempts", "interval", "backoff_rate", "max_interval", "jitter", "retry_on")
    return {key: policy[key] for key in (*order, "non_retryable") if key in policy}


def _caught(error: str, index: int) -> str:
    if error == "States.ALL":
        return "*"
    if error == "States.Timeout":
        return "StepTimedOut"
    if error.startswith("States."):
        raise Refused(
            f"Catch on {error}: YAML catch rules name errors, and have no {error}; not converted",
            ("Catch", index),
        )
    return error


def _targets(state: dict[str, Any]) -> list[str]:
    """The states a state can go on to."""
    found = [state.get("Next"), state.get("Default")]
    found += [rule.get("Next") for rule in state.get("Choices") or []]
    found += [catcher.get("Next") for catcher in state.get("Catch") or []]
    return [str(target) for target in found if target is not None]


def _inner(
    state: dict[str, Any], here: tuple[PathPart, ...]
) -> list[tuple[dict[str, Any], tuple[PathPart, ...]]]:
    """A Parallel's branches and a Map's item processor, with where they are."""
    found = [
        (branch, (*here, "Branches", i)) for i, branch in enumerate(state.get("Branches") or [])
    ]
    for key in ("ItemProcessor", "Iterator"):
        if key in state:
            found.append((state[key], (*here, key)))
    return found


def _loops(machine: dict[str, Any], at: tuple[PathPart, ...]) -> set[tuple[PathPart, ...]]:
    """The states (as paths) from which the machine can come back to them."""
    states: dict[str, Any] = machine["States"]
    found: set[tuple[PathPart, ...]] = set()
    for name, state in states.items():
        todo, reached = list(_targets(state)), set()
        while todo:
            target = todo.pop()
            if target not in reached and target in states:
                reached.add(target)
                todo += _targets(states[target])
        if name in reached:
            found.add((*at, "States", name))
        for inner, inner_at in _inner(state, (*at, "States", name)):
            found |= _loops(inner, inner_at)
    return found


def _names(machine: dict[str, Any]) -> list[str]:
    found: list[str] = []
    for name, state in machine["States"].items():
        found.append(name)
        for inner, _ in _inner(state, ()):
            found += _names(inner)
    return found


def step_id(state: str, taken: dict[str, Any]) -> str:
    """A state's name as a step id: ``ReserveItem`` -> ``reserve_item``, ``Large order?`` ->
    ``large_order`` (``_2`` and on when taken)."""
    words = re.sub(r"(?<=[a-z0-9])(?=[A-Z])", "_", state)
    key = re.sub(r"[^A-Za-z0-9]+", "_", words).strip("_").lower() or "state"
    if key[0].isdigit():
        key = f"state_{key}"
    found, n = key, 1
    while found in taken:
        n += 1
        found = f"{key}_{n}"
    return found


def duration(seconds: float) -> str:
    """Seconds as a YAML duration: ``3600`` -> ``1h``, ``90`` -> ``1m30s``."""
    if seconds != int(seconds) or seconds <= 0:
        return f"{seconds:g}s"
    rest, text = int(seconds), ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        if rest >= size:
            text += f"{rest // size}{unit}"
            rest %= size
    return text
