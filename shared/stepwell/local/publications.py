"""What ``sam deploy`` does with an app's workflows, done locally.

Each ``Custom::StepwellWorkflow`` resource of the template goes to its service token function
(the engine's publisher, run by the emulator like any function) as CloudFormation sends it: a
``Create`` when the stack starts, an ``Update`` (with ``OldResourceProperties``) when the
workflows function's code changed, a ``Delete`` when the resource left the template. The
publisher answers through the pre-signed ``ResponseURL`` as on AWS; locally that URL is a route of
the stack's own HTTP server, which hands the answer back here.

A folder of workflow files can be published too (tests, benchmarks: ``LocalStack(workflows=)``),
as ``stepwell publish`` would: every task step's function bound to the template's function of
that logical id, and the code-first ones replayed by a workflows function that holds the folder.

CloudFormation's ListStackResources is answered with the app's own functions
(:func:`list_stack_resources`): the publisher binds a workflow's functions from them.
"""

from __future__ import annotations

import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from pathlib import Path
from typing import Any

from stepwell.asl.loader import aws_only, is_asl_file, machine_name
from stepwell.catalog import load_definitions, newest, with_example_input
from stepwell.definition.errors import DefinitionError
from stepwell.definition.loader import discover
from stepwell.local.errors import TemplateError
from stepwell.local.functions import RUNNER_HANDLER, WORKFLOWS_HANDLER
from stepwell.local.intercept import Operation, ServiceError
from stepwell.local.template import ACCOUNT, REGION, STACK, FunctionSpec, Resolver, Template
from stepwell.runtime.custom_resource import RESOURCE_TYPE, names_of
from stepwell.runtime.publishing import PublishRefused, Workflows, bind, named_functions

RESPONSE_PATH = "/_local/cloudformation/"
"""Where the publisher's answers arrive (``PUT <RESPONSE_PATH><request id>``)."""


@dataclass
class Deployed:
    """A custom resource as the local stack last deployed it."""

    logical_id: str
    properties: dict[str, Any]
    physical_id: str = ""
    reason: str = ""
    ok: bool = False


@dataclass
class Publications:
    """The template's Custom::StepwellWorkflow resources, deployed through the publisher."""

    invoke: Callable[[str, bytes], Any]
    """``(function ARN, payload) -> answer``: a synchronous invoke through the emulator."""
    stack_id: str
    response_url: Callable[[str], str]
    """``request id -> URL`` the publisher PUTs its answer to."""
    package: Callable[[str], Path | None] = lambda code: None
    """``Code`` (a function's ARN) -> its package's folder, where its workflow files are."""
    deployed: dict[str, Deployed] = field(default_factory=dict)
    _answers: dict[str, dict[str, Any]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def deploy(self, resources: Mapping[str, Mapping[str, Any]]) -> list[str]:
        """Bring the deployed resources to ``resources`` (logical id -> resolved properties):
        Create the new, Update the changed, Delete those gone. Returns one line per failure."""
        failures: list[str] = []
        for logical_id, properties in resources.items():
            known = self.deployed.get(logical_id)
            if known is not None and known.ok and known.properties == dict(properties):
                continue
            kind = "Update" if known is not None and known.ok else "Create"
            answer = self._request(kind, logical_id, dict(properties), known)
            entry = Deployed(
                logical_id,
                dict(properties),
                str(answer.get("PhysicalResourceId") or ""),
                str(answer.get("Reason") or ""),
                answer.get("Status") == "SUCCESS",
            )
            if not entry.ok:
                failures.append(f"{logical_id}: {entry.reason}")
                if known is not None and known.ok:
                    continue  # as CloudFormation: a failed update keeps what was deployed
            if (
                known is not None
                and known.ok
                and entry.ok
                and known.physical_id != entry.physical_id
            ):
                self._request("Delete", logical_id, known.properties, known)
            self.deployed[logical_id] = entry
        for logical_id in [k for k in self.deployed if k not in resources]:
            gone = self.deployed.pop(logical_id)
            if gone.ok:
                self._request("Delete", logical_id, gone.properties, gone)
        return failures

    def names(self) -> list[str]:
        """The workflows the deployed resources hold."""
        return [name for entry in self.deployed.values() for name in names_of(entry.physical_id)]

    def answer(self, request_id: str, body: bytes) -> tuple[int, Any]:
        """The publisher's answer to one request (the ResponseURL's route)."""
        try:
            document = json.loads(body or b"{}")
        except ValueError:
            return 400, {"error": "invalid", "message": "the response is not JSON"}
        with self._lock:
            self._answers[request_id] = document
        return 200, {}

    def _request(
        self, kind: str, logical_id: str, properties: dict[str, Any], known: Deployed | None
    ) -> dict[str, Any]:
        request_id = str(uuid.uuid4())
        event: dict[str, Any] = {
            "RequestType": kind,
            "ServiceToken": properties.get("ServiceToken"),
            "ResponseURL": self.response_url(request_id),
            "StackId": self.stack_id,
            "RequestId": request_id,
            "LogicalResourceId": logical_id,
            "ResourceType": RESOURCE_TYPE,
            "ResourceProperties": properties,
        }
        if known is not None and kind != "Create":
            event["PhysicalResourceId"] = known.physical_id
        if kind == "Update" and known is not None:
            event["OldResourceProperties"] = known.properties
        token = properties.get("ServiceToken")
        if not isinstance(token, str) or not token:
            return {"Status": "FAILED", "Reason": "ServiceToken is required"}
        if kind != "Delete" and (local := self._aws_only(properties)):
            # Valid on AWS, so the publisher would take it: the local stack refuses it here,
            # with the line the folder publisher gives, rather than fail its runs.
            reason = "; ".join(str(problem) for problem in local)
            return {"Status": "FAILED", "Reason": f"{RESOURCE_TYPE} {logical_id}: {reason}"}
        try:
            self.invoke(token, json.dumps(event).encode())
        except Exception as exc:  # the service token names no local function, or it crashed
            return {"Status": "FAILED", "Reason": f"{type(exc).__name__}: {exc}"}
        with self._lock:
            answer = self._answers.pop(request_id, None)
        if answer is None:
            return {
                "Status": "FAILED",
                "Reason": f"{token} did not answer the {kind} request (CloudFormation waits an "
                "hour, then fails the resource)",
            }
        return answer

    def _aws_only(self, properties: Mapping[str, Any]) -> list[Any]:
        """What of the machine file a resource publishes runs on AWS only."""
        code, definition = properties.get("Code"), properties.get("Definition")
        package = self.package(code) if isinstance(code, str) else None
        if package is None or not isinstance(definition, str):
            return []
        path = package / definition.strip()
        return aws_only(path) if is_asl_file(path) and path.is_file() else []


def publish_folder(
    workflows: Workflows,
    folder: Path,
    functions: Mapping[str, str],
    runner: str | None,
    owner: str = "local",
) -> list[str]:
    """Publish every workflow file of ``folder`` (a broken file breaks only itself: its
    problems are recorded on the workflow its file stands for). Returns one line per problem."""
    failures: list[str] = []
    for path in discover([folder]):
        resource = f"folder:{path.name}"
        try:
            described = [
                with_example_input(workflow, path.parent)
                for workflow in newest(w for w, _ in load_definitions([path]))
            ]
            if is_asl_file(path) and (local := aws_only(path)):
                raise DefinitionError(local)
        except DefinitionError as exc:
            problems = [str(p) for p in exc.problems]
            name = machine_name(path) if is_asl_file(path) else path.stem
            workflows.refuse(name, owner, resource, problems)
            failures.append(
                f"workflow file {name!r} has {len(problems)} problem"
                f"{'s' if len(problems) != 1 else ''} and does not run until fixed:\n"
                + "\n".join(f"  {p}" for p in problems)
            )
            continue
        for workflow in described:
            runs = {function for _, function in named_functions(workflow)}
            named = {
                k: v
                for k, v in functions.items()
                if k in runs or (workflow.code is not None and not v.endswith(f":{k}"))
            }
            bound = bind(workflow, named, runner if workflow.code is not None else None)
            try:
                workflows.publish(bound, owner, resource)
            except PublishRefused as exc:
                workflows.refuse(workflow.name, owner, resource, [f"{path.name}: {exc}"])
                failures.append(f"{path.name}: {exc}")
    return failures


# -- the stack as CloudFormation describes it -------------------------------------------------

STACK_ID = f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/{STACK}/local"
"""The local stack's id, as CloudFormation names a stack (custom resources are told it)."""
FOLDER_FUNCTION = "StepwellLocalWorkflows"
"""The workflows function that holds ``workflows=``'s folder (its code-first replays)."""


def folder_function(specs: list[FunctionSpec], folder: Path) -> FunctionSpec:
    """A workflows function for ``workflows=``'s folder, set up as an app's would be: the
    engine's settings (those of its runner), the folder as its code."""
    runner = next((s for s in specs if s.handler == RUNNER_HANDLER), None)
    if runner is None:
        raise TemplateError(
            "the template has no Stepwell engine (no function runs "
            f"{RUNNER_HANDLER}): nothing can publish workflows"
        )
    name = f"{STACK}-local-workflows"
    return replace(
        runner,
        logical_id=FOLDER_FUNCTION,
        name=name,
        arn=f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{name}",
        code_uri=folder,
        handler=WORKFLOWS_HANDLER,
        environment={**runner.environment, "STEPWELL_WORKFLOWS": str(folder)},
        events=(),
    )


def app_functions(functions: list[FunctionSpec], template: Template) -> list[FunctionSpec]:
    """The app's own functions: not its nested engine's, not the folder's workflows function."""
    return [
        spec
        for spec in functions
        if spec.logical_id not in template.nested and spec.logical_id != FOLDER_FUNCTION
    ]


def workflow_resources(template: Template, resolver: Resolver) -> dict[str, dict[str, Any]]:
    """The template's Custom::StepwellWorkflow resources, their properties resolved (a
    Code version follows the code of its function)."""
    return {
        logical_id: resolver.resolve(template.properties(logical_id)) or {}
        for logical_id in template.of_type(RESOURCE_TYPE)
        if resolver.active(logical_id)
    }


def list_stack_resources(
    params: dict[str, Any], functions: list[FunctionSpec], now: Callable[[], datetime]
) -> dict[str, Any]:
    """The app's own functions (``functions``), as CloudFormation lists a stack's resources:
    what the publisher binds a workflow's functions from."""
    if str(params.get("StackName")) not in (STACK_ID, STACK):
        raise ServiceError(
            "ValidationError", f"Stack with id {params.get('StackName')} does not exist"
        )
    return {
        "StackResourceSummaries": [
            {
                "LogicalResourceId": spec.logical_id,
                "PhysicalResourceId": spec.name,
                "ResourceType": "AWS::Lambda::Function",
                "ResourceStatus": "CREATE_COMPLETE",
                "LastUpdatedTimestamp": now(),
            }
            for spec in functions
        ]
    }


def operations(
    functions: Callable[[], list[FunctionSpec]], now: Callable[[], datetime]
) -> dict[str, Operation]:
    """CloudFormation's API, as far as the stack answers it: ``functions`` gives the app's own
    functions when asked."""
    return {
        "cloudformation.ListStackResources": lambda params: list_stack_resources(
            params, functions(), now
        )
    }
