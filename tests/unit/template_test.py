"""template.yaml as it deploys: handlers that import from the layer alone, every variable the
code reads set on each function, no dependency cycle, no wildcard permission, alarms and the
function map that cover every function.

The deployed form is the SAM transform's output (``helpers.permissions.translated``); what each
function calls on AWS is checked against its policies in tests/e2e/template_permissions_test.py.
"""

from __future__ import annotations

import ast
import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from helpers.permissions import translated
from stepwell.local.template import FunctionSpec, Resolver, Template, functions, local_names
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks
from stepwell.runtime.clock import FakeClock

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT / "shared"
T0 = datetime(2026, 1, 1, tzinfo=UTC)

LOCAL_ONLY = ("moto", "rich")
"""Packages the layer leaves out (the Makefile's build-StepwellLayer): the local stack's and
the CLI's. No handler may need them."""

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
    "STEPWELL_FUNCTIONS": "maps step functions deployed under other names than the prefix's",
    "STEPWELL_HTTP_ALLOW_HOSTS": "the runner's alone (it runs http steps); unset allows nothing",
}
"""Variables the code reads that a deployment need not set."""

AWS_MANAGED = {
    "arn:aws:iam::aws:policy/service-role/AWSLambdaBasicExecutionRole",  # logs
    "arn:aws:iam::aws:policy/AWSXrayWriteOnlyAccess",  # traces (Tracing: Active)
    "arn:aws:iam::aws:policy/service-role/AWSLambdaSQSQueueExecutionRole",  # SQS events
}
"""The AWS managed policies SAM attaches; they serve the Lambda service, not the code."""


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def specs(template: Template) -> list[FunctionSpec]:
    names = local_names(template)
    return functions(template, Resolver(template, names), names)


@pytest.fixture(scope="module")
def cfn() -> dict[str, Any]:
    return translated()


def lambda_functions(cfn: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
    return {
        k: v["Properties"]
        for k, v in cfn["Resources"].items()
        if v["Type"] == "AWS::Lambda::Function"
    }


# -- handlers ---------------------------------------------------------------------------------

_IMPORT_ALL = """
import importlib.abc, importlib.util, json, sys

class NotInTheLayer(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in LOCAL_ONLY:
            raise ImportError(f"{name} is not in the layer (the local stack and the CLI only)")
        return None

sys.meta_path.insert(0, NotInTheLayer())
failures = {}
for logical_id, code_uri, handler in json.loads(sys.argv[1]):
    module_path, _, attribute = handler.rpartition(".")
    sys.path.insert(0, code_uri)
    try:
        source = f"{code_uri}/{module_path.replace('.', '/')}.py"
        spec = importlib.util.spec_from_file_location(f"handler_{logical_id}", source)
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        if not callable(getattr(module, attribute, None)):
            failures[logical_id] = f"{module_path} has no callable {attribute}"
    except Exception as exc:
        failures[logical_id] = f"{type(exc).__name__}: {exc}"
    finally:
        sys.path.remove(code_uri)
print(json.dumps(failures))
"""


def test_every_handler_imports_with_the_layer_alone(specs: list[FunctionSpec]) -> None:
    listed = [(s.logical_id, str(s.code_uri), s.handler) for s in specs]
    assert len(listed) >= 5
    environment = {
        **{k: v for k, v in os.environ.items() if not k.startswith("STEPWELL_")},
        **specs[0].environment,
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


def test_the_environment_scan_finds_what_the_runtime_reads(specs: list[FunctionSpec]) -> None:
    scheduler = next(s for s in specs if s.logical_id == "SchedulerFunction")
    read = set().union(
        *map(variables_read, code_of(scheduler.code_uri, scheduler.handler).values())
    )
    assert {
        "STEPWELL_TABLE",
        "STEPWELL_BUS",
        "STEPWELL_FUNCTION_PREFIX",
        "STEPWELL_API_URL",
    } <= read
    tree = ast.parse('import os\nos.environ["A"]\nos.getenv("B")\nenv.get("C", 1)\nx.get("D")')
    assert variables_read(tree) == {"A", "B", "C"}


def test_every_variable_a_function_reads_is_set_on_it(
    specs: list[FunctionSpec], cfn: dict[str, Any]
) -> None:
    deployed = lambda_functions(cfn)
    missing = {}
    for spec in specs:
        read = set().union(*map(variables_read, code_of(spec.code_uri, spec.handler).values()))
        variables = deployed[spec.logical_id]["Environment"]["Variables"]
        absent = read - set(variables) - LAMBDA_PROVIDED - set(OPTIONAL)
        if absent:
            missing[spec.logical_id] = sorted(absent)
    assert missing == {}


def test_approval_links_have_a_base_url_on_every_function(cfn: dict[str, Any]) -> None:
    """The functions the HTTP API calls take the URL from the request (naming the API would
    be a cycle); every other function is told it."""
    routed = {
        props["FunctionName"]["Ref"]
        for resource in cfn["Resources"].values()
        if resource["Type"] == "AWS::Lambda::Permission"
        and (props := resource["Properties"]).get("Principal") == "apigateway.amazonaws.com"
    }
    assert "ApiFunction" in routed
    for logical_id, props in lambda_functions(cfn).items():
        url = props["Environment"]["Variables"]["STEPWELL_API_URL"]
        if logical_id in routed:
            assert url == "", logical_id
        else:
            assert url == {
                "Fn::Sub": "https://${HttpApi}.execute-api.${AWS::Region}.${AWS::URLSuffix}"
            }


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


def test_the_deployed_template_has_no_dependency_cycle(cfn: dict[str, Any]) -> None:
    assert cycles(cfn) == []
    # The check sees the cycle the API URL used to make: the API function naming the API.
    broken = copy.deepcopy(cfn)
    variables = broken["Resources"]["ApiFunction"]["Properties"]["Environment"]["Variables"]
    variables["STEPWELL_API_URL"] = {"Fn::Sub": "https://${HttpApi}.execute-api.amazonaws.com"}
    assert any({"ApiFunction", "HttpApi"} <= set(cycle) for cycle in cycles(broken))


def test_every_optional_part_translates_without_a_cycle() -> None:
    cfn = translated(
        JwtIssuer="https://issuer.example.com",
        JwtAudience="stepwell",
        AlarmEmail="ops@example.com",
        PlainFunctionArns="arn:aws:lambda:us-east-1:123456789012:function:legacy-*",
    )
    assert cycles(cfn) == []


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


def test_no_policy_allows_every_action_or_every_resource(cfn: dict[str, Any]) -> None:
    statements = list(_allow_statements(cfn))
    assert len(statements) >= 5
    for where, statement in statements:
        for action in _values(statement["Action"]):
            assert action != "*" and not str(action).endswith(":*"), (where, action)
        for resource in _values(statement["Resource"]):
            assert resource != "*", (where, statement)


def test_roles_carry_only_the_expected_aws_managed_policies(cfn: dict[str, Any]) -> None:
    for logical_id, resource in cfn["Resources"].items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        managed = {
            a for a in resource["Properties"].get("ManagedPolicyArns") or [] if isinstance(a, str)
        }
        assert managed <= AWS_MANAGED, logical_id
        if "AWSLambdaSQSQueueExecutionRole" in str(managed):
            assert logical_id == "SchedulerFunctionRole"


# -- what every function must be part of ------------------------------------------------------


def test_a_step_function_is_one_resource_found_by_its_name_and_covered_by_the_alarms(
    template: Template,
) -> None:
    """Adding a step function is one resource: the runtime finds it by its name (the stack's
    prefix and its logical id less ``Function``), and its failures outside the step reach the
    scheduler (and StepInvocationsFailedAlarm) through the Globals' on-failure destination."""
    functions_ = template.of_type("AWS::Serverless::Function")
    variables = template.function_globals["Environment"]["Variables"]
    assert "STEPWELL_FUNCTIONS" not in variables
    assert variables["STEPWELL_FUNCTION_PREFIX"] == {"Fn::Sub": "${AWS::StackName}-"}
    invoke = template.function_globals["EventInvokeConfig"]
    assert invoke["MaximumRetryAttempts"] == 0  # Lambda never runs a step's code twice
    assert invoke["DestinationConfig"]["OnFailure"] == {
        "Type": "EventBridge",
        "Destination": {"Fn::GetAtt": ["EventBus", "Arn"]},
    }
    core = {"ApiFunction", "SchedulerFunction", "RunnerFunction", "TriggerFunction"}
    for logical_id, resource in functions_.items():
        if logical_id in core:
            continue
        name = resource["Properties"]["FunctionName"]["Fn::Sub"]
        assert name == "${AWS::StackName}-" + logical_id.removesuffix("Function"), logical_id
        assert "EventInvokeConfig" not in resource["Properties"], logical_id
    lost = functions_["SchedulerFunction"]["Properties"]["Events"]["LostInvocations"]
    assert lost["Properties"]["Pattern"]["detail"] == {"requestPayload": {"stepwell": ["step/1"]}}
    alarm = template.of_type("AWS::CloudWatch::Alarm")["StepInvocationsFailedAlarm"]
    assert alarm["Properties"]["MetricName"] == "StepInvocationsFailed"
    alarmed = {
        dimension["Value"]["Ref"]
        for alarm in template.of_type("AWS::CloudWatch::Alarm").values()
        for metric in alarm["Properties"].get("Metrics") or []
        if "MetricStat" in metric
        for dimension in metric["MetricStat"]["Metric"]["Dimensions"]
    }
    assert alarmed == core, "Stepwell's own functions' Errors belong in FunctionErrorsAlarm"
    for logical_id, alarm in template.of_type("AWS::CloudWatch::Alarm").items():
        metrics = [m for m in alarm["Properties"].get("Metrics") or [] if "MetricStat" in m]
        assert len(metrics) <= 10, f"{logical_id}: an alarm takes at most 10 metrics"


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
