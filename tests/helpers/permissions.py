"""What a template lets each function do, what the functions did, and the check of one
against the other.

* :func:`translated` is the template after the SAM transform (``sam_translate.py``, run by the
  SAM CLI's own Python), where every function has its generated role with SAM's policy
  templates expanded, and with its engine: the nested application's template (or the engine
  an app imports with ``!ImportValue``) is translated too and flattened into it as the local
  stack flattens it (:mod:`stepwell.local.nested`), so the engine's functions and the app's are
  in one document with the local stack's names.
* :func:`function_policies` gives each function's statements, intrinsics resolved to the names
  of the local stack (the same names its calls use).
* :class:`CallRecorder` records the AWS calls made while a function of the local stack runs,
  and :func:`needed` turns one call into the IAM actions, resource ARNs and condition keys it
  needs.
* :func:`denials` checks the calls against the statements.

Only the function's own calls are checked: AWS managed policies SAM attaches by ARN (logs,
X-Ray, the SQS poller) serve the Lambda service, not the code, and count for nothing here.
Conditions are evaluated as IAM does, with the keys a request carries here: the target
function's tags (``aws:ResourceTag/<key>``, for ``lambda:InvokeFunction``) and the service a
role is passed to (``iam:PassedToService``); a key the request does not carry makes the
condition false, as in IAM. Only the ``StringEquals`` operator is known: a policy with another
fails the check until it is evaluated here too.
"""

from __future__ import annotations

import copy
import hashlib
import json
import re
import subprocess
import tempfile
import threading
from collections.abc import Callable, Iterator, Mapping
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from functools import cache
from pathlib import Path
from typing import Any

import botocore.client

from stepwell.local import containers, engine, nested
from stepwell.local.template import (
    ACCOUNT,
    PARTITION,
    REGION,
    STACK,
    Resolver,
    pseudo_parameters,
)
from stepwell.store.tables import load_template

ROOT = Path(__file__).resolve().parents[2]
SAM_PYTHON = ROOT / ".venv-sam" / "bin" / "python"
TRANSLATE = Path(__file__).with_name("sam_translate.py")


# -- the template after the SAM transform ---------------------------------------------------


@cache
def translated(template: Path = ROOT / "template.yaml", **parameters: str) -> dict[str, Any]:
    """The template as CloudFormation deploys it from ``sam deploy``, with its engine flattened
    into it under the local stack's names (``Stepwell`` + ``ApiFunction`` ->
    ``StepwellApiFunction``): a role's ``!GetAtt Stepwell.Outputs.StepFunctionPolicyArn``
    becomes ``{"Ref": "StepwellOrchestratorPolicy"}``."""
    document = translated_stack(template, **parameters)
    stack = engine.imported_stack(document)
    if stack is not None:
        document = engine.with_engine(document, stack)
    flat = nested.load(
        template,
        stack=STACK,
        pseudo=pseudo_parameters(STACK),
        parameters=parameters,
        document=_with_translated_applications(document, template),
    )
    return flat.document


def translated_stack(template: Path, **parameters: str) -> dict[str, Any]:
    """One stack's template after the SAM transform: a nested application is one
    ``AWS::CloudFormation::Stack`` of it, as CloudFormation orders the stack's resources."""
    return copy.deepcopy(_sam(template, tuple(sorted(parameters.items()))))


@cache
def _sam(template: Path, parameters: tuple[tuple[str, str], ...]) -> dict[str, Any]:
    if not SAM_PYTHON.exists():
        raise RuntimeError(
            f"{SAM_PYTHON} is missing: `make template` creates the SAM CLI's virtualenv"
        )
    done = subprocess.run(
        [str(SAM_PYTHON), str(TRANSLATE), str(template)] + [f"{k}={v}" for k, v in parameters],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    if done.returncode != 0:
        raise RuntimeError(f"the SAM transform of {template} failed:\n{done.stderr}")
    result: dict[str, Any] = json.loads(done.stdout)
    return result


_TRANSLATIONS = tempfile.TemporaryDirectory(prefix="stepwell-sam-")
"""Nested templates after the SAM transform, for :mod:`stepwell.local.nested` to read."""


@cache
def _translated_file(template: Path) -> Path:
    """``template`` after the SAM transform, written as JSON (its own applications pointing at
    their translations in turn)."""
    document = _with_translated_applications(translated_stack(template), template)
    digest = hashlib.sha256(str(template.resolve()).encode()).hexdigest()[:16]
    path = Path(_TRANSLATIONS.name) / f"{digest}.json"
    path.write_text(json.dumps(document))
    return path


def _with_translated_applications(document: dict[str, Any], template: Path) -> dict[str, Any]:
    """Each nested application of ``document`` (``template`` translated) as a nested stack whose
    TemplateURL is its template's translation. An application whose template is no file of the
    project (a URL, an application of the Serverless Application Repository) is the installed
    engine's, as the local stack runs it."""
    source = load_template(template).get("Resources") or {}
    resources = dict(document.get("Resources") or {})
    for logical_id, resource in resources.items():
        if resource.get("Type") not in nested.APPLICATION_TYPES:
            continue
        props = dict(resource.get("Properties") or {})
        original = (source.get(logical_id) or {}).get("Properties") or props
        location = original.get("Location", original.get("TemplateURL"))
        path = (
            template.parent / location
            if isinstance(location, str) and "://" not in location
            else engine.ENGINE_TEMPLATE
        )
        props.pop("Location", None)
        props["TemplateURL"] = str(_translated_file(path.resolve()))
        resources[logical_id] = {
            **resource,
            "Type": "AWS::CloudFormation::Stack",
            "Properties": props,
        }
    return {**document, "Resources": resources}


@dataclass(frozen=True)
class Statement:
    """One Allow or Deny statement, resolved."""

    effect: str
    actions: tuple[str, ...]
    resources: tuple[str, ...]
    where: str
    """The policy it comes from (``ApiFunctionRole/ApiFunctionRolePolicy1``)."""
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    """Its ``Condition``: operator -> condition key -> the values it accepts."""


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
        conditions = {
            str(operator): {str(key): tuple(_list(values)) for key, values in keys.items()}
            for operator, keys in (statement.get("Condition") or {}).items()
        }
        found.append(
            Statement(
                str(statement.get("Effect")),
                tuple(_list(statement.get("Action"))),
                tuple(_list(statement.get("Resource"))),
                f"{where}/{sid}",
                conditions,
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


@dataclass(frozen=True)
class Need:
    """What a call needs of IAM: an action on a resource, with the condition keys its request
    carries."""

    action: str
    resource: str
    context: Mapping[str, str] = field(default_factory=dict)
    """Condition key -> its value in the request (``iam:PassedToService`` ...)."""


OPERATORS = ("StringEquals",)
"""The condition operators evaluated here."""


def matches(statement: Statement, need: Need) -> bool:
    """The statement names the action and the resource, and its conditions hold."""
    return (
        any(_pattern(a, True).fullmatch(need.action) for a in statement.actions)
        and any(_pattern(r, False).fullmatch(need.resource) for r in statement.resources)
        and conditions_hold(statement, need.context)
    )


def conditions_hold(statement: Statement, context: Mapping[str, str]) -> bool:
    """IAM's rule: every condition holds; a key the request does not carry holds for none.
    (Condition keys are case-insensitive, their values here are not.)"""
    carried = {key.lower(): value for key, value in context.items()}
    for operator, keys in statement.conditions.items():
        if operator not in OPERATORS:
            raise AssertionError(
                f"{statement.where}: the condition operator {operator} is not evaluated by "
                "tests/helpers/permissions.py: add it there"
            )
        for key, values in keys.items():
            if carried.get(key.lower()) not in values:
                return False
    return True


def allowed(statements: list[Statement], need: Need) -> bool:
    """An Allow grants it and no Deny refuses it."""
    if any(s.effect == "Deny" and matches(s, need) for s in statements):
        return False
    return any(s.effect == "Allow" and matches(s, need) for s in statements)


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


Tags = Mapping[str, Mapping[str, str]]
"""A function's unqualified ARN -> its tags (what ``aws:ResourceTag/<key>`` reads)."""


def needed(call: Call, tags: Tags | None = None) -> list[Need]:
    """What ``call`` needs of IAM; ``tags`` are the functions' tags."""
    service, operation, params = call.service, call.operation, call.params
    arn = _Arns()
    if service == "dynamodb":
        return [Need(action, where) for action, where in _dynamodb(operation, params, arn)]
    if service == "s3":
        bucket, key = params.get("Bucket", ""), params.get("Key")
        action = {"HeadObject": "GetObject", "ListObjectsV2": "ListBucket"}.get(
            operation, operation
        )
        where = f"arn:{PARTITION}:s3:::{bucket}" + (f"/{key}" if key is not None else "")
        return [Need(f"s3:{action}", where)]
    if service == "sqs":
        action = {"SendMessageBatch": "SendMessage"}.get(operation, operation)
        name = str(params.get("QueueUrl", "")).rstrip("/").rsplit("/", 1)[-1]
        return [Need(f"sqs:{action}", arn.of("sqs", name))]
    if service == "lambda":
        # Invoke and InvokeAsync, whatever the InvocationType (a publisher's RequestResponse
        # describe, an engine's Event dispatch): the function, version or alias named.
        action = {"Invoke": "InvokeFunction", "InvokeAsync": "InvokeFunction"}.get(
            operation, operation
        )
        function = arn.function(str(params.get("FunctionName", "")), params.get("Qualifier"))
        own = (tags or {}).get(_unqualified(function)) or {}
        context = {f"aws:ResourceTag/{key}": value for key, value in own.items()}
        return [Need(f"lambda:{action}", function, context)]
    if service == "events":
        return _events(operation, params, arn)
    if service == "scheduler":
        if operation == "ListSchedules":
            return [Need("scheduler:ListSchedules", "*")]  # no resource-level permission
        group = params.get("GroupName") or "default"
        needs = [
            Need(
                f"scheduler:{operation}", arn.of("scheduler", f"schedule/{group}/{params['Name']}")
            )
        ]
        role = (params.get("Target") or {}).get("RoleArn")
        if role:
            needs.append(
                Need("iam:PassRole", str(role), {"iam:PassedToService": "scheduler.amazonaws.com"})
            )
        return needs
    if service == "cloudformation":
        stack = str(params.get("StackName", ""))
        where = stack if stack.startswith("arn:") else arn.of("cloudformation", f"stack/{stack}/*")
        return [Need(f"cloudformation:{operation}", where)]
    if service == "secretsmanager":
        secret = str(params.get("SecretId", ""))
        return [Need(f"secretsmanager:{operation}", arn.secret(secret))]
    if service == "bedrock":
        actions = {"Converse": "InvokeModel", "ConverseStream": "InvokeModelWithResponseStream"}
        model = str(params.get("modelId", ""))
        where = (
            model
            if model.startswith("arn:")
            else f"arn:{PARTITION}:bedrock:{REGION}::foundation-model/{model}"
        )
        return [Need(f"bedrock:{actions.get(operation, operation)}", where)]
    if service == "ses":
        # SES v2 SendEmail is authorised on the identity the sender is verified as (the local
        # stack verifies the address itself).
        sender = str(params.get("FromEmailAddress", ""))
        return [Need(f"ses:{operation}", arn.of("ses", f"identity/{sender}"))]
    # A service this mapping does not know: it needs an explicit entry above.
    return [Need(f"{service}:{operation}", f"(no resource mapping for {service}:{operation})")]


def _events(operation: str, params: Mapping[str, Any], arn: _Arns) -> list[Need]:
    """EventBridge: events go on a bus; rules are named on theirs (``rule/<bus>/<name>``, or
    ``rule/<name>`` on the default bus); ListRules takes no resource (IAM's ``*``)."""
    if operation == "PutEvents":
        return [
            Need("events:PutEvents", arn.bus(str(entry.get("EventBusName") or "default")))
            for entry in params.get("Entries") or []
        ]
    if operation == "ListRules":
        return [Need("events:ListRules", "*")]
    bus = str(params.get("EventBusName") or "default").rsplit("event-bus/", 1)[-1]
    name = str(params.get("Rule") or params.get("Name") or "")
    rule = f"rule/{name}" if bus == "default" else f"rule/{bus}/{name}"
    return [Need(f"events:{operation}", arn.of("events", rule))]


def _unqualified(function: str) -> str:
    return ":".join(function.split(":")[:7])


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

    def function(self, name: str, qualifier: Any = None) -> str:
        """What IAM authorises an invocation on: the function's ARN, with the version or alias
        the call names (``name:7``, or its Qualifier)."""
        found = name if name.startswith("arn:") else self.of("lambda", f"function:{name}")
        return f"{found}:{qualifier}" if qualifier else found

    def bus(self, name: str) -> str:
        return name if name.startswith("arn:") else self.of("events", f"event-bus/{name}")

    def secret(self, name: str) -> str:
        return name if name.startswith("arn:") else self.of("secretsmanager", f"secret:{name}")


def denials(
    calls: list[Call], policies: Mapping[str, list[Statement]], tags: Tags | None = None
) -> list[str]:
    """What the functions did that their policies do not allow, one line each (sorted);
    ``tags`` are the functions' tags (what an invocation's ``aws:ResourceTag`` reads)."""
    found = set()
    for call in calls:
        statements = policies.get(call.function)
        if statements is None:
            found.add(f"{call}: a function the template does not have")
            continue
        for need in needed(call, tags):
            if not allowed(statements, need):
                found.add(
                    f"{call.function}: {need.action} on {need.resource} "
                    f"({call.service}:{call.operation})"
                )
    return sorted(found)


def without_action(
    policies: Mapping[str, list[Statement]], where: str, action: str
) -> dict[str, list[Statement]]:
    """``policies`` with ``action`` taken out of the statement ``where`` (for every function
    that has it: a managed policy is shared)."""
    return {
        function: [
            replace(s, actions=tuple(a for a in s.actions if a != action))
            if s.where == where
            else s
            for s in statements
        ]
        for function, statements in policies.items()
    }


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
            container = containers.current_container()

            def run() -> Any:
                containers._local.container = container
                try:
                    return fn(*args, **kwargs)
                finally:
                    containers._local.container = None

            return original_submit(pool, run)

        botocore.client.BaseClient._make_api_call = make_api_call  # type: ignore[method-assign]
        ThreadPoolExecutor.submit = submit  # type: ignore[method-assign]
        try:
            yield self
        finally:
            botocore.client.BaseClient._make_api_call = original_call  # type: ignore[method-assign]
            ThreadPoolExecutor.submit = original_submit  # type: ignore[method-assign]


def _running_function() -> str | None:
    container = containers.current_container()
    return container.function.logical_id if container is not None else None
