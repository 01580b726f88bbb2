"""Checking a Step Functions machine before it runs, as Step Functions' validator does: each
problem located ``FILE:LINE:COL`` with the state and the field, and the fix (unknown fields, a
missing or dangling ``Next`` / ``StartAt`` / ``Default``, states nothing reaches, a Choice rule
that is not one, paths that are not JSONPath, expressions that do not compile, resources
Stepwell does not run, with the ones it does).

Over 500 lines: one check per Amazon States Language field family, sharing the path rules.
"""

from __future__ import annotations

import difflib
import re
from dataclasses import replace
from typing import Any

from stepwell.asl import choice, fields, jsonata, paths, s3_map
from stepwell.asl.names import INTEGRATIONS, resource
from stepwell.asl.tasks import (
    AWS_SDK,
    LAMBDA_INVOKE,
    PUT_EVENTS,
    START_EXECUTION,
    TOKEN_SUFFIX,
    service_call,
)
from stepwell.definition import jobs, services
from stepwell.definition.errors import PathPart, Problem, SourceMap
from stepwell.definition.models import ROLE_ARN

COMMON = {"Type", "Comment", "InputPath", "OutputPath", "Next", "End", "Assign"}
FIELDS: dict[str, set[str]] = {
    "Pass": COMMON | {"Result", "ResultPath", "Parameters"},
    "Task": COMMON
    | {"Resource", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"}
    | {"TimeoutSeconds", "HeartbeatSeconds", "TimeoutSecondsPath", "HeartbeatSecondsPath"}
    | {"Credentials"},
    "Choice": {"Type", "Comment", "InputPath", "OutputPath", "Choices", "Default", "Assign"},
    "Wait": COMMON | {"Seconds", "Timestamp", "SecondsPath", "TimestampPath"},
    "Succeed": {"Type", "Comment", "InputPath", "OutputPath"},
    "Fail": {"Type", "Comment", "Error", "Cause", "ErrorPath", "CausePath"},
    "Parallel": COMMON
    | {"Branches", "Parameters", "ResultSelector", "ResultPath", "Retry", "Catch"},
    "Map": COMMON
    | {"ItemsPath", "ItemSelector", "Parameters", "ItemProcessor", "Iterator", "MaxConcurrency"}
    | {"MaxConcurrencyPath", "ToleratedFailureCount", "ToleratedFailurePercentage"}
    | {"ItemReader", "ResultWriter"}
    | {"ToleratedFailureCountPath", "ToleratedFailurePercentagePath", "ItemBatcher", "Label"}
    | {"ResultSelector", "ResultPath", "Retry", "Catch"},
}
TOP = {"Comment", "StartAt", "States", "TimeoutSeconds", "Version", "QueryLanguage"}
RESOURCES = (
    "a function of template.yaml: its logical id, its name, its ARN (of any partition and "
    "account: locally, the template's function of that name)",
    f"{LAMBDA_INVOKE} with FunctionName and Payload",
    f"{PUT_EVENTS} with Entries (on the stack's bus)",
    f"{START_EXECUTION} with StateMachineArn naming a workflow (a run of its own), and "
    ".sync or .sync:2 (a child run, waited for)",
    f"{AWS_SDK}SERVICE:ACTION for any service and action boto3 knows",
    "the optimized dynamodb:getItem, putItem, updateItem, deleteItem, sns:publish, "
    "sqs:sendMessage and bedrock:invokeModel, the HTTP Task http:invoke and apigateway:invoke",
    f"the jobs of {', '.join(f'{s}:{a}.sync' for s, a in jobs.JOBS)} (started, then awaited)",
    f"any of these with {TOKEN_SUFFIX}, and {START_EXECUTION}{TOKEN_SUFFIX}",
)
STARTS = {f"{START_EXECUTION}{suffix}" for suffix in ("", ".sync", ".sync:2", TOKEN_SUFFIX)}
"""The forms of startExecution Stepwell runs (Step Functions refuses ``.sync`` with
``.waitForTaskToken``)."""
NOT_RUN = "is not run by Stepwell"


def check(document: Any, source: SourceMap) -> list[Problem]:
    """Every problem of a machine's document."""
    if not isinstance(document, dict):
        return [source.problem((), "a state machine is a JSON object with StartAt and States")]
    problems = [
        source.problem((key,), f"unknown field {key!r} (fields: {', '.join(sorted(TOP))})")
        for key in document
        if key not in TOP
    ]
    language = document.get("QueryLanguage", "JSONPath")
    if language not in LANGUAGES:
        problems.append(source.problem(("QueryLanguage",), "QueryLanguage is JSONPath or JSONata"))
        language = "JSONPath"
    problems += [
        source.problem(where, message, field=".".join(str(p) for p in where))
        for where, message in fields.machine_types(document, str(language))
    ]
    problems += _machine(document, (), source, str(language))
    return _what_runs(sorted(problems, key=lambda p: (p.line, p.col)))


def _machine(
    document: Any, at: tuple[PathPart, ...], source: SourceMap, language: str = "JSONPath"
) -> list[Problem]:
    """StartAt, States and every state of a machine, a branch or an item processor."""
    problems: list[Problem] = []
    states = document.get("States") if isinstance(document, dict) else None
    if not isinstance(states, dict) or not states:
        return [source.problem(at, "needs States: an object of the states by name")]
    start = document.get("StartAt")
    if start not in states:
        where = (*at, "StartAt") if "StartAt" in document else at
        problems.append(source.problem(where, _no_state(f"StartAt {start!r}", start, states)))
    for name, state in states.items():
        problems += _state(str(name), state, states, (*at, "States", name), source, language)
    problems += _unreachable(start, states, at, source)
    return problems


def _state(
    name: str,
    state: Any,
    states: dict[str, Any],
    at: tuple[PathPart, ...],
    source: SourceMap,
    language: str = "JSONPath",
) -> list[Problem]:
    def problem(field: tuple[PathPart, ...], message: str) -> Problem:
        where = (*at, *field) if field and _has(state, field) else at
        label = ".".join(str(f) for f in field) if field else None
        return source.problem(where, message, step=name, field=label)

    if not isinstance(state, dict) or state.get("Type") not in FIELDS:
        return [problem(("Type",), f"Type must be one of {', '.join(FIELDS)}")]
    kind = str(state["Type"])
    language = str(state.get("QueryLanguage", language))
    if language == "JSONata":
        return _jsonata_state(name, state, states, at, source, problem)
    problems = [
        problem((key,), _unknown(key, kind))
        for key in state
        if key not in FIELDS[kind] | {"QueryLanguage"}
    ]
    ends = kind in ("Choice", "Succeed", "Fail")
    if not ends and ("Next" in state) == bool(state.get("End")):
        problems.append(problem(("Next",), "give exactly one of Next or End: true"))
    targets: list[tuple[tuple[PathPart, ...], Any]] = [
        (("Next",), state.get("Next")),
        (("Default",), state.get("Default")),
    ]
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict):
            targets.append((("Catch", index, "Next"), catcher.get("Next")))
    if kind == "Choice":
        rules = state.get("Choices")
        if not isinstance(rules, list) or not rules:
            problems.append(problem(("Choices",), "a Choice state needs a non-empty Choices list"))
            rules = []
        for index, rule in enumerate(rules):
            why = choice.check(rule) if isinstance(rule, dict) else "a rule is an object"
            if why is not None:
                problems.append(problem(("Choices", index), why))
            if isinstance(rule, dict) and "Next" not in rule:
                problems.append(problem(("Choices", index), "a top-level rule needs a Next"))
            elif isinstance(rule, dict):
                targets.append((("Choices", index, "Next"), rule["Next"]))
    for field, target in targets:
        if target is not None and target not in states:
            label = ".".join(str(f) for f in field)
            problems.append(problem(field, _no_state(f"{label} {target!r}", target, states)))
    for name_of_path in (
        "InputPath",
        "OutputPath",
        "ItemsPath",
        "SecondsPath",
        "TimestampPath",
        "TimeoutSecondsPath",
        "HeartbeatSecondsPath",
    ):
        value = state.get(name_of_path)
        if isinstance(value, str) and (why := paths.check(value)) is not None:
            problems.append(problem((name_of_path,), why))
    result_path = state.get("ResultPath")
    if isinstance(result_path, str) and (why := paths.check_reference(result_path)) is not None:
        problems.append(problem(("ResultPath",), why))
    if kind == "Task":
        problems += _resource(state, problem)
    problems += [problem(where, why) for where, why in fields.state_types(state, language)]
    problems += [problem(where, why) for where, why in fields.template_paths(state)]
    for index, catcher in enumerate(state.get("Catch") or []):
        path = catcher.get("ResultPath") if isinstance(catcher, dict) else None
        if isinstance(path, str) and (why := paths.check_reference(path)) is not None:
            problems.append(problem(("Catch", index, "ResultPath"), why))
    if kind == "Wait" and sum(k in state for k in FIELDS["Wait"] - COMMON) != 1:
        problems.append(
            problem((), "a Wait state needs one of Seconds, Timestamp, SecondsPath, TimestampPath")
        )
    if kind == "Parallel":
        for index, branch in enumerate(state.get("Branches") or []):
            problems += _machine(branch, (*at, "Branches", index), source, language)
    if kind == "Map":
        processor = "ItemProcessor" if "ItemProcessor" in state else "Iterator"
        problems += _machine(state.get(processor), (*at, processor), source, language)
        problems += _map(state, processor, problem)
    problems += _assign(state, problem)
    return problems


PROCESSOR = {"ProcessorConfig", "StartAt", "States", "Comment"}
BATCHER = {"MaxItemsPerBatch", "MaxItemsPerBatchPath", "MaxInputBytesPerBatch"}
BATCHER |= {"MaxInputBytesPerBatchPath", "BatchInput"}
MODES = ("INLINE", "DISTRIBUTED")


def _map(state: dict[str, Any], processor: str, problem: Any) -> list[Problem]:
    """A Map's ItemProcessor (its ProcessorConfig) and ItemBatcher."""
    problems = []
    inner = state.get(processor)
    if isinstance(inner, dict):
        problems += [
            problem(
                (processor, key),
                f"unknown field {key!r} of {processor} (fields: {', '.join(sorted(PROCESSOR))})",
            )
            for key in inner
            if key not in PROCESSOR
        ]
        config = inner.get("ProcessorConfig") or {}
        mode = config.get("Mode", "INLINE") if isinstance(config, dict) else None
        if mode not in MODES:
            problems.append(
                problem((processor, "ProcessorConfig", "Mode"), "Mode is INLINE or DISTRIBUTED")
            )
    batcher = state.get("ItemBatcher")
    if batcher is not None:
        if not isinstance(batcher, dict) or not BATCHER & set(batcher) - {"BatchInput"}:
            problems.append(
                problem(
                    ("ItemBatcher",),
                    "ItemBatcher needs MaxItemsPerBatch or MaxInputBytesPerBatch (or their "
                    "Path forms)",
                )
            )
        else:
            problems += [
                problem(("ItemBatcher", key), f"unknown field {key!r} of ItemBatcher")
                for key in batcher
                if key not in BATCHER
            ]
    for field, check in (
        ("ItemReader", s3_map.check_reader),
        ("ResultWriter", s3_map.check_writer),
    ):
        if field in state:
            problems += [problem((field, *where), why) for where, why in check(state[field])]
    return problems


_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def _assign(state: dict[str, Any], problem: Any) -> list[Problem]:
    """Variable names of an Assign (a state's, a Choice rule's, a Catch's) and their paths."""
    found: list[tuple[tuple[PathPart, ...], Any]] = [(("Assign",), state.get("Assign"))]
    for index, rule in enumerate(state.get("Choices") or []):
        if isinstance(rule, dict):
            found.append((("Choices", index, "Assign"), rule.get("Assign")))
    for index, catcher in enumerate(state.get("Catch") or []):
        if isinstance(catcher, dict):
            found.append((("Catch", index, "Assign"), catcher.get("Assign")))
    problems = []
    for where, assign in found:
        if assign is None:
            continue
        if not isinstance(assign, dict):
            problems.append(problem(where, "Assign is an object of variables by name"))
            continue
        for key, value in assign.items():
            name = str(key).removesuffix(".$")
            if not _NAME.match(name):
                problems.append(
                    problem(
                        (*where, key),
                        f"variable name {name!r}: letters, digits and _, not starting with a digit",
                    )
                )
            elif (
                str(key).endswith(".$")
                and isinstance(value, str)
                and (why := fields.reference(value))
            ):
                problems.append(problem((*where, key), why))
    return problems


LANGUAGES = ("JSONPath", "JSONata")
JSONPATH_ONLY = {
    "InputPath",
    "OutputPath",
    "Parameters",
    "ResultSelector",
    "ResultPath",
    "ItemsPath",
}
JSONATA_ONLY = {"Arguments", "Output", "Items"}


def _unknown(key: str, kind: str) -> str:
    if key in JSONATA_ONLY:
        return f"{key} is a JSONata field: set QueryLanguage: JSONata (on the machine or the state)"
    return f"unknown field {key!r} for a {kind} state"


def _jsonata_state(
    name: str,
    state: dict[str, Any],
    states: dict[str, Any],
    at: tuple[PathPart, ...],
    source: SourceMap,
    problem: Any,
) -> list[Problem]:
    """A state in JSONata: Arguments / Output / Assign instead of the paths, Condition rules,
    and ``{% %}`` expressions that compile."""
    kind = str(state["Type"])
    allowed = (FIELDS[kind] - JSONPATH_ONLY) | {"QueryLanguage", "Output", "Assign"}
    if kind in ("Task", "Pass", "Parallel"):
        allowed |= {"Arguments"}
    if kind == "Map":
        allowed |= {"Items", "Arguments"}
    problems = []
    for key in state:
        if key in JSONPATH_ONLY:
            problems.append(
                problem(
                    (key,),
                    f"{key} is a JSONPath field: a JSONata state uses Arguments, Output and Assign",
                )
            )
        elif key not in allowed:
            problems.append(problem((key,), f"unknown field {key!r} for a {kind} state"))
    why = jsonata.check(state)
    if why is not None:
        problems.append(problem((), f"an expression does not compile: {why}"))
    if kind not in ("Choice", "Succeed", "Fail") and ("Next" in state) == bool(state.get("End")):
        problems.append(problem(("Next",), "give exactly one of Next or End: true"))
    targets = [state.get("Next"), state.get("Default")]
    targets += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, dict)]
    for index, rule in enumerate(state.get("Choices") or [] if kind == "Choice" else []):
        if not isinstance(rule, dict) or "Condition" not in rule or "Next" not in rule:
            problems.append(
                problem(("Choices", index), "a JSONata rule has a Condition and a Next")
            )
        else:
            targets.append(rule["Next"])
    problems += [
        problem((), _no_state(repr(target), target, states))
        for target in targets
        if target is not None and target not in states
    ]
    if kind == "Task":
        problems += _resource(state, problem)
    problems += [problem(where, why) for where, why in fields.state_types(state, "JSONata")]
    for index, branch in enumerate(state.get("Branches") or []):
        problems += _machine(branch, (*at, "Branches", index), source, "JSONata")
    if kind == "Map":
        problems += _machine(state.get("ItemProcessor"), (*at, "ItemProcessor"), source, "JSONata")
    return problems


def _resource(state: dict[str, Any], problem: Any) -> list[Problem]:
    written = resource(state)
    if not written:
        return [problem(("Resource",), "a Task needs a Resource")]
    why = _refused(written)
    problems = [] if why is None else [problem(("Resource",), why)]
    field = "Arguments" if "Arguments" in state else "Parameters"
    given = state.get(field)
    call = service_call(written.removesuffix(TOKEN_SUFFIX))
    sdk = written.startswith(AWS_SDK) or services.optimized(*call)
    if jobs.synced(*call) is not None and written.startswith(INTEGRATIONS):
        sdk, call = True, (call[0], call[1].removesuffix(".sync"))
    if why is None and sdk and isinstance(given, dict):
        integration = "sdk" if written.startswith(AWS_SDK) else "optimized"
        problems += _sdk_parameters(call, given, field, problem, integration)
    if "Credentials" in state:
        problems += [problem(("Credentials", *w), why) for w, why in _credentials(state, sdk)]
    named: list[tuple[tuple[PathPart, ...], str]] = [(("Resource",), written)]
    if isinstance(given, dict) and isinstance(given.get("FunctionName"), str):
        named.append(((field, "FunctionName"), given["FunctionName"]))
    for where, value in named:
        if (pseudo := PSEUDO.search(value)) is not None:
            problems.append(
                problem(
                    where,
                    f"{value}: {pseudo[0]} is filled by CloudFormation, not in a machine's "
                    "file: write the function's ARN (of any account: locally the template's "
                    "function of that name), or its logical id for a step function",
                )
            )
    return problems


PSEUDO = re.compile(r"\$\{AWS::[A-Za-z]+\}")


SYNC_TOKEN = re.compile(r"\.sync(:2)?\.waitForTaskToken$")


def _refused(written: str) -> str | None:
    """Why a Task's Resource (in the ``aws`` partition) does not run, and what to do instead
    (None: it runs)."""
    base = written.removesuffix(TOKEN_SUFFIX)
    if base in (LAMBDA_INVOKE, PUT_EVENTS) or written in STARTS:
        return None
    if base.startswith(START_EXECUTION):
        if SYNC_TOKEN.search(written):
            return (
                f"{written} is not a Resource Step Functions accepts (.sync with "
                ".waitForTaskToken): use states:startExecution.sync:2 to wait for the child's "
                "end, or states:startExecution.waitForTaskToken to wait for its task token"
            )
        return (
            f"{written} is not a Resource Step Functions accepts: use "
            "states:startExecution (start and go on), .sync:2 to wait for the child's end, or "
            ".waitForTaskToken with $$.Task.Token in its Input"
        )
    if base.startswith(AWS_SDK):
        service, _, action = base.removeprefix(AWS_SDK).partition(":")
        try:
            services.operation(services.service_name(service), action)
        except services.UnknownCall as exc:
            return f"{written}: {exc}"
        return None
    if base.startswith(INTEGRATIONS) and jobs.synced(*service_call(base)) is not None:
        if written != base:
            return (
                f"{written} is not a Resource Step Functions accepts (.sync with "
                f".waitForTaskToken): use {base} to wait for the job's end"
            )
        return None
    if base.startswith(INTEGRATIONS) and services.optimized(*service_call(base)):
        service = service_call(base)[0]
        if written != base and service in services.TOKENLESS:
            return (
                f"{written} is not a Resource Step Functions accepts ({service} has no "
                f".waitForTaskToken): call it without, or send the token with sqs:sendMessage"
                f"{TOKEN_SUFFIX} or sns:publish{TOKEN_SUFFIX}"
            )
        return None
    if base.startswith(INTEGRATIONS):
        service, _, action = base.removeprefix(INTEGRATIONS).partition(":")
        sdk = f"{AWS_SDK}{service}:{action.split('.')[0]}"
        try:
            services.operation(services.service_name(service), action.split(".")[0])
        except services.UnknownCall:
            return (
                f"{written} {NOT_RUN} yet: call {service} from a function of template.yaml "
                "(with boto3) and name that function as the Resource"
            )
        if ".sync" in action:
            return (
                f"{written} {NOT_RUN} yet (Stepwell waits for the jobs of "
                f"{', '.join(f'{s}:{a}.sync' for s, a in jobs.JOBS)}): start the job "
                f"with {sdk} and wait for its end in a loop of a Wait, the service's call that "
                "describes the job and a Choice on its status"
            )
        return (
            f"{written} {NOT_RUN} yet: use {sdk}, the same call as an AWS SDK integration "
            "(its result is the API's response as it is), or call it from a function of "
            "template.yaml"
        )
    if ":states:" in base and ":activity:" in base:
        return (
            f"{written} is an activity, which {NOT_RUN}: do its work in a function of "
            "template.yaml and name that function as the Resource"
        )
    if base.startswith("arn:") and ":lambda:" not in base:
        return (
            f"{written} is not a Lambda function and {NOT_RUN}: name a function of "
            "template.yaml (its logical id, its name or its ARN)"
        )
    return None


def _sdk_parameters(
    call: tuple[str, str], given: dict[str, Any], field: str, problem: Any, integration: str
) -> list[Problem]:
    """Parameters the action does not take, refused as Step Functions refuses them when the
    machine is created (a JSONata ``Arguments`` string is checked when it runs)."""
    service, action = call
    unknown = services.unknown_parameters(service, action, given, integration)
    taken = services.parameter_names(service, action, integration)
    return [
        problem(
            (field, name),
            f"{service}:{action} takes no parameter {name!r}"
            + (f" (it takes {', '.join(taken)})" if taken else " (it takes none)"),
        )
        for name in unknown
    ]


def _what_runs(problems: list[Problem]) -> list[Problem]:
    """The first refused Resource of a file says what Stepwell runs; the others point at it
    (one line per state, and the list once)."""
    refused = [p for p in problems if p.field == "Resource" and NOT_RUN in p.message]
    if not refused:
        return problems
    first = refused[0]
    listed = replace(first, message=f"{first.message} (Stepwell runs " + "; ".join(RESOURCES) + ")")
    see = f" (what Stepwell runs: line {first.line})"
    return [
        listed if p is first else replace(p, message=p.message + see) if p in refused else p
        for p in problems
    ]


def _unreachable(
    start: Any, states: dict[str, Any], at: tuple[PathPart, ...], source: SourceMap
) -> list[Problem]:
    seen: set[str] = set()
    todo = [start] if start in states else []
    while todo:
        name = todo.pop()
        if name in seen or name not in states:
            continue
        seen.add(name)
        state = states[name] if isinstance(states[name], dict) else {}
        todo += [state.get("Next"), state.get("Default")]
        todo += [r.get("Next") for r in state.get("Choices") or [] if isinstance(r, dict)]
        todo += [c.get("Next") for c in state.get("Catch") or [] if isinstance(c, dict)]
    return [
        source.problem((*at, "States", name), "no state leads here (unreachable)", step=str(name))
        for name in states
        if name not in seen
    ]


def _has(state: Any, field: tuple[PathPart, ...]) -> bool:
    node = state
    for part in field:
        try:
            node = node[int(part)] if isinstance(node, list) else node[part]
        except (KeyError, IndexError, TypeError, ValueError):
            return False
    return True


def _credentials(state: dict[str, Any], calls: bool) -> list[tuple[tuple[str, ...], str]]:
    """A Task's ``Credentials``: one role (``RoleArn``, or ``RoleArn.$`` read from the input;
    in JSONata an expression), for a service call or a ``.sync`` job, which the runner makes
    (and checks) as that role."""
    given = state["Credentials"]
    if not isinstance(given, dict) or len(given) != 1 or not {"RoleArn", "RoleArn.$"} & set(given):
        return [((), 'Credentials is {"RoleArn": ARN} or {"RoleArn.$": PATH}')]
    if not calls:
        return [
            (
                (),
                "Credentials: Stepwell assumes a role for a service call (aws-sdk:*, the "
                "optimized integrations, a .sync job); a function or a child run runs with its "
                "own role: remove Credentials and give that role the permissions",
            )
        ]
    arn = given.get("RoleArn")
    if isinstance(arn, str) and not arn.startswith("{%") and not ROLE_ARN.match(arn):
        return [
            (("RoleArn",), f"{arn!r} is not an IAM role's ARN (arn:aws:iam::ACCOUNT:role/NAME)")
        ]
    if "RoleArn.$" in given and (why := paths.check(str(given["RoleArn.$"]))) is not None:
        return [(("RoleArn.$",), why)]
    return []


def _no_state(named: str, target: Any, states: dict[str, Any]) -> str:
    """A transition to a state that is not there, with the closest one (a typo, mostly)."""
    close = difflib.get_close_matches(str(target), [str(name) for name in states], n=1)
    return f"{named} names no state" + (f"; did you mean {close[0]!r}?" if close else "")
