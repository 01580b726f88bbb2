"""``Custom::StepwellWorkflow``: CloudFormation publishes, updates and retires an app's workflow.

An app's template holds one resource per workflow file::

    OrderWorkflow:
      Type: Custom::StepwellWorkflow
      Properties:
        ServiceToken: !GetAtt Stepwell.Outputs.WorkflowServiceToken
        Definition: order-fulfilment.yaml     # a file of the workflows function's package
        Code: !Ref WorkflowsFunction.Version  # the function that holds it (a new version on
                                              # every change of its code: CloudFormation then
                                              # sends an Update, and the engine publishes)
        Functions: {}                         # optional: names the stack does not define
        RoleArn: !GetAtt OrderRole.Arn        # optional: the role its service calls run
                                              # with (Step Functions' RoleArn)

The engine's publisher asks ``Code`` to describe ``Definition``, binds the steps' functions
(every Lambda function of the app's stack by its logical id, then ``Functions``) and, for a
code-first workflow or a Step Functions machine, ``Code`` as the function that replays it, then
publishes the workflow. Deleting the resource (or the stack) retires what it published: no new
runs, the runs in flight finish. The answer goes to CloudFormation's pre-signed ``ResponseURL``
(the request and response shapes are CloudFormation's own).
"""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from stepwell.definition.models import Workflow, with_role
from stepwell.runtime.describing import DescribeFailed, read
from stepwell.runtime.describing import request as describe_request
from stepwell.runtime.publishing import (
    Published,
    PublishRefused,
    Workflows,
    bind,
    named_functions,
)

RESOURCE_TYPE = "Custom::StepwellWorkflow"
PHYSICAL_PREFIX = "stepwell-workflow:"
"""A publication's physical id: the prefix, then the names of the workflows it holds."""
MAX_RESPONSE = 4096
"""CloudFormation refuses a custom resource response over 4,096 bytes."""

Describe = Callable[[str, Mapping[str, Any]], Any]
"""``(function ARN, describe request) -> its answer``: a synchronous invoke."""
StackFunctions = Callable[[str], Mapping[str, str]]
"""``(stack id) -> {logical id: function ARN}`` of every Lambda function in that stack."""


@dataclass(frozen=True)
class Outcome:
    """What the publisher tells CloudFormation."""

    ok: bool
    physical_id: str
    reason: str = ""
    data: dict[str, str] = field(default_factory=dict)


def handle(
    event: Mapping[str, Any],
    workflows: Workflows,
    describe: Describe,
    stack_functions: StackFunctions,
) -> Outcome:
    """Carry out one CloudFormation request; never raises for a request it cannot honour (the
    reason goes back to CloudFormation, which shows it on the resource)."""
    kind = str(event.get("RequestType", ""))
    logical = str(event.get("LogicalResourceId", "?"))
    owner = f"{stack_name(str(event.get('StackId', '')))}/{logical}"
    given = str(event.get("PhysicalResourceId") or "")
    if kind == "Delete":
        for name in names_of(given):
            workflows.retire(name, owner, given)
        return Outcome(True, given or f"{PHYSICAL_PREFIX}")
    if kind not in ("Create", "Update"):
        return Outcome(False, given or f"{PHYSICAL_PREFIX}", f"unknown RequestType {kind!r}")
    where = f"{RESOURCE_TYPE} {logical}"
    # A failed Create still needs an id; its Delete (the rollback) then retires nothing.
    failed_id = given or f"{PHYSICAL_PREFIX}"
    try:
        properties = _properties(event.get("ResourceProperties"))
    except PropertyError as exc:
        return Outcome(False, failed_id, f"{where}: {exc}")
    try:
        described = read(describe(properties.code, describe_request(properties.definition)))
        functions = dict(stack_functions(str(event.get("StackId", ""))))
        functions.update(properties.functions)
        bound = [_bound(w, functions, properties.code) for w in described]
        if properties.role is not None:
            bound = [_with_role(w, properties.role) for w in bound]
        physical = PHYSICAL_PREFIX + ",".join(w.name for w in bound)
        published = [workflows.publish(w, owner, physical) for w in bound]
    except DescribeFailed as exc:
        return Outcome(False, failed_id, f"{where}: {properties.definition}: {exc}")
    except (PublishRefused, PropertyError) as exc:
        return Outcome(False, failed_id, f"{where}: {exc}")
    return Outcome(True, physical, data=_data(published))


def names_of(physical_id: str) -> list[str]:
    """The workflows a publication holds, from its physical id."""
    if not physical_id.startswith(PHYSICAL_PREFIX):
        return []
    return [name for name in physical_id[len(PHYSICAL_PREFIX) :].split(",") if name]


def stack_name(stack_id: str) -> str:
    """``my-app`` of ``arn:aws:cloudformation:REGION:ACCOUNT:stack/my-app/GUID``."""
    parts = stack_id.split(":", 5)
    if len(parts) == 6 and parts[5].startswith("stack/"):
        return parts[5].split("/")[1]
    return stack_id


class PropertyError(ValueError):
    """A resource property a publication cannot use."""


@dataclass(frozen=True)
class _Properties:
    definition: str
    code: str
    functions: dict[str, str]
    role: str | None = None


def _properties(raw: Any) -> _Properties:
    props = raw if isinstance(raw, Mapping) else {}
    definition = props.get("Definition")
    if not isinstance(definition, str) or not definition.strip():
        raise PropertyError(
            "Definition is required: the workflow file's path in the workflows function's "
            "package (e.g. order-fulfilment.yaml)"
        )
    code = props.get("Code")
    if not isinstance(code, str) or not code.startswith("arn:"):
        raise PropertyError(
            "Code is required: the function that holds the workflow file, as `!Ref "
            "WorkflowsFunction.Version` (with AutoPublishAlias) or `!GetAtt WorkflowsFunction.Arn`"
        )
    functions = props.get("Functions") or {}
    if not isinstance(functions, Mapping) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in functions.items()
    ):
        raise PropertyError(
            "Functions must map the names steps give to function ARNs, e.g. "
            "{ChargeCardFunction: !GetAtt ChargeCardFunction.Arn}"
        )
    role = props.get("RoleArn")
    if role is not None and not isinstance(role, str):
        raise PropertyError("RoleArn is an IAM role's ARN, e.g. !GetAtt OrderRole.Arn")
    return _Properties(definition.strip(), code, dict(functions), role)


def _bound(workflow: Workflow, functions: Mapping[str, str], code: str) -> Workflow:
    """A YAML workflow keeps the functions its steps and their compensations name; a code-first
    workflow (or a Step Functions machine) names them as it runs, so it keeps them all, and
    ``code`` replays it."""
    if workflow.code is None:
        named = {function for _, function in named_functions(workflow)}
        return bind(workflow, {k: v for k, v in functions.items() if k in named}, None)
    # By logical id: a name that is its ARN's own needs no entry to be invoked by that name.
    return bind(workflow, {k: v for k, v in functions.items() if not v.endswith(f":{k}")}, code)


def _data(published: list[Published]) -> dict[str, str]:
    """What ``!GetAtt <resource>.<key>`` gives: the names, versions and what happened."""
    return {
        "Names": ",".join(p.name for p in published),
        "Versions": ",".join(f"{p.name}={p.version}" for p in published),
        "Status": ",".join(f"{p.name}={p.status}" for p in published),
        **({"Version": str(published[0].version)} if len(published) == 1 else {}),
    }


def response_body(event: Mapping[str, Any], outcome: Outcome) -> bytes:
    """CloudFormation's response document for ``event``, within its 4,096 bytes."""
    body: dict[str, Any] = {
        "Status": "SUCCESS" if outcome.ok else "FAILED",
        "Reason": outcome.reason or "see the publisher function's log",
        "PhysicalResourceId": outcome.physical_id,
        "StackId": event.get("StackId"),
        "RequestId": event.get("RequestId"),
        "LogicalResourceId": event.get("LogicalResourceId"),
        "NoEcho": False,
        "Data": outcome.data,
    }
    encoded = json.dumps(body).encode()
    if len(encoded) > MAX_RESPONSE:
        spare = len(encoded) - MAX_RESPONSE + 20
        body["Reason"] = body["Reason"][: max(0, len(body["Reason"]) - spare)] + " (cut)"
        encoded = json.dumps(body).encode()
    return encoded


def send(url: str, body: bytes, timeout: float = 30.0) -> None:
    """PUT the response to CloudFormation's pre-signed URL (S3 wants no content type)."""
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"ResponseURL {url!r} is not an http(s) URL")
    put = urllib.request.Request(
        url, data=body, method="PUT", headers={"Content-Type": "", "Content-Length": str(len(body))}
    )
    with urllib.request.urlopen(put, timeout=timeout) as answer:
        answer.read()


def _with_role(workflow: Workflow, role: str) -> Workflow:
    try:
        return with_role(workflow, role)
    except ValueError as exc:
        raise PropertyError(f"RoleArn: {exc}") from None
