"""template.yaml as the local stack sees it: resources with local names, intrinsics resolved.

Over 500 lines: CloudFormation's intrinsics, SAM's globals and the local names are one resolver
over one document.

The template is read with the same loader the store uses for its table (CloudFormation short
tags become their ``Fn::`` forms), SAM's ``Globals`` are merged into each function, and every
``!Ref`` / ``!GetAtt`` / ``!Sub`` / ``!Join`` / ``Fn::*`` is resolved to the name or ARN the
resource gets locally: account :data:`ACCOUNT`, region :data:`REGION`, stack :data:`STACK`.

Names follow CloudFormation's shape without its random suffix (``stepwell-local-TimerQueue``),
so they are stable from one start to the next. Nested applications are flattened into the
template as it is loaded (:mod:`stepwell.local.nested`). Pure: no AWS calls, no files but the
templates.
"""

from __future__ import annotations

import base64
import hashlib
import json
import re
import tempfile
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stepwell.definition.loader import fingerprint

# Callers name the error after this module; the alias exports it.
from stepwell.local.errors import TemplateError as TemplateError  # noqa: PLC0414
from stepwell.local.nested import Remote, load, merge_globals
from stepwell.store.tables import load_template

ACCOUNT = "123456789012"
REGION = "us-east-1"
STACK = "stepwell-local"
PARTITION = "aws"

FUNCTION_TYPES = ("AWS::Serverless::Function", "AWS::Lambda::Function")
LAYER_TYPES = ("AWS::Serverless::LayerVersion", "AWS::Lambda::LayerVersion")
HTTP_API_TYPES = ("AWS::Serverless::HttpApi", "AWS::ApiGatewayV2::Api")
DEFAULT_TIMEOUT_S = 3
DEFAULT_MEMORY_MB = 128
IMPLICIT_HTTP_API = "ServerlessHttpApi"
"""The API SAM creates for HttpApi events that name no ApiId."""


class _NoValue:
    """``AWS::NoValue``: the property it is the value of is removed."""


NO_VALUE = _NoValue()


@dataclass(frozen=True)
class Physical:
    """A resource as it exists locally: what ``!Ref`` gives and its ``!GetAtt`` attributes."""

    ref: str
    attrs: Mapping[str, str] = field(default_factory=dict)


# -- event sources of a function --------------------------------------------------------------


@dataclass(frozen=True)
class HttpRoute:
    """An ``HttpApi`` event: ``METHOD /path`` (``ANY``, ``{param}``, ``{proxy+}``, ``$default``)."""

    name: str
    api: str
    method: str
    path: str
    payload_version: str = "2.0"
    timeout_ms: int = 30_000
    authorizer: str | None = None
    """``AWS_IAM``, a named authorizer, or None (open): recorded, not enforced, locally."""

    @property
    def route_key(self) -> str:
        """``POST /runs/{run_id}`` or ``$default``."""
        return "$default" if self.path == "$default" else f"{self.method} {self.path}"


@dataclass(frozen=True)
class ScheduleSource:
    """A ``Schedule`` (EventBridge rule) or ``ScheduleV2`` (EventBridge Scheduler) event."""

    name: str
    kind: str
    """``Schedule`` or ``ScheduleV2``."""
    expression: str
    input: str | None
    timezone: str = "UTC"
    enabled: bool = True
    rule_name: str = ""


@dataclass(frozen=True)
class RuleSource:
    """An ``EventBridgeRule`` (or ``CloudWatchEvent``) event: a pattern on a bus, and how the
    target's input is made from the event."""

    name: str
    bus: str
    pattern: dict[str, Any]
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    enabled: bool = True
    rule_name: str = ""


@dataclass(frozen=True)
class QueueSource:
    """An ``SQS`` event source mapping."""

    name: str
    queue_arn: str
    batch_size: int = 10
    batching_window_s: int = 0
    report_batch_item_failures: bool = False
    maximum_concurrency: int = 5
    enabled: bool = True


EventSource = HttpRoute | ScheduleSource | RuleSource | QueueSource


@dataclass(frozen=True)
class FunctionSpec:
    """One function of the template, resolved."""

    logical_id: str
    name: str
    arn: str
    code_uri: Path
    handler: str
    runtime: str
    timeout_s: int
    memory_mb: int
    environment: dict[str, str]
    layers: tuple[Path, ...]
    events: tuple[EventSource, ...]
    async_retries: int = 2
    """``EventInvokeConfig.MaximumRetryAttempts``: how often Lambda tries a failed asynchronous
    invocation again (0 to 2)."""
    on_failure: str | None = None
    """``EventInvokeConfig.DestinationConfig.OnFailure.Destination``: where Lambda reports an
    asynchronous invocation that failed for good (an event bus or queue ARN)."""
    tags: Mapping[str, str] = field(default_factory=dict)
    """The function's tags, resolved (``stepwell:engine`` names the engine that may invoke it:
    its policies grant ``lambda:InvokeFunction`` on that tag)."""


@dataclass(frozen=True)
class QueueSpec:
    """An SQS queue of the template."""

    logical_id: str
    name: str
    url: str
    arn: str
    attributes: dict[str, str]
    """CreateQueue attributes from the resource's properties."""


# -- the template -----------------------------------------------------------------------------


class Template:
    """A parsed template.yaml: resources, parameters, conditions, SAM globals."""

    def __init__(
        self, document: dict[str, Any], base: Path, *, nested: Collection[str] = ()
    ) -> None:
        self.document = document
        self.base = base
        """The folder CodeUri and ContentUri are relative to (the template's folder)."""
        self.nested = frozenset(nested)
        """Resources flattened from nested templates: their own Globals are merged already."""
        resources = document.get("Resources")
        if not isinstance(resources, dict) or not resources:
            raise TemplateError("the template has no Resources")
        self.resources: dict[str, dict[str, Any]] = {
            str(k): v for k, v in resources.items() if isinstance(v, dict)
        }
        self.parameters: dict[str, dict[str, Any]] = dict(document.get("Parameters") or {})
        self.conditions: dict[str, Any] = dict(document.get("Conditions") or {})
        globals_ = document.get("Globals") or {}
        self.function_globals: dict[str, Any] = dict(globals_.get("Function") or {})

    @classmethod
    def load(
        cls,
        path: str | Path,
        *,
        stack: str = STACK,
        parameters: Mapping[str, str] | None = None,
        remote: Remote | None = None,
        exports: Mapping[str, Any] | None = None,
        document: dict[str, Any] | None = None,
    ) -> Template:
        """Read template.yaml (CloudFormation short tags allowed, or JSON), its nested
        applications flattened into it (see :mod:`stepwell.local.nested`).

        ``stack`` is the stack's name (nested stacks are named after it); ``parameters`` the
        values the stack is given, which the names ``Fn::ImportValue`` asks for may read;
        ``remote`` finds the template of an application whose location is not a file (a URL,
        an application of the Serverless Application Repository); ``exports`` gives values to
        ``Fn::ImportValue`` (export name -> an expression of the template); ``document`` is
        the file's content, when the caller read (and changed) it already.
        """
        path = Path(path)
        flat = load(
            path,
            stack=stack,
            pseudo=pseudo_parameters(stack),
            parameters=parameters,
            remote=remote,
            exports=exports,
            document=document,
        )
        return cls(flat.document, path.resolve().parent, nested=flat.nested)

    def of_type(self, *types: str) -> dict[str, dict[str, Any]]:
        """Logical id -> resource (the whole resource: Type, Properties, Condition ...)."""
        return {k: v for k, v in self.resources.items() if v.get("Type") in types}

    def properties(self, logical_id: str) -> dict[str, Any]:
        """A resource's Properties (functions with SAM's Globals merged in)."""
        resource = self.resources[logical_id]
        props = dict(resource.get("Properties") or {})
        if resource.get("Type") == "AWS::Serverless::Function" and logical_id not in self.nested:
            props = merge_globals(self.function_globals, props)
        return props


# -- local names ------------------------------------------------------------------------------


def api_id(logical_id: str, stack: str = STACK) -> str:
    """A stable 10-character API id (API Gateway's are 10 lower-case letters and digits)."""
    return hashlib.sha256(f"{stack}/{logical_id}".encode()).hexdigest()[:10]


def api_endpoint(api: str, region: str = REGION) -> str:
    """The execute-api URL a deployed HTTP API has."""
    return f"https://{api}.execute-api.{region}.amazonaws.com"


def local_names(
    template: Template,
    *,
    stack: str = STACK,
    account: str = ACCOUNT,
    region: str = REGION,
    overrides: Mapping[str, Physical] | None = None,
    parameters: Mapping[str, str] | None = None,
) -> dict[str, Physical]:
    """The local name and attributes of every resource, from its type and its name property.

    Names that the template sets through intrinsics (``!Sub "${AWS::StackName}-bus"``) are
    resolved with the names known so far, so a resource may name itself after the stack or a
    parameter, as CloudFormation allows. ``overrides`` gives resources whose identity is only
    known once created (a secret's ARN carries a random suffix).
    """
    found: dict[str, Physical] = dict(overrides or {})
    resolver = Resolver(template, found, parameters, stack=stack, account=account, region=region)
    arn = _Arns(account, region)
    for logical_id, resource in template.resources.items():
        if logical_id in found or not resolver.active(logical_id):
            continue
        type_ = str(resource.get("Type"))
        props = resource.get("Properties") or {}

        def named(key: str, default: str, props: Any = props) -> str:
            value = props.get(key) if isinstance(props, dict) else None
            return str(resolver.resolve(value)) if value is not None else default

        default = f"{stack}-{logical_id}"
        if type_ == "AWS::DynamoDB::Table":
            name = named("TableName", default)
            table_arn = arn.of("dynamodb", f"table/{name}")
            found[logical_id] = Physical(
                name, {"Arn": table_arn, "StreamArn": f"{table_arn}/stream/local"}
            )
        elif type_ == "AWS::S3::Bucket":
            name = named("BucketName", default.lower()[:63])
            found[logical_id] = Physical(
                name,
                {
                    "Arn": f"arn:{PARTITION}:s3:::{name}",
                    "DomainName": f"{name}.s3.amazonaws.com",
                    "RegionalDomainName": f"{name}.s3.{region}.amazonaws.com",
                },
            )
        elif type_ == "AWS::SQS::Queue":
            name = named("QueueName", default)
            url = queue_url(name, account, region)
            found[logical_id] = Physical(
                url, {"Arn": arn.of("sqs", name, sep=":"), "QueueName": name, "QueueUrl": url}
            )
        elif type_ == "AWS::Events::EventBus":
            name = named("Name", default)
            found[logical_id] = Physical(
                name, {"Arn": arn.of("events", f"event-bus/{name}"), "Name": name}
            )
        elif type_ == "AWS::Scheduler::ScheduleGroup":
            name = named("Name", default)
            found[logical_id] = Physical(
                name, {"Arn": arn.of("scheduler", f"schedule-group/{name}")}
            )
        elif type_ == "AWS::IAM::Role":
            name = named("RoleName", default)
            found[logical_id] = Physical(
                name,
                {"Arn": f"arn:{PARTITION}:iam::{account}:role/{name}", "RoleId": _id("AROA", name)},
            )
        elif type_ == "AWS::SecretsManager::Secret":
            name = named("Name", default)
            secret_arn = arn.of("secretsmanager", f"secret:{name}", sep=":")
            found[logical_id] = Physical(secret_arn, {"Id": secret_arn, "Name": name})
        elif type_ in FUNCTION_TYPES:
            name = named("FunctionName", default)
            found[logical_id] = Physical(name, {"Arn": arn.of("lambda", f"function:{name}", ":")})
        elif type_ in LAYER_TYPES:
            name = named("LayerName", logical_id)
            found[logical_id] = Physical(arn.of("lambda", f"layer:{name}:1", sep=":"))
        elif type_ in HTTP_API_TYPES:
            api = api_id(logical_id, stack)
            found[logical_id] = Physical(api, {"ApiEndpoint": api_endpoint(api, region)})
        else:
            found[logical_id] = Physical(default)
    if (
        any(
            isinstance(e, dict)
            and e.get("Type") == "HttpApi"
            and not (e.get("Properties") or {}).get("ApiId")
            for r in template.of_type("AWS::Serverless::Function").values()
            for e in ((r.get("Properties") or {}).get("Events") or {}).values()
        )
        and IMPLICIT_HTTP_API not in found
    ):
        api = api_id(IMPLICIT_HTTP_API, stack)
        found[IMPLICIT_HTTP_API] = Physical(api, {"ApiEndpoint": api_endpoint(api, region)})
    return found


def queue_url(name: str, account: str = ACCOUNT, region: str = REGION) -> str:
    """An SQS queue's URL."""
    return f"https://sqs.{region}.amazonaws.com/{account}/{name}"


def _id(prefix: str, seed: str) -> str:
    digest = base64.b32encode(hashlib.sha256(seed.encode()).digest()).decode()
    return prefix + digest[:17]


@dataclass(frozen=True)
class _Arns:
    account: str
    region: str

    def of(self, service: str, resource: str, sep: str = ":") -> str:
        return f"arn:{PARTITION}:{service}:{self.region}:{self.account}{sep}{resource}"


# -- intrinsic functions ----------------------------------------------------------------------


def pseudo_parameters(
    stack: str = STACK, account: str = ACCOUNT, region: str = REGION
) -> dict[str, Any]:
    """The pseudo parameters' local values."""
    return {
        "AWS::AccountId": account,
        "AWS::Region": region,
        "AWS::StackName": stack,
        "AWS::StackId": (
            f"arn:{PARTITION}:cloudformation:{region}:{account}:stack/"
            f"{stack}/00000000-0000-0000-0000-000000000000"
        ),
        "AWS::Partition": PARTITION,
        "AWS::URLSuffix": "amazonaws.com",
        "AWS::NotificationARNs": [],
        "AWS::NoValue": NO_VALUE,
    }


_SUB = re.compile(r"\$\{([^}]*)\}")


class Resolver:
    """Resolves CloudFormation intrinsics against local names.

    Supported: ``Ref`` (resources, parameters, pseudo parameters), ``Fn::GetAtt``, ``Fn::Sub``
    (both forms), ``Fn::Join``, ``Fn::Select``, ``Fn::Split``, ``Fn::If`` with ``Conditions``
    (``Fn::Equals``, ``Fn::Not``, ``Fn::And``, ``Fn::Or``, ``Condition``), ``Fn::FindInMap``,
    ``Fn::Base64``, ``Fn::GetAZs``, ``Fn::ToJsonString`` and ``AWS::NoValue``.
    ``Fn::ImportValue`` names another stack and is refused.
    """

    def __init__(
        self,
        template: Template,
        physical: Mapping[str, Physical],
        parameters: Mapping[str, str] | None = None,
        *,
        stack: str = STACK,
        account: str = ACCOUNT,
        region: str = REGION,
    ) -> None:
        self.template = template
        self.physical = physical
        self.stack = stack
        self.account = account
        self.region = region
        self.parameters = self._parameters(parameters or {})
        self._conditions: dict[str, bool] = {}

    def _parameters(self, given: Mapping[str, str]) -> dict[str, Any]:
        values: dict[str, Any] = {}
        unknown = sorted(set(given) - set(self.template.parameters))
        if unknown:
            raise TemplateError(f"no parameter named {', '.join(unknown)} in the template")
        for name, declared in self.template.parameters.items():
            spec = declared if isinstance(declared, dict) else {}
            if name in given:
                value: Any = given[name]
            elif "Default" in spec:
                value = spec["Default"]
            else:
                raise TemplateError(f"parameter {name} has no Default: give it a value")
            allowed = spec.get("AllowedValues")
            if isinstance(allowed, list) and str(value) not in [str(a) for a in allowed]:
                raise TemplateError(
                    f"parameter {name}: {value!r} is not one of {', '.join(map(str, allowed))}"
                )
            if str(spec.get("Type", "String")).startswith("List<") or spec.get("Type") == (
                "CommaDelimitedList"
            ):
                value = [v.strip() for v in str(value).split(",")]
            else:
                value = str(value)
            values[name] = value
        return values

    def pseudo(self, name: str) -> Any:
        """A pseudo parameter's local value."""
        values = pseudo_parameters(self.stack, self.account, self.region)
        if name not in values:
            raise TemplateError(f"unknown pseudo parameter {name}")
        return values[name]

    def ref(self, name: str) -> Any:
        """What ``!Ref name`` gives."""
        if name.startswith("AWS::"):
            return self.pseudo(name)
        if name in self.parameters:
            return self.parameters[name]
        if name in self.physical:
            return self.physical[name].ref
        base, _, qualifier = name.partition(".")
        if qualifier in ("Version", "Alias") and base in self.physical:
            return self._published(base, qualifier)
        raise TemplateError(f"!Ref {name}: no resource or parameter by that name")

    def _published(self, logical_id: str, qualifier: str) -> str:
        """SAM's ``!Ref Function.Version`` and ``!Ref Function.Alias`` (AutoPublishAlias): a
        qualified ARN. Locally the version is a digest of the function's code folder, so it
        changes exactly when the code does, as a new published version would."""
        props = self.template.properties(logical_id)
        alias = props.get("AutoPublishAlias")
        if not isinstance(alias, str) or not alias:
            raise TemplateError(
                f"!Ref {logical_id}.{qualifier}: {logical_id} has no AutoPublishAlias (SAM makes "
                "a version and an alias only for a function with one)"
            )
        arn = self.physical[logical_id].attrs["Arn"]
        if qualifier == "Alias":
            return f"{arn}:{alias}"
        code = props.get("CodeUri")
        folder = self.template.base / code if isinstance(code, str) else self.template.base
        marks = repr(fingerprint([folder])) if folder.is_dir() else ""
        return f"{arn}:{int(hashlib.sha256(marks.encode()).hexdigest()[:7], 16)}"

    def get_att(self, logical_id: str, attribute: str) -> str:
        """What ``!GetAtt logical_id.attribute`` gives."""
        found = self.physical.get(logical_id)
        if found is None:
            raise TemplateError(f"!GetAtt {logical_id}.{attribute}: no resource {logical_id}")
        if attribute not in found.attrs:
            known = ", ".join(sorted(found.attrs)) or "none known locally"
            raise TemplateError(
                f"!GetAtt {logical_id}.{attribute}: the local stack knows no attribute "
                f"{attribute} of {logical_id} ({known})"
            )
        return found.attrs[attribute]

    def condition(self, name: str) -> bool:
        """The value of one of the template's Conditions."""
        if name not in self._conditions:
            if name not in self.template.conditions:
                raise TemplateError(f"no condition named {name}")
            self._conditions[name] = bool(self.resolve(self.template.conditions[name]))
        return self._conditions[name]

    def active(self, logical_id: str) -> bool:
        """False for a resource whose ``Condition`` is false (it does not exist)."""
        condition = self.template.resources.get(logical_id, {}).get("Condition")
        return condition is None or self.condition(str(condition))

    def resolve(self, node: Any) -> Any:
        """``node`` with every intrinsic replaced by its local value."""
        result = self._resolve(node)
        return None if result is NO_VALUE else result

    def _resolve(self, node: Any) -> Any:
        if isinstance(node, list):
            return [v for v in (self._resolve(item) for item in node) if v is not NO_VALUE]
        if not isinstance(node, dict):
            return node
        if len(node) == 1:
            ((key, arg),) = node.items()
            handler = self._functions().get(key)
            if handler is not None:
                return handler(arg)
        resolved = {key: self._resolve(value) for key, value in node.items()}
        return {key: value for key, value in resolved.items() if value is not NO_VALUE}

    def _functions(self) -> dict[str, Callable[[Any], Any]]:
        return {
            "Ref": lambda a: self.ref(str(self._resolve(a))),
            "Fn::GetAtt": self._get_att,
            "Fn::Sub": self._sub,
            "Fn::Join": self._join,
            "Fn::Select": self._select,
            "Fn::Split": self._split,
            "Fn::If": self._if,
            "Fn::Equals": lambda a: _pair(self._resolve(a), "Fn::Equals", lambda x, y: x == y),
            "Fn::Not": lambda a: not self._resolve(a)[0],
            "Fn::And": lambda a: all(self._resolve(a)),
            "Fn::Or": lambda a: any(self._resolve(a)),
            "Condition": lambda a: self.condition(str(a)),
            "Fn::Condition": lambda a: self.condition(str(a)),
            "Fn::FindInMap": self._find_in_map,
            "Fn::Base64": lambda a: base64.b64encode(str(self._resolve(a)).encode()).decode(),
            "Fn::GetAZs": lambda a: [f"{self.region}{z}" for z in "abc"],
            "Fn::ToJsonString": lambda a: json.dumps(self._resolve(a), separators=(",", ":")),
            "Fn::ImportValue": self._import_value,
        }

    def _get_att(self, arg: Any) -> str:
        arg = self._resolve(arg)
        if isinstance(arg, str):
            arg = arg.split(".", 1)
        if not isinstance(arg, list) or len(arg) != 2:
            raise TemplateError(f"!GetAtt needs LogicalId.Attribute, not {arg!r}")
        return self.get_att(str(arg[0]), str(arg[1]))

    def _sub(self, arg: Any) -> str:
        if isinstance(arg, list):
            if len(arg) != 2 or not isinstance(arg[1], dict):
                raise TemplateError("!Sub takes a string, or [string, {name: value}]")
            text, variables = arg[0], {k: self._resolve(v) for k, v in arg[1].items()}
        else:
            text, variables = arg, {}
        if not isinstance(text, str):
            raise TemplateError(f"!Sub needs a string, not {text!r}")

        def replace(match: re.Match[str]) -> str:
            name = match.group(1).strip()
            if name.startswith("!"):
                return "${" + name[1:] + "}"
            if name in variables:
                return _text(variables[name])
            if "." in name and not name.startswith("AWS::"):
                logical_id, attribute = name.split(".", 1)
                return self.get_att(logical_id, attribute)
            return _text(self.ref(name))

        return _SUB.sub(replace, text)

    def _join(self, arg: Any) -> str:
        arg = self._resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[1], list):
            raise TemplateError("!Join takes [delimiter, [values]]")
        return str(arg[0]).join(_text(v) for v in arg[1])

    def _select(self, arg: Any) -> Any:
        arg = self._resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2 or not isinstance(arg[1], list):
            raise TemplateError("!Select takes [index, [values]]")
        try:
            return arg[1][int(arg[0])]
        except (IndexError, ValueError):
            raise TemplateError(f"!Select: no item {arg[0]} in {arg[1]!r}") from None

    def _split(self, arg: Any) -> list[str]:
        arg = self._resolve(arg)
        if not isinstance(arg, list) or len(arg) != 2:
            raise TemplateError("!Split takes [delimiter, string]")
        return str(arg[1]).split(str(arg[0]))

    def _if(self, arg: Any) -> Any:
        if not isinstance(arg, list) or len(arg) != 3:
            raise TemplateError("!If takes [condition, value if true, value if false]")
        return self._resolve(arg[1] if self.condition(str(arg[0])) else arg[2])

    def _find_in_map(self, arg: Any) -> Any:
        arg = self._resolve(arg)
        mappings = self.template.document.get("Mappings") or {}
        try:
            return mappings[arg[0]][arg[1]][arg[2]]
        except (KeyError, IndexError, TypeError):
            raise TemplateError(f"!FindInMap {arg!r}: not in Mappings") from None

    def _import_value(self, arg: Any) -> Any:
        raise TemplateError(
            f"!ImportValue {arg!r}: the local stack runs one stack and cannot import from another"
        )


def _pair(value: Any, name: str, test: Callable[[Any, Any], bool]) -> bool:
    if not isinstance(value, list) or len(value) != 2:
        raise TemplateError(f"{name} takes two values")
    return test(value[0], value[1])


def _text(value: Any) -> str:
    """A resolved value as it appears in a string (numbers and booleans as CloudFormation
    writes them)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"))
    return str(value)


# -- functions --------------------------------------------------------------------------------


def functions(
    template: Template, resolver: Resolver, physical: Mapping[str, Physical]
) -> list[FunctionSpec]:
    """Every function of the template with its environment and events resolved."""
    specs: list[FunctionSpec] = []
    for logical_id in template.of_type(*FUNCTION_TYPES):
        if not resolver.active(logical_id):
            continue
        props = resolver.resolve(template.properties(logical_id)) or {}
        specs.append(_function(template, logical_id, props, physical))
    return specs


def _function(
    template: Template,
    logical_id: str,
    props: dict[str, Any],
    physical: Mapping[str, Physical],
) -> FunctionSpec:
    where = f"function {logical_id}"
    code = props.get("CodeUri", props.get("Code"))
    inline = props.get("InlineCode")
    if isinstance(inline, str):
        code_uri = _inline_folder(inline)
    elif not isinstance(code, str):
        raise TemplateError(f"{where}: CodeUri must be a folder of the project (not {code!r})")
    else:
        code_uri = (template.base / code).resolve()
        if not code_uri.is_dir():
            raise TemplateError(f"{where}: CodeUri {code} is not a folder of {template.base}")
    handler = props.get("Handler")
    if not isinstance(handler, str) or "." not in handler:
        raise TemplateError(f"{where}: Handler must be module.function, not {handler!r}")
    runtime = str(props.get("Runtime", ""))
    if runtime and not runtime.startswith("python"):
        raise TemplateError(
            f"{where}: runtime {runtime} is not Python; the local stack runs Python"
        )
    variables = (props.get("Environment") or {}).get("Variables") or {}
    if not isinstance(variables, dict):
        raise TemplateError(f"{where}: Environment.Variables must be a mapping")
    layers = tuple(
        _layer_path(template, layer, physical, where) for layer in props.get("Layers") or []
    )
    name = physical[logical_id].ref
    invoke_config = props.get("EventInvokeConfig") or {}
    retries = int(invoke_config.get("MaximumRetryAttempts", 2))
    if not 0 <= retries <= 2:
        raise TemplateError(f"{where}: EventInvokeConfig.MaximumRetryAttempts must be 0 to 2")
    on_failure = ((invoke_config.get("DestinationConfig") or {}).get("OnFailure") or {}).get(
        "Destination"
    )
    return FunctionSpec(
        logical_id=logical_id,
        name=name,
        arn=physical[logical_id].attrs["Arn"],
        code_uri=code_uri,
        handler=handler,
        runtime=runtime,
        timeout_s=int(props.get("Timeout", DEFAULT_TIMEOUT_S)),
        memory_mb=int(props.get("MemorySize", DEFAULT_MEMORY_MB)),
        environment={str(k): _text(v) for k, v in variables.items() if v is not None},
        layers=tuple(p for p in layers if p is not None),
        events=tuple(_events(logical_id, props.get("Events") or {}, physical)),
        async_retries=retries,
        on_failure=None if on_failure is None else str(on_failure),
        tags=_tags(props.get("Tags"), where),
    )


def _tags(value: Any, where: str) -> dict[str, str]:
    """Tags as SAM writes them (a mapping) or as ``AWS::Lambda::Function`` does (a list of
    ``{Key, Value}``)."""
    if value is None:
        return {}
    if isinstance(value, dict):
        return {str(k): _text(v) for k, v in value.items()}
    if isinstance(value, list) and all(isinstance(t, dict) and "Key" in t for t in value):
        return {str(t["Key"]): _text(t.get("Value", "")) for t in value}
    raise TemplateError(f"{where}: Tags must be a mapping of key to value")


def _inline_folder(code: str) -> Path:
    """A folder holding ``InlineCode`` as Lambda writes it (``index.py``), one per content."""
    folder = (
        Path(tempfile.gettempdir())
        / "stepwell-inline"
        / hashlib.sha256(code.encode()).hexdigest()[:16]
    )
    if not (folder / "index.py").is_file():
        folder.mkdir(parents=True, exist_ok=True)
        (folder / "index.py").write_text(code)
    return folder


def _layer_path(
    template: Template, layer: Any, physical: Mapping[str, Physical], where: str
) -> Path | None:
    """The folder of a layer the template builds (None for a layer from elsewhere: an ARN)."""
    for logical_id, resource in template.of_type(*LAYER_TYPES).items():
        if logical_id in physical and physical[logical_id].ref == layer:
            props = resource.get("Properties") or {}
            content = props.get("ContentUri", props.get("Content"))
            if not isinstance(content, str):
                raise TemplateError(f"layer {logical_id}: ContentUri must be a project folder")
            return (template.base / content).resolve()
    return None


def _events(
    logical_id: str, events: dict[str, Any], physical: Mapping[str, Physical]
) -> list[EventSource]:
    found: list[EventSource] = []
    for name, event in events.items():
        if not isinstance(event, dict):
            continue
        type_ = event.get("Type")
        props = event.get("Properties") or {}
        rule_name = f"{STACK}-{logical_id}{name}"
        if type_ == "HttpApi":
            api = props.get("ApiId") or physical[IMPLICIT_HTTP_API].ref
            path = str(props.get("Path") or "$default")
            method = str(props.get("Method") or "ANY").upper()
            if method == "X-AMAZON-APIGATEWAY-ANY-METHOD":
                method = "ANY"
            version = str(props.get("PayloadFormatVersion", "2.0"))
            if version != "2.0":
                raise TemplateError(
                    f"function {logical_id} event {name}: only payload format 2.0 is served locally"
                )
            auth = props.get("Auth") or {}
            authorizer = auth.get("Authorizer") if isinstance(auth, dict) else None
            found.append(
                HttpRoute(
                    name,
                    str(api),
                    method,
                    path,
                    version,
                    int(props.get("TimeoutInMillis", 30_000)),
                    None if authorizer in (None, "NONE") else str(authorizer),
                )
            )
        elif type_ == "Schedule":
            found.append(
                ScheduleSource(
                    name,
                    "Schedule",
                    str(props.get("Schedule", "")),
                    _input(props.get("Input")),
                    "UTC",
                    _enabled(props),
                    str(props.get("Name") or rule_name),
                )
            )
        elif type_ == "ScheduleV2":
            found.append(
                ScheduleSource(
                    name,
                    "ScheduleV2",
                    str(props.get("ScheduleExpression", "")),
                    _input(props.get("Input")),
                    str(props.get("ScheduleExpressionTimezone") or "UTC"),
                    _enabled(props),
                    str(props.get("Name") or rule_name),
                )
            )
        elif type_ in ("EventBridgeRule", "CloudWatchEvent"):
            pattern = props.get("Pattern")
            if not isinstance(pattern, dict):
                raise TemplateError(
                    f"function {logical_id} event {name}: Pattern must be a mapping"
                )
            transformer = props.get("InputTransformer")
            found.append(
                RuleSource(
                    name,
                    str(props.get("EventBusName") or "default"),
                    pattern,
                    _input(props.get("Input")),
                    props.get("InputPath"),
                    dict(transformer) if isinstance(transformer, dict) else None,
                    _enabled(props),
                    str(props.get("RuleName") or rule_name),
                )
            )
        elif type_ == "SQS":
            scaling = props.get("ScalingConfig") or {}
            found.append(
                QueueSource(
                    name,
                    str(props.get("Queue", "")),
                    int(props.get("BatchSize", 10)),
                    int(props.get("MaximumBatchingWindowInSeconds", 0)),
                    "ReportBatchItemFailures" in (props.get("FunctionResponseTypes") or []),
                    int(scaling.get("MaximumConcurrency", 5)),
                    bool(props.get("Enabled", True)),
                )
            )
        else:
            raise TemplateError(
                f"function {logical_id} event {name}: type {type_} is not run locally "
                "(HttpApi, Schedule, ScheduleV2, EventBridgeRule and SQS are)"
            )
    return found


def _input(value: Any) -> str | None:
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value)


def _enabled(props: Mapping[str, Any]) -> bool:
    state = props.get("State")
    if state is not None:
        return str(state).upper() == "ENABLED"
    return bool(props.get("Enabled", True))


# -- queues -----------------------------------------------------------------------------------

_QUEUE_ATTRIBUTES = (
    "DelaySeconds",
    "MaximumMessageSize",
    "MessageRetentionPeriod",
    "ReceiveMessageWaitTimeSeconds",
    "VisibilityTimeout",
    "RedrivePolicy",
    "SqsManagedSseEnabled",
    "KmsMasterKeyId",
    "FifoQueue",
    "ContentBasedDeduplication",
)


def queues(
    template: Template, resolver: Resolver, physical: Mapping[str, Physical]
) -> list[QueueSpec]:
    """Every SQS queue, dead-letter queues before the queues that name them."""
    specs: dict[str, QueueSpec] = {}
    for logical_id in template.of_type("AWS::SQS::Queue"):
        if not resolver.active(logical_id):
            continue
        props = resolver.resolve(template.properties(logical_id)) or {}
        attributes: dict[str, str] = {}
        for key in _QUEUE_ATTRIBUTES:
            if key in props:
                value = props[key]
                attributes[key] = json.dumps(value) if isinstance(value, dict) else _text(value)
        found = physical[logical_id]
        specs[logical_id] = QueueSpec(
            logical_id, found.attrs["QueueName"], found.ref, found.attrs["Arn"], attributes
        )
    by_arn = {spec.arn: spec for spec in specs.values()}
    ordered: list[QueueSpec] = []

    def visit(spec: QueueSpec, seen: tuple[str, ...] = ()) -> None:
        if spec in ordered or spec.logical_id in seen:
            return
        target = json.loads(spec.attributes.get("RedrivePolicy", "{}")).get("deadLetterTargetArn")
        if target in by_arn:
            visit(by_arn[target], (*seen, spec.logical_id))
        ordered.append(spec)

    for spec in specs.values():
        visit(spec)
    return ordered


UNSERVED_TYPES = {
    "AWS::ApiGatewayV2::Route": "its routes are not served (HttpApi events are)",
    "AWS::ApiGatewayV2::Integration": "its integration is not served (HttpApi events are)",
    "AWS::Serverless::Api": "REST APIs are not served (HTTP APIs are)",
    "AWS::SNS::Topic": "topics are not emulated",
    "AWS::StepFunctions::StateMachine": "state machines are not emulated",
}


def unserved(template: Template, resolver: Resolver) -> list[str]:
    """What the local stack leaves out of this template, one line per resource."""
    notes: list[str] = []
    for logical_id, resource in template.resources.items():
        reason = UNSERVED_TYPES.get(str(resource.get("Type")))
        if reason and resolver.active(logical_id):
            notes.append(f"{logical_id} ({resource.get('Type')}): {reason}")
    return notes


def with_functions(project: Path, functions: Mapping[str, tuple[Path, str]], folder: Path) -> Path:
    """A copy of ``project``'s template.yaml with more step functions (``logical id -> (code
    folder, handler)``), written to ``folder``; its paths (code folders, a nested template's
    location) are made absolute, so the copy runs the project's own functions and engine. A
    workflow names an added function by its logical id. For benchmarks and tests that add
    functions of their own without changing the project."""
    document = load_template(project / "template.yaml")
    function_globals = (document.get("Globals") or {}).get("Function") or {}
    for props in [
        function_globals,
        *((spec.get("Properties") or {}) for spec in document["Resources"].values()),
    ]:
        for key in ("CodeUri", "ContentUri", "Location"):
            if isinstance(props.get(key), str) and "://" not in props[key]:
                props[key] = str((project / props[key]).resolve())
    for logical_id, (code, handler) in functions.items():
        document["Resources"][logical_id] = {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                # A stable name too (a step or a plain Lambda's ARN may name it).
                "FunctionName": {
                    "Fn::Sub": "${AWS::StackName}-" + logical_id.removesuffix("Function")
                },
                "CodeUri": str(code),
                "Handler": handler,
            },
        }
    path = folder / "template.json"
    path.write_text(json.dumps(document, indent=1))
    return path
