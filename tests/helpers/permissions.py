"""What template.yaml lets each function do, what the functions did, and the check of one
against the other.

* :func:`translated` is the template after the SAM transform (``sam_translate.py``, run by the
  SAM CLI's own Python), where every function has its generated role with SAM's policy
  templates expanded.
* :func:`function_policies` gives each function's statements, intrinsics resolved to the names
  of the local stack (the same names its calls use).
* :class:`CallRecorder` records the AWS calls made while a function of the local stack runs,
  and :func:`needed` turns one call into the IAM actions and resource ARNs it needs.
* :func:`denials` checks the calls against the statements.

Only the function's own calls are checked: AWS managed policies SAM attaches by ARN (logs,
X-Ray, the SQS poller) serve the Lambda service, not the code, and count for nothing here.
IAM condition keys are not evaluated.
"""

from __future__ import annotations

import json
import re
import subprocess
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

import botocore.client

from stepwell.local import lambdas
from stepwell.local.template import ACCOUNT, PARTITION, REGION, Resolver

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSLATE = Path(__file__).with_name("sam_translate.py")


# -- the template after the SAM transform ---------------------------------------------------


@cache
def translated(template: Path = ROOT / "template.yaml", **parameters: str) -> dict[str, Any]:
    """The template as CloudFormation gets it from ``sam deploy``."""
    if not SAM_PYTHON.exists():
        raise RuntimeError(
            f"{SAM_PYTHON} is missing: `make template` creates the SAM CLI's virtualenv"
        )
    done = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATE), str(template)]
        + [f"{k}={v}" for k, v in parameters.items()],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the SAM transform failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


@dataclass(frozen=True)
class Statement:
    """One Allow or Deny statement, resolved (conditions kept, not evaluated)."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    where: str
    """The policy it comes from (``ApiFunctionRole/ApiFunctionRolePolicy1``)."""


def function_policies(cfn: Mapping[str, Any], resolver: Resolver) -> dict[str, list[Statement]]:
    """Function logical id -> the statements of its role (inline and customer managed)."""
    resources = cfn["Resources"]
    found: dict[str, list[Statement]] = {}
    for logical_id, resource in resources.items():
        if resource.get("Type") != "AWS::Lambda::Function":
            continue
        role = resource["Properties"]["Role"]
        role_id = role["Fn::GetAtt"][0] if isinstance(role, dict) else None
        if role_id not in resources:
            raise AssertionError(f"{logical_id}: its role {role!r} is not in the template")
        found[logical_id] = role_statements(resources, role_id, resolver)
    return found


def role_statements(
    resources: Mapping[str, Any], role_id: str, resolver: Resolver
) -> list[Statement]:
    """Every statement of one role: inline policies and customer managed ones it refers to."""
    props = resources[role_id]["Properties"]
    statements: list[Statement] = []
    for policy in resolver.resolve(props.get("Policies") or []) or []:
        where = f"{role_id}/{policy.get('PolicyName')}"
        statements.extend(_statements(policy["PolicyDocument"], where))
    for arn in props.get("ManagedPolicyArns") or []:
        if isinstance(arn, dict) and "Ref" in arn:
            managed = resources[arn["Ref"]]
            if managed.get("Type") != "AWS::IAM::ManagedPolicy":
                raise AssertionError(f"{role_id}: {arn['Ref']} is no managed policy")
            document = resolver.resolve(managed["Properties"]["PolicyDocument"])
            statements.extend(_statements(document, arn["Ref"]))
    return statements


def _statements(document: Mapping[str, Any], where: str) -> list[Statement]:
    raw = document.get("Statement") or []
    found = []
    for index, statement in enumerate(raw if isinstance(raw, list) else [raw]):
        sid = statement.get("Sid") or str(index)
        found.append(
            Statement(
                str(statement.get("Effect")),
                tuple(_list(statement.get("Action"))),
                tuple(_list(statement.get("Resource"))),
                f"{where}/{sid}",
            )
        )
    return found


def _list(value: Any) -> list[str]:
    if value is None:
        return []
    return [str(v) for v in value] if isinstance(value, list) else [str(value)]


# -- evaluation -----------------------------------------------------------------------------


@cache
def _pattern(text: str, ignore_case: bool) -> re.Pattern[str]:
    """IAM's wildcards: ``*`` any run of characters, ``?`` one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in text)
    return re.compile(body, re.IGNORECASE if ignore_case else 0)


def matches(statement: Statement, action: str, resource: str) -> bool:
    """The statement names the action and the resource."""
    return any(_pattern(a, True).fullmatch(action) for a in statement.actions) and any(
        _pattern(r, False).fullmatch(resource) for r in statement.resources
    )


def allowed(statements: list[Statement], action: str, resource: str) -> bool:
    """An Allow names it and no Deny does."""
    if any(s.effect == "Deny" and matches(s, action, resource) for s in statements):
        return False
    return any(s.effect == "Allow" and matches(s, action, resource) for s in statements)


@dataclass(frozen=True)
class Call:
    """One AWS API call a function's code made."""

    function: str
    service: str
    """The service's signing name, which is its IAM prefix (``bedrock`` for bedrock-runtime)."""
    operation: str
    params: Mapping[str, Any]

    def __str__(self) -> str:
        return f"{self.function}: {self.service}:{self.operation}"


def needed(call: Call) -> list[tuple[str, str]]:
    """The (IAM action, resource ARN) pairs ``call`` needs."""
    service, operation, params = call.service, call.operation, call.params
    arn = _Arns()
    if service == "dynamodb":
        return _dynamodb(operation, params, arn)
    if service == "s3":
        bucket, key = params.get("Bucket", ""), params.get("Key")
        action = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket"}.get(
            operation, operation
        )
        where = f"arn:{PARTITION}:s3:::{bucket}" + (f"/{key}" if key is not None else "")
        return [(f"s3:{action}", where)]
    if service == "sqs":
        action = {"SendMessageBatch": "SendMessage"}.get(operation, operation)
        name = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        return [(f"sqs:{action}", arn.of("sqs", name))]
    if service == "lambda":
        action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(
            operation, operation
        )
        return [(f"lambda:{action}", arn.function(str(params.get("FunctionName", ""))))]
    if service == "events":
        return [
            (f"events:{operation}", arn.bus(str(entry.get("EventBusName") or "default")))
            for entry in params.get("Entries") or []
        ]
    if service == "scheduler":
        group = params.get("GroupName") or "default"
        pairs = [
            (f"scheduler:{operation}", arn.of("scheduler", f"schedule/{group}/{params['Name']}"))
        ]
        role = (params.get("Target") or {}).get("RoleArn")
        if role:
            pairs.append(("iam:PassRole", str(role)))
        return pairs
    if service == "secretsmanager":
        secret = str(params.get("SecretId", ""))
        return [(f"secretsmanager:{operation}", arn.secret(secret))]
    if service == "bedrock":
        action = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}
        model = str(params.get("modelId", ""))
        where = (
            model
            if model.startswith("arn:")
            else f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/{model}"
        )
        return [(f"bedrock:{action.get(operation, operation)}", where)]
    # A service this mapping does not know: it needs an explicit entry above.
    return [(f"{service}:{operation}", f"(no resource mapping for {service}:{operation})")]


def _dynamodb(operation: str, params: Mapping[str, Any], arn: _Arns) -> list[tuple[str, str]]:
    if operation == "TransactWriteItems":
        kinds = {
            "Put": "PutItem",
            "Update": "UpdateItem",
            "Delete": "DeleteItem",
            "ConditionCheck": "ConditionCheckItem",
        }
        return [
            (f"dynamodb:{kinds[kind]}", arn.table(body["TableName"]))
            for entry in params.get("TransactItems") or []
            for kind, body in entry.items()
        ]
    if operation == "TransactGetItems":
        return [
            ("dynamodb:GetItem", arn.table(entry["Get"]["TableName"]))
            for entry in params.get("TransactItems") or []
        ]
    if operation in ("BatchGetItem", "BatchWriteItem"):
        return [(f"dynamodb:{operation}", arn.table(t)) for t in params.get("RequestItems") or {}]
    where = arn.table(str(params.get("TableName", "")))
    if params.get("IndexName"):
        where += f"/index/{params['IndexName']}"
    return [(f"dynamodb:{operation}", where)]


@dataclass(frozen=True)
class _Arns:
    account: str = ACCOUNT
    region: str = REGION

    def of(self, service: str, resource: str) -> str:
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}:{resource}"

    def table(self, name: str) -> str:
        return name if name.startswith("arn:") else self.of("dynamodb", f"table/{name}")

    def function(self, name: str) -> str:
        if name.startswith("arn:"):
            return ":".join(name.split(":")[:7])  # without a qualifier
        return self.of("lambda", f"function:{name}")

    def bus(self, name: str) -> str:
        return name if name.startswith("arn:") else self.of("events", f"event-bus/{name}")

    def secret(self, name: str) -> str:
        return name if name.startswith("arn:") else self.of("secretsmanager", f"secret:{name}")


def denials(calls: list[Call], policies: Mapping[str, list[Statement]]) -> list[str]:
    """What the functions did that their policies do not allow, one line each (sorted)."""
    found = set()
    for call in calls:
        statements = policies.get(call.function)
        if statements is None:
            found.add(f"{call}: a function the template does not have")
            continue
        for action, resource in needed(call):
            if not allowed(statements, action, resource):
                found.add(
                    f"{call.function}: {action} on {resource} ({call.service}:{call.operation})"
                )
    return sorted(found)


def without_action(
    policies: Mapping[str, list[Statement]], where: str, action: str
) -> dict[str, list[Statement]]:
    """``policies`` with ``action`` taken out of the statement ``where`` (for every function
    that has it: a managed policy is shared)."""
    changed: dict[str, list[Statement]] = {}
    for function, statements in policies.items():
        changed[function] = [
            Statement(s.effect, tuple(a for a in s.actions if a != action), s.resources, s.where)
            if s.where == where
            else s
            for s in statements
        ]
    return changed


# -- recording calls ------------------------------------------------------------------------


class CallRecorder:
    """Records every AWS API call made while a function of the local stack runs, with the
    function it ran for. Calls made outside any function (the test itself, the stack's
    setup) are not recorded.

    It wraps botocore's ``BaseClient._make_api_call``, which every client goes through
    (boto3's, pynamodb's, Powertools'), however early it was created; calls the local stack
    answers itself (Lambda Invoke, SQS SendMessage ...) pass there too. Work a function hands
    to a thread pool is credited to the function.
    """

    def __init__(self, function_of: Callable[[], str | None] | None = None) -> None:
        self.calls: list[Call] = []
        self._lock = threading.Lock()
        self._function_of = function_of or _running_function

    @contextmanager
    def recording(self) -> Iterator[CallRecorder]:
        original_call = botocore.client.BaseClient._make_api_call
        original_submit = ThreadPoolExecutor.submit
        recorder = self

        def make_api_call(client: Any, operation: str, params: Any) -> Any:
            function = recorder._function_of()
            if function is not None:
                service = client.meta.service_model.signing_name
                with recorder._lock:
                    recorder.calls.append(Call(function, service, operation, dict(params)))
            return original_call(client, operation, params)

        def submit(pool: Any, fn: Callable[..., Any], /, *args: Any, **kwargs: Any) -> Any:
            container = lambdas.current_container()

            def run() -> Any:
                lambdas._local.container = container
                try:
                    return fn(*args, **kwargs)
                finally:
                    lambdas._local.container = None

            return original_submit(pool, run)

        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = original_submit  # type: ignore[method-assign]


def _running_function() -> str | None:
    container = lambdas.current_container()
    return container.function.logical_id if container is not None else None
