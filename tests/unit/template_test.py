"""The engine's template (shared/stepwell/stack/template.yaml) and the repository's, which nests
it beside the examples, as they deploy: handlers that import from the layer alone, every
variable the code reads set on each function, no dependency cycle, no wildcard permission but
the one intended, the managed policies, alarms that cover the engine's functions, step functions
that are plain resources of the app's stack; the engine's layer requirements, its Serverless
Application Repository metadata and resource types.

The deployed form is the SAM transform's output (``helpers.permissions.translated``: the app
with its engine flattened into it under the local stack's names, ``StepwellApiFunction``); what
each function calls on AWS is checked against its policies in
tests/e2e/template_permissions_test.py.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import re
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

import stepwell
from helpers.permissions import function_policies, translated, translated_stack
from stepwell.catalog import load_definitions
from stepwell.local import engine
from stepwell.local.template import (
    FunctionSpec,
    Physical,
    Resolver,
    Template,
    api_endpoint,
    functions,
    local_names,
)
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.custom_resource import RESOURCE_TYPE
from stepwell.runtime.publishing import bind, unbound_functions
from stepwell.store.tables import load_template

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
APP = ROOT / "template.yaml"
ENGINE = engine.ENGINE_TEMPLATE
T0 = datetime(2026, 1, 1, tzinfo=UTC)

ENGINE_FUNCTIONS = (
    "ApiFunction",
    "SchedulerFunction",
    "RunnerFunction",
    "TriggerFunction",
    "PublisherFunction",
)
PUBLISHING = ("ApiFunction", "PublisherFunction")
"""The engine's functions that publish workflows (``PUT /workflows/{name}``, the custom
resource) and so wire their triggers."""

LOCAL_ONLY = ("moto", "rich")
"""Packages the layer leaves out (the engine's requirements.txt, which its Makefile installs):
the local stack's and the CLI's. No handler may need them."""

LAMBDA_PROVIDED = frozenset(
    {
        "AWS_REGION",
        "AWS_DEFAULT_REGION",
        "AWS_EXECUTION_ENV",
        "AWS_LAMBDA_FUNCTION_NAME",
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE",
        "AWS_LAMBDA_FUNCTION_VERSION",
        "AWS_LAMBDA_LOG_GROUP_NAME",
        "AWS_LAMBDA_LOG_STREAM_NAME",
        "AWS_LAMBDA_INITIALIZATION_TYPE",
        "AWS_LAMBDA_RUNTIME_API",
        "AWS_ACCESS_KEY_ID",
        "AWS_SECRET_ACCESS_KEY",
        "AWS_SESSION_TOKEN",
        "LAMBDA_TASK_ROOT",
        "LAMBDA_RUNTIME_DIR",
        "TZ",
        "_HANDLER",
        "_X_AMZN_TRACE_ID",
    }
)
"""Variables the Lambda runtime sets itself."""

OPTIONAL = {
    "STEPWELL_PAYLOAD_THRESHOLD": "a tuning knob: 32 KB when unset",
    "STEPWELL_HTTP_ALLOW_HOSTS": "the runner's alone (it runs http steps); unset allows nothing",
    "STEPWELL_ENGINE": "an app's function's settings in one variable; the engine's have each",
    "STEPWELL_WORKFLOWS": "a workflows function's files: its own package when unset",
    "STEPWELL_TRIGGER_FUNCTION_ARN": "set on the functions that publish (checked below)",
    "STEPWELL_TRIGGER_PREFIX": "rules' and schedules' names: the engine's stack name when unset",
    "STEPWELL_NOTIFY_QUEUE_URL": "the notifications function's alone: it sends people links",
    "STEPWELL_NOTIFY_EMAIL_FROM": "the notifications function's: empty sends no e-mail",
    "STEPWELL_NOTIFY_SLACK_SECRET": "the notifications function's: empty posts to no webhook",
}
"""Variables the code reads that a deployment need not set."""

AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # logs
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # traces (Tracing: Active)
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",  # SQS events
}
"""The AWS managed policies SAM attaches; they serve the Lambda service, not the code."""

OPTIONAL_PARTS = {
    "JwtIssuer": "https://issuer.example.com",
    "JwtAudience": "stepwell",
    "AlarmEmail": "ops@example.com",
    "PlainFunctionArns": "arn:aws:lambda:us-east-1:123456789012:function:legacy-*",
    "WorkflowRoles": "arn:aws:iam::123456789012:role/orders-*",
    "NotifyEmailFrom": "approvals@example.com",
    "NotifySlackWebhookSecret": "team/slack-approvals",
}
"""Parameters that add the optional parts: the JWT API, the alarms' e-mail, plain functions,
the roles workflows run their service calls as, the notifications' sender and Slack webhook."""


@dataclass(frozen=True)
class Deployed:
    """One template as it deploys."""

    name: str
    template: Template
    """As the local stack reads it (its engine flattened into it)."""
    cfn: dict[str, Any]
    """After the SAM transform, its engine flattened into it the same way."""
    names: dict[str, Physical]
    specs: list[FunctionSpec]
    prefix: str
    """What the engine's logical ids start with in it."""

    @property
    def resolver(self) -> Resolver:
        return Resolver(self.template, self.names)

    def spec(self, engine_id: str) -> FunctionSpec:
        """One of the engine's functions, by its logical id in the engine's template."""
        return next(s for s in self.specs if s.logical_id == self.prefix + engine_id)


def _deployed(name: str) -> Deployed:
    path, prefix = (ENGINE, "") if name == "engine" else (APP, "Stepwell")
    template = engine.load(path)
    names = local_names(template)
    specs = functions(template, Resolver(template, names), names)
    return Deployed(name, template, translated(path), names, specs, prefix)


@pytest.fixture(scope="module", params=["engine", "app"])
def deployed(request: pytest.FixtureRequest) -> Deployed:
    """The engine alone (an engine stack of its own), and the repository's template with the
    engine nested."""
    return _deployed(request.param)


@pytest.fixture(scope="module")
def app() -> Deployed:
    return _deployed("app")


def lambda_functions(cfn: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"]
        for k, v in cfn["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function"
    }


def settings(deployed: Deployed, logical_id: str) -> dict[str, str]:
    """A function's settings as the runtime reads them (``wiring.settings``: an app's function
    gets them from STEPWELL_ENGINE), resolved to local names."""
    variables = lambda_functions(deployed.cfn)[logical_id]["Environment"]["Variables"]
    resolved = deployed.resolver.resolve(variables)
    return wiring.settings({str(k): str(v) for k, v in resolved.items()})


# -- handlers ---------------------------------------------------------------------------------

_IMPORT_ALL = """
import importlib, importlib.abc, importlib.util, json, os, sys

class NotInTheLayer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in LOCAL_ONLY:
            raise ImportError(f"{name} is not in the layer (the local stack and the CLI only)")
        return None

sys.meta_path.insert(0, NotInTheLayer())
layer = os.environ["PYTHONPATH"]
failures = {}
for logical_id, code_uri, handler in json.loads(sys.argv[1]):
    module_path, _, attribute = handler.rpartition(".")
    own = f"{code_uri}/{module_path.replace('.', '/')}.py"
    sys.path.insert(0, code_uri)
    try:
        if os.path.isfile(own):  # the function's own code (its CodeUri)
            spec = importlib.util.spec_from_file_location(f"handler_{logical_id}", own)
            module = importlib.util.module_from_spec(spec)
            spec.loader.exec_module(module)
        else:  # a module of the layer, as Lambda finds it on /opt/python
            module = importlib.import_module(module_path)
            if not os.path.realpath(module.__file__).startswith(os.path.realpath(layer)):
                failures[logical_id] = f"{module_path} is not the layer's: {module.__file__}"
        if not callable(getattr(module, attribute, None)):
            failures[logical_id] = f"{module_path} has no callable {attribute}"
    except Exception as exc:
        failures[logical_id] = f"{type(exc).__name__}: {exc}"
    finally:
        sys.path.remove(code_uri)
print(json.dumps(failures))
"""


def test_every_handler_imports_with_the_layer_alone(deployed: Deployed) -> None:
    """The engine's functions run a module of the stepwell package (their InlineCode is a
    placeholder); the app's run their CodeUri's module; both import the rest from the layer."""
    listed = [(s.logical_id, str(s.code_uri), s.handler) for s in deployed.specs]
    assert {deployed.prefix + name for name in ENGINE_FUNCTIONS} <= {s[0] for s in listed}
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STEPWELL_")},
        **deployed.specs[0].environment,
        "PYTHONPATH": str(SHARED),  # /opt/python on Lambda
        "AWS_DEFAULT_REGION": "us-east-1",
    }
    script = f"LOCAL_ONLY = {LOCAL_ONLY!r}\n{_IMPORT_ALL}"
    done = subprocess.run(
        [sys.executable, "-c", script, json.dumps(listed)],
        capture_output=True,
        text=True,
        env=environment,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout.strip().splitlines()[-1]) == {}


# -- environment ------------------------------------------------------------------------------


def _module_file(name: str, roots: list[Path]) -> Path | None:
    for root in roots:
        for candidate in (root / f"{name.replace('.', '/')}.py", root / name.replace(".", "/")):
            if candidate.suffix == ".py" and candidate.is_file():
                return candidate
            if (candidate / "__init__.py").is_file():
                return candidate / "__init__.py"
    return None


def _imported(tree: ast.AST, module: str, is_package: bool) -> Iterator[str]:
    """Every module ``module``'s code may import (function-level imports included)."""
    package = module if is_package else module.rpartition(".")[0]
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                parts = package.split(".")
                parent = ".".join(parts[: len(parts) - node.level + 1])
                base = f"{parent}.{base}" if base else parent
            yield base
            yield from (f"{base}.{alias.name}" for alias in node.names)


def code_of(code_uri: Path, handler: str) -> dict[str, ast.AST]:
    """The syntax trees of the handler's module and of every module of ours it may import."""
    roots = [code_uri, SHARED]
    start = handler.rpartition(".")[0]
    todo, trees = [start], {}
    while todo:
        name = todo.pop()
        if name in trees:
            continue
        path = _module_file(name, roots)
        if path is None:
            continue  # a third-party module, or a name imported from a module
        tree = ast.parse(path.read_text(), str(path))
        trees[name] = tree
        parts = name.split(".")
        parents = [".".join(parts[:i]) for i in range(1, len(parts))]
        todo.extend([*parents, *_imported(tree, name, path.name == "__init__.py")])
    return trees


_ENV_NAMES = {"env", "environ", "environment"}


def _is_environment(node: ast.expr) -> bool:
    if isinstance(node, ast.Name):
        return node.id in _ENV_NAMES
    return isinstance(node, ast.Attribute) and node.attr == "environ"


def variables_read(tree: ast.AST) -> set[str]:
    """Names read with ``env.get("X")``, ``os.environ["X"]``, ``os.getenv("X")`` ..."""
    found = set()
    for node in ast.walk(tree):
        name: ast.expr | None = None
        if isinstance(node, ast.Call) and node.args:
            func = node.func
            if isinstance(func, ast.Attribute) and (
                (func.attr == "get" and _is_environment(func.value)) or func.attr == "getenv"
            ):
                name = node.args[0]
        elif isinstance(node, ast.Subscript) and _is_environment(node.value):
            name = node.slice
        if isinstance(name, ast.Constant) and isinstance(name.value, str):
            found.add(name.value)
    return found


def test_the_environment_scan_finds_what_the_runtime_reads(app: Deployed) -> None:
    scheduler = app.spec("SchedulerFunction")
    read = set().union(
        *map(variables_read, code_of(scheduler.code_uri, scheduler.handler).values())
    )
    assert {
        "STEPWELL_TABLE",
        "STEPWELL_BUS",
        "STEPWELL_ENGINE",
        "STEPWELL_API_URL",
        "STEPWELL_TRIGGER_FUNCTION_ARN",
    } <= read
    tree = ast.parse('import os\nos.environ["A"]\nos.getenv("B")\nenv.get("C", 1)\nx.get("D")')
    assert variables_read(tree) == {"A", "B", "C"}


def test_every_variable_a_function_reads_is_set_on_it(deployed: Deployed) -> None:
    """Each as the runtime reads it: an app's function has the engine's settings through
    STEPWELL_ENGINE (the engine's Settings output)."""
    missing = {}
    every: set[str] = set()
    for spec in deployed.specs:
        read = set().union(*map(variables_read, code_of(spec.code_uri, spec.handler).values()))
        every |= read
        absent = read - set(settings(deployed, spec.logical_id)) - LAMBDA_PROVIDED - set(OPTIONAL)
        if absent:
            missing[spec.logical_id] = sorted(absent)
    assert missing == {}
    assert set(OPTIONAL) <= every, "OPTIONAL names a variable no code reads any more"
    # Publishing wires a workflow's triggers only where the trigger function is named.
    for name in PUBLISHING:
        found = settings(deployed, deployed.prefix + name)["STEPWELL_TRIGGER_FUNCTION_ARN"]
        assert found == deployed.names[deployed.prefix + "TriggerFunction"].attrs["Arn"], name


def test_approval_links_have_a_base_url_on_every_function(deployed: Deployed) -> None:
    """The functions the HTTP API calls take the URL from the request (naming the API would
    be a cycle); every other function is told it, an app's through STEPWELL_ENGINE."""
    routed = {
        props["FunctionName"]["Ref"]
        for resource in deployed.cfn["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and (props := resource["Properties"]).get("Principal") == "apigateway.amazonaws.com"
    }
    assert routed == {deployed.prefix + "ApiFunction"}
    endpoint = api_endpoint(deployed.names[deployed.prefix + "HttpApi"].ref)
    for logical_id in lambda_functions(deployed.cfn):
        url = settings(deployed, logical_id)["STEPWELL_API_URL"]
        assert url == ("" if logical_id in routed else endpoint), logical_id


# -- dependencies -----------------------------------------------------------------------------


def _references(node: Any) -> Iterator[str]:
    if isinstance(node, list):
        for item in node:
            yield from _references(item)
    elif isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref":
                yield str(value)
            elif key == "Fn::GetAtt":
                yield str(value[0] if isinstance(value, list) else value.split(".")[0])
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                for name in _sub_names(text):
                    yield name.split(".")[0]
                if isinstance(value, list):
                    yield from _references(value[1])
            else:
                yield from _references(value)


def _sub_names(text: str) -> Iterator[str]:
    start = text.find("${")
    while start >= 0:
        end = text.find("}", start)
        name = text[start + 2 : end]
        if not name.startswith("!"):
            yield name
        start = text.find("${", end)


def cycles(cfn: Mapping[str, Any]) -> list[list[str]]:
    """Dependency cycles among the resources (Ref, GetAtt, Sub, DependsOn)."""
    resources = cfn["Resources"]
    edges = {}
    for logical_id, resource in resources.items():
        depends = resource.get("DependsOn") or []
        targets = set(_references(resource.get("Properties") or {}))
        targets |= set([depends] if isinstance(depends, str) else depends)
        edges[logical_id] = sorted(t for t in targets if t in resources and t != logical_id)
    found, state = [], dict.fromkeys(resources, 0)  # 0 new, 1 on the path, 2 done

    def visit(node: str, path: list[str]) -> None:
        state[node] = 1
        for target in edges[node]:
            if state[target] == 1:
                found.append([*path[path.index(target) :], target])
            elif state[target] == 0:
                visit(target, [*path, target])
        state[node] = 2

    for node in resources:
        if state[node] == 0:
            visit(node, [node])
    return found


def test_the_deployed_template_has_no_dependency_cycle(deployed: Deployed) -> None:
    assert cycles(deployed.cfn) == []
    # The check sees the cycle the API URL used to make: the API function naming the API.
    api, http_api = deployed.prefix + "ApiFunction", deployed.prefix + "HttpApi"
    broken = copy.deepcopy(deployed.cfn)
    variables = broken["Resources"][api]["Properties"]["Environment"]["Variables"]
    variables["STEPWELL_API_URL"] = {
        "Fn::Sub": f"https://${{{http_api}}}.execute-api.amazonaws.com"
    }
    assert any({api, http_api} <= set(cycle) for cycle in cycles(broken))


def test_the_app_and_its_nested_engine_do_not_wait_for_each_other() -> None:
    """CloudFormation orders the app's stack with the nested engine as one resource: the
    engine's parameters may not name what needs the engine's outputs. The flattened template
    cannot show that cycle (no resource of the engine needs the app's function)."""
    stack = translated_stack(APP)
    assert stack["Resources"]["Stepwell"]["Type"] == "AWS::CloudFormation::Stack"
    assert cycles(stack) == []
    broken = copy.deepcopy(stack)
    parameters = broken["Resources"]["Stepwell"]["Properties"]["Parameters"]
    parameters["PlainFunctionArns"] = {"Fn::GetAtt": ["ChargeCardFunction", "Arn"]}
    assert any({"Stepwell", "ChargeCardFunction"} <= set(cycle) for cycle in cycles(broken))


@pytest.mark.parametrize("path", [ENGINE, APP], ids=["engine", "app"])
def test_every_optional_part_translates_without_a_cycle(path: Path) -> None:
    """The JWT API, the alarms' e-mail and plain functions."""
    cfn = translated(path, **OPTIONAL_PARTS)
    assert cycles(cfn) == []
    assert cycles(translated_stack(path, **OPTIONAL_PARTS)) == []


# -- permissions ------------------------------------------------------------------------------


def _allow_statements(cfn: Mapping[str, Any]) -> Iterator[tuple[str, dict[str, Any]]]:
    for logical_id, resource in cfn["Resources"].items():
        props = resource.get("Properties") or {}
        documents: list[dict[str, Any]] = []
        if resource["Type"] == "AWS::IAM::Role":
            for policy in props.get("Policies") or []:
                chosen = policy["Fn::If"][1] if "Fn::If" in policy else policy  # when true
                documents.append(chosen["PolicyDocument"])
        elif resource["Type"] == "AWS::IAM::ManagedPolicy":
            documents = [props["PolicyDocument"]]
        for document in documents:
            for statement in (document or {}).get("Statement") or []:
                if statement.get("Effect") == "Allow":
                    yield logical_id, statement


def _values(value: Any) -> list[Any]:
    return value if isinstance(value, list) else [value]


ANY_RESOURCE_ACTIONS = frozenset({"events:ListRules", "scheduler:ListSchedules"})
"""Actions IAM authorises on no particular resource (the Service Authorization Reference lists
no resource type for them): a statement can grant them only on "*". Publishing lists a
workflow's rules and schedules to remove those it no longer has."""


def test_no_policy_allows_every_action_or_every_resource(deployed: Deployed) -> None:
    statements = list(_allow_statements(deployed.cfn))
    assert len(statements) >= 5
    engine_id = wiring.engine_name(settings(deployed, deployed.prefix + "RunnerFunction"))
    any_function = deployed.resolver.resolve(
        {"Fn::Sub": "arn:${AWS::Partition}:lambda:${AWS::Region}:${AWS::AccountId}:function:*"}
    )
    on_any_function = []
    for where, raw in statements:
        statement = deployed.resolver.resolve(raw)
        actions = _values(statement["Action"])
        for action in actions:
            assert action != "*" and not str(action).endswith(":*"), (where, action)
        for resource in _values(statement["Resource"]):
            if resource == "*":
                assert set(actions) <= ANY_RESOURCE_ACTIONS, (where, statement)
            if resource == any_function:
                on_any_function.append(where)
                # The one intended exception: the engine invokes an app's step and workflows
                # functions in any stack, under any name, and only those: they carry its id.
                assert actions == ["lambda:InvokeFunction"], (where, statement)
                assert statement["Condition"] == {
                    "StringEquals": {"aws:ResourceTag/stepwell:engine": engine_id}
                }, where
    assert on_any_function == [deployed.prefix + "OrchestratorPolicy"]


def test_roles_carry_the_managed_policies_their_functions_need(deployed: Deployed) -> None:
    """AWS managed policies: only those SAM attaches for the Lambda service. Ours: every
    function advances runs (OrchestratorPolicy, an app's as the engine's StepFunctionPolicyArn
    output); the functions that publish also wire triggers (PublishPolicy)."""
    cfn, prefix = deployed.cfn, deployed.prefix
    function_of = {
        props["Role"]["Fn::GetAtt"][0]: logical_id
        for logical_id, props in lambda_functions(cfn).items()
    }
    checked = 0
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        arns = resource["Properties"].get("ManagedPolicyArns") or []
        aws = {a for a in arns if isinstance(a, str)}
        assert aws <= AWS_MANAGED, logical_id
        if "AWSLambdaSQSQueueExecutionRole" in str(aws):
            # The functions an SQS queue feeds: timers, and notifications tried again.
            queue_fed = ("SchedulerFunctionRole", "NotificationsFunctionRole")
            assert logical_id in {prefix + name for name in queue_fed}
        ours = [a for a in arns if not isinstance(a, str)]
        function = function_of.get(logical_id)
        if function is None:
            assert ours == [], logical_id  # the scheduler's role: its own policies only
            continue
        expected = [{"Ref": prefix + "OrchestratorPolicy"}]
        if function in {prefix + name for name in PUBLISHING}:
            expected.append({"Ref": prefix + "PublishPolicy"})
        assert ours == expected, function
        checked += 1
    assert checked == len(deployed.specs)


@pytest.mark.parametrize("path", [ENGINE, APP], ids=["engine", "app"])
def test_the_runner_may_assume_only_the_roles_the_stack_names(path: Path) -> None:
    """A workflow's role (and a Task's Credentials) is assumed by the runner: by default no
    role at all, with WorkflowRoles those roles alone, and no other function ever."""
    prefix = "" if path == ENGINE else "Stepwell"
    allowed = OPTIONAL_PARTS["WorkflowRoles"]
    for given, expected in (({}, []), ({"WorkflowRoles": allowed}, [allowed])):
        template = engine.load(path, given)
        names = local_names(template)
        resolver = Resolver(template, names, given)
        assuming = {
            function: [r for s in statements if "sts:AssumeRole" in s.actions for r in s.resources]
            for function, statements in function_policies(
                translated(path, **given), resolver
            ).items()
        }
        assert {f: r for f, r in assuming.items() if r} == (
            {prefix + "RunnerFunction": expected} if expected else {}
        )


# -- what every function must be part of ------------------------------------------------------


def test_the_alarms_cover_the_engine_s_functions(deployed: Deployed) -> None:
    """The engine's own functions' Errors are summed in FunctionErrorsAlarm; a step function
    that fails outside its step reaches the scheduler through its on-failure destination
    (LostInvocations) and StepInvocationsFailedAlarm, with no list of functions to keep."""
    alarms = deployed.template.of_type("AWS::CloudWatch::Alarm")
    alarmed = {
        dimension["Value"]["Ref"]
        for alarm in alarms.values()
        for metric in alarm["Properties"].get("Metrics") or []
        if "MetricStat" in metric
        for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
    }
    assert alarmed == {deployed.prefix + name for name in ENGINE_FUNCTIONS}
    failed = alarms[deployed.prefix + "StepInvocationsFailedAlarm"]["Properties"]
    assert failed["MetricName"] == "StepInvocationsFailed"
    for logical_id, alarm in alarms.items():
        metrics = [m for m in alarm["Properties"].get("Metrics") or [] if "MetricStat" in m]
        assert len(metrics) <= 10, f"{logical_id}: an alarm takes at most 10 metrics"
    scheduler = deployed.template.properties(deployed.prefix + "SchedulerFunction")
    lost = scheduler["Events"]["LostInvocations"]["Properties"]
    assert lost["Pattern"]["detail"] == {"requestPayload": {"stepwell": ["step/1"]}}


def test_a_step_function_is_one_resource_of_the_app_bound_by_its_logical_id(app: Deployed) -> None:
    """Adding a step function is one resource of the app's stack, under any name: the Globals
    give it the engine's layer, settings and id (the tag its policy lets the engine invoke)
    and send its failures outside the step to the engine; a workflow names it by its logical
    id, which the publisher binds to its ARN from the app stack's functions."""
    raw = load_template(APP)
    globals_ = raw["Globals"]["Function"]

    def output(name: str) -> dict[str, Any]:
        return {"Fn::GetAtt": ["Stepwell", f"Outputs.{name}"]}

    assert globals_["Layers"] == [output("LayerArn")]
    assert globals_["Environment"]["Variables"]["STEPWELL_ENGINE"] == output("Settings")
    assert globals_["Tags"]["stepwell:engine"] == output("EngineId")
    invoke = globals_["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 0  # Lambda never runs a step's code twice
    assert invoke["DestinationConfig"]["OnFailure"] == {
        "Type": "EventBridge",
        "Destination": output("FailureDestination"),
    }
    own = {k: v for k, v in raw["Resources"].items() if v["Type"] == "AWS::Serverless::Function"}
    assert len(own) >= 10
    for logical_id, resource in own.items():
        props = resource["Properties"]
        assert "FunctionName" not in props, f"{logical_id}: no name to follow"
        assert props["Policies"] == [output("StepFunctionPolicyArn")], logical_id
        assert "EventInvokeConfig" not in props, logical_id
    # Every workflow file is published by a resource of the stack, and every function its steps
    # name is bound: CloudFormation lists the app stack's own functions by logical id.
    publications = {
        logical_id: resource["Properties"]
        for logical_id, resource in raw["Resources"].items()
        if resource["Type"] == RESOURCE_TYPE
    }
    folder = ROOT / "statemachines"
    files = {p.name for p in folder.iterdir() if p.suffix in (".yaml", ".py", ".json")}
    assert {props["Definition"] for props in publications.values()} == files
    stack_functions = {
        spec.logical_id: spec.arn
        for spec in app.specs
        if spec.logical_id not in app.template.nested
    }
    assert set(stack_functions) == set(own)
    for logical_id, props in publications.items():
        assert props["ServiceToken"] == output("WorkflowServiceToken"), logical_id
        assert props["Code"] == {"Ref": "ExampleWorkflowsFunction.Version"}, logical_id
        for workflow, _ in load_definitions([folder / props["Definition"]]):
            assert unbound_functions(bind(workflow, stack_functions, None)) == [], logical_id
    # The check sees a step whose function the stack does not have.
    ((orders, _),) = load_definitions([folder / "order-fulfilment.yaml"])
    assert unbound_functions(bind(orders, {}, None))


# -- the engine as a package and an application -----------------------------------------------


def test_the_layer_requires_the_package_s_dependencies_less_the_local_ones() -> None:
    """The engine's requirements.txt (what its Makefile installs into the layer) is
    pyproject.toml's dependencies without those of the local stack and the CLI."""
    declared = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["dependencies"]

    def package(requirement: str) -> str:
        return re.split(r"[\[<>=!~ ;]", requirement, maxsplit=1)[0].lower()

    expected = [r for r in declared if package(r) not in LOCAL_ONLY]
    assert len(expected) == len(declared) - len(LOCAL_ONLY)
    lines = (ENGINE.parent / "requirements.txt").read_text().splitlines()
    assert [line for line in lines if line.strip() and not line.startswith("#")] == expected


SAR_NAME = re.compile(r"[a-zA-Z0-9-]{1,140}")
SAR_AUTHOR = re.compile(r"^[a-z0-9](([a-z0-9]|-(?!-))*[a-z0-9])?$")
SAR_LABEL = re.compile(r"^[a-zA-Z0-9+\-_:/@]+$")
"""The Serverless Application Repository's rules for an application's metadata."""


def test_the_engine_s_repository_metadata_follows_the_repository_s_rules() -> None:
    metadata = load_template(ENGINE)["Metadata"]["AWS::ServerlessRepo::Application"]
    assert SAR_NAME.fullmatch(metadata["Name"])
    assert 1 <= len(metadata["Description"]) <= 256
    assert SAR_AUTHOR.match(metadata["Author"])
    assert len(metadata["Labels"]) <= 10
    assert all(SAR_LABEL.match(label) for label in metadata["Labels"])
    assert metadata["SemanticVersion"] == stepwell.__version__
    for key in ("LicenseUrl", "ReadmeUrl"):
        assert (ENGINE.parent / metadata[key]).is_file(), key
    assert (
        metadata["SpdxLicenseId"]
        == tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]["license"]
    )


SAR_SUPPORTED = frozenset(
    {
        "AWS::DynamoDB::Table",
        "AWS::S3::Bucket",
        "AWS::S3::BucketPolicy",
        "AWS::Events::Rule",
        "AWS::SQS::Queue",
        "AWS::IAM::Role",
        "AWS::IAM::ManagedPolicy",
        "AWS::Logs::LogGroup",
        "AWS::Lambda::Function",
        "AWS::Lambda::LayerVersion",
        "AWS::Lambda::Permission",
        "AWS::Lambda::EventInvokeConfig",
        "AWS::Lambda::EventSourceMapping",
        "AWS::Lambda::Version",
        "AWS::Lambda::Alias",
        "AWS::CloudWatch::Alarm",
        "AWS::SNS::Topic",
        "AWS::SNS::Subscription",
        "AWS::CloudFormation::Stack",
    }
)
"""Resource types the Serverless Application Repository supports, confirmed from its list as
last published in full (2021), besides every ``AWS::ApiGatewayV2::*`` type."""
SAR_UNCONFIRMED = frozenset(
    {
        "AWS::Events::EventBus",
        "AWS::Scheduler::ScheduleGroup",
        "AWS::Scheduler::Schedule",
        "AWS::SecretsManager::Secret",
    }
)
"""Types that list does not show; docs/adopting.md names those the engine uses and the ways to
deploy it that need no repository."""


def test_the_engine_s_resource_types_are_publishable_or_documented() -> None:
    used = {r["Type"] for r in translated(ENGINE, **OPTIONAL_PARTS)["Resources"].values()}
    assert "AWS::ApiGatewayV2::Api" in used
    supported = {t for t in used if t in SAR_SUPPORTED or t.startswith("AWS::ApiGatewayV2::")}
    assert used - supported <= SAR_UNCONFIRMED, "a resource type to check with the repository"
    documented = (ROOT / "docs" / "adopting.md").read_text()
    for unconfirmed in sorted(used - supported):
        assert f"`{unconfirmed}`" in documented, f"docs/adopting.md does not name {unconfirmed}"


# -- the API's own base URL (what breaks the cycle) -------------------------------------------


def _request(domain: str, stage: str = "$default", proto: str = "https") -> dict[str, Any]:
    return {
        "headers": {"X-Forwarded-Proto": proto},
        "requestContext": {"domainName": domain, "stage": stage},
    }


def test_the_api_function_takes_its_base_url_from_the_request() -> None:
    deployed = "a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com"
    assert wiring.api_url_of_request(_request(deployed)) == f"https://{deployed}"
    assert wiring.api_url_of_request(_request("api.example.com", "prod")) == (
        "https://api.example.com/prod"
    )
    assert wiring.api_url_of_request(_request("127.0.0.1:3000", proto="http")) == (
        "http://127.0.0.1:3000"
    )
    assert wiring.api_url_of_request(_request("x.example.com", proto="gopher")).startswith("https:")
    assert wiring.api_url_of_request({"headers": {}}) == ""


def test_links_made_while_serving_a_request_point_at_its_api() -> None:
    links = ApprovalLinks(_NoBus(), lambda: [b"k" * 32], wiring.request_api_url, FakeClock(T0))
    detail = {"run_id": "r1", "step": "wait", "attempt": 1}
    with wiring.serving_request(_request("abc.execute-api.us-east-1.amazonaws.com")):
        inside = links.callback_link(detail)["url"]
    assert inside.startswith("https://abc.execute-api.us-east-1.amazonaws.com/callbacks/")
    assert links.callback_link(detail)["url"].startswith("/callbacks/")  # no request, no URL
    fixed = ApprovalLinks(_NoBus(), lambda: [b"k" * 32], "https://set/", FakeClock(T0))
    with wiring.serving_request(_request("abc.example.com")):
        assert fixed.callback_link(detail)["url"].startswith("https://set/callbacks/")


class _NoBus:
    def emit(self, command: Any) -> None:
        raise AssertionError("nothing is published here")
