"""Step Functions state machines in ``statemachines/<name>.asl.json`` (or ``.asl.yaml``): each
file is a workflow named ``<name>``, run as it is by :class:`~stepwell.asl.machine.Machine`.

Loading checks the machine first (:mod:`stepwell.asl.validation`): every problem is named
``FILE:LINE:COL`` with the state and the field.
"""

from __future__ import annotations

import dataclasses
import hashlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from pydantic import ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stepwell.addresses import execute_api_region
from stepwell.asl.graph import machine_graph
from stepwell.asl.machine import Machine
from stepwell.asl.names import INTEGRATIONS, resource, workflow_name
from stepwell.asl.tasks import LAMBDA_INVOKE, TOKEN_SUFFIX, function_of
from stepwell.asl.validation import check
from stepwell.code.files import LoadedCode
from stepwell.code.workflow import CodeWorkflow
from stepwell.definition import jobs
from stepwell.definition.errors import DefinitionError, PathPart, Problem, SourceMap
from stepwell.definition.loader import ASL_SUFFIXES
from stepwell.definition.models import Workflow

SUFFIXES = ASL_SUFFIXES
VERSION = "asl-"
"""Prefix of a machine's version: a hash of its file."""


def is_asl_file(path: Path) -> bool:
    """Whether ``path`` holds a Step Functions state machine."""
    return path.name.endswith(SUFFIXES)


def machine_name(path: Path) -> str:
    """The workflow a machine's file stands for: ``order.asl.json`` -> ``order``, and a name
    Step Functions allows but a workflow name does not (``Order_Machine.asl.json``) in
    workflow spelling, ``order-machine`` (:func:`workflow_name`)."""
    return workflow_name(file_stem(path))


def file_stem(path: Path) -> str:
    """``Order_Machine.asl.json`` -> ``Order_Machine``."""
    return next(path.name[: -len(s)] for s in SUFFIXES if path.name.endswith(s))


def read_machine(path: Path) -> tuple[Any, SourceMap, str]:
    """The checked document of ``path`` (as loaded, with its lines), where each part of it is,
    and the file's text; raise DefinitionError with every problem."""
    filename = str(path)
    text = path.read_text(encoding="utf-8")
    try:
        document = YAML(typ="rt").load(text)
    except YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
        raise DefinitionError(
            [Problem(filename, line, col, None, None, f"not JSON: {exc}")]
        ) from None
    source = SourceMap(filename, document)
    problems = check(document, source)
    if problems:
        raise DefinitionError(problems)
    return document, source, text


def load_asl_file(path: Path) -> LoadedCode:
    """The machine of ``path`` as a workflow; raise DefinitionError with every problem."""
    document, source, text = read_machine(path)
    filename = str(path)
    name = machine_name(path)
    plain = plain_document(document)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    timeout = plain.get("TimeoutSeconds")
    fields: dict[str, Any] = {
        "name": name,
        "description": plain.get("Comment"),
        "steps": {},
        "code": f"{path.name}:StateMachine",
        "code_version": f"{VERSION}{digest}",
        "timeout": f"{int(timeout)}s" if isinstance(timeout, int) else None,
        "machine_graph": dict(zip(("nodes", "edges"), machine_graph(plain), strict=True)),
    }
    try:
        workflow = Workflow.model_validate(fields)
    except ValidationError as exc:
        message = str(exc.errors()[0]["msg"])
        raise DefinitionError([source.problem((), message)]) from None
    code = CodeWorkflow(name=name, function=Machine(name, plain), version=fields["code_version"])
    return LoadedCode(workflow, code, filename, 1)


@dataclass(frozen=True)
class FunctionTask:
    """A Task state that invokes a step function."""

    state: str
    """The state's name."""
    at: tuple[PathPart, ...]
    """Where the state is in the document."""
    spec: Any
    """The state as written."""
    function: str
    function_at: tuple[PathPart, ...]
    """Where the function is named (its Resource, or lambda:invoke's FunctionName)."""
    token: bool
    """``.waitForTaskToken``: its end is whatever the token's holder sends."""


def function_tasks(path: Path) -> tuple[SourceMap, list[FunctionTask]]:
    """Every Task of a machine (in its Parallel branches and Map processors too) that invokes a
    step function, and where each part of the machine is."""
    document = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    source = SourceMap(str(path), document)
    found: list[FunctionTask] = []
    for name, state, here in _states(document, ()):
        written = resource(state)
        base = written.removesuffix(TOKEN_SUFFIX)
        token = written != base
        # JSONata's Arguments are JSONPath's Parameters; an expression is known at run time.
        field = "Arguments" if "Arguments" in state else "Parameters"
        given = state.get(field)
        named = given.get("FunctionName") if isinstance(given, dict) else None
        if base == LAMBDA_INVOKE and isinstance(named, str) and not named.startswith("{%"):
            where: tuple[PathPart, ...] = (*here, field, "FunctionName")
            function = function_of(named)
            found.append(FunctionTask(name, here, state, function, where, token))
        elif base and not base.startswith(INTEGRATIONS):
            where = (*here, "Resource")
            found.append(FunctionTask(name, here, state, function_of(base), where, token))
    return source, found


def _states(
    machine: Any, at: tuple[PathPart, ...]
) -> Iterator[tuple[str, dict[str, Any], tuple[PathPart, ...]]]:
    """Every state of a machine, in its Parallel branches and Map processors too, with where
    it is."""
    states = machine.get("States") if isinstance(machine, dict) else None
    for name, state in (states or {}).items():
        here = (*at, "States", name)
        if not isinstance(state, dict):
            continue
        yield str(name), state, here
        for index, branch in enumerate(state.get("Branches") or []):
            yield from _states(branch, (*here, "Branches", index))
        for key in ("ItemProcessor", "Iterator"):
            if key in state:
                yield from _states(state[key], (*here, key))


def aws_only(path: Path) -> list[Problem]:
    """A warning for each Task the local stack cannot run (a ``.sync`` job moto has no states
    of): valid on AWS, refused by ``stepwell dev`` and ``stepwell run``."""
    return _warnings(path, _sync_job_on_aws)


def foreign_apis(path: Path) -> list[Problem]:
    """A warning for each ``apigateway:invoke`` whose ``ApiEndpoint`` is written as an
    ``execute-api`` host: valid on AWS, but the local stack serves only its own APIs (named
    through the input or a substitution), so the Task fails there (it is not refused)."""
    return _warnings(path, _foreign_api)


Said = tuple[tuple[str, ...], str]
"""Where under a state a warning is (its field's path) and what it says."""


def _warnings(path: Path, warn: Callable[[dict[str, Any]], Said | None]) -> list[Problem]:
    """A warning, located at its field, for each state of the machine at ``path`` that ``warn``
    says something of."""
    document = YAML(typ="rt").load(path.read_text(encoding="utf-8"))
    source = SourceMap(str(path), document)
    found: list[Problem] = []
    for name, state, here in _states(document, ()):
        said = warn(state)
        if said is not None:
            where, message = said
            problem = source.problem((*here, *where), message, step=name, field=where[-1])
            found.append(dataclasses.replace(problem, warning=True))
    return found


def _sync_job_on_aws(state: dict[str, Any]) -> Said | None:
    written = resource(state)
    if not written.startswith(INTEGRATIONS):
        return None
    service, _, action = written.removeprefix(INTEGRATIONS).partition(":")
    job = jobs.synced(service, action)
    if job is None or job.aws_only is None:
        return None
    return ("Resource",), (
        f"{written} runs on AWS only: {job.aws_only}, so the local stack (stepwell dev, "
        "stepwell run) refuses this machine; deploy it to run it"
    )


API_GATEWAY = f"{INTEGRATIONS}apigateway:invoke"


def _foreign_api(state: dict[str, Any]) -> Said | None:
    if resource(state).removesuffix(TOKEN_SUFFIX) != API_GATEWAY:
        return None
    field = "Arguments" if "Arguments" in state else "Parameters"
    given = state.get(field)
    endpoint = given.get("ApiEndpoint") if isinstance(given, dict) else None
    if not isinstance(endpoint, str) or execute_api_region(endpoint.strip("/")) is None:
        return None  # an expression, a placeholder, a URL of a listener: known when it runs
    return (field, "ApiEndpoint"), (
        f"apigateway:invoke of {endpoint} runs on AWS only: the local stack (stepwell dev, "
        "stepwell run) serves only its own APIs, so this Task fails there with "
        "States.TaskFailed; deploy the machine to call it, or give the stack's own API's "
        "host through the input (ApiEndpoint.$) to call that one locally"
    )


def functions_named(path: Path) -> list[tuple[str, Callable[[str], Problem]]]:
    """The step functions a machine's Tasks name (a Resource that is a function, or the
    FunctionName of lambda:invoke), each with how to locate a problem about it."""
    source, tasks = function_tasks(path)
    return [(task.function, _locator(source, task.function_at, task.state)) for task in tasks]


def _locator(
    source: SourceMap, where: tuple[PathPart, ...], state: str
) -> Callable[[str], Problem]:
    return lambda message: source.problem(where, message, step=state, field=str(where[-1]))


def plain_document(node: Any) -> Any:
    """The document as plain dicts and lists (what the machine reads)."""
    if isinstance(node, dict):
        return {str(k): plain_document(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain_document(v) for v in node]
    return node
