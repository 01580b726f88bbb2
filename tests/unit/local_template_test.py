"""template.yaml as the local stack reads it: local names, intrinsics, functions and events."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepwell.local.template import (
    ACCOUNT,
    REGION,
    STACK,
    FunctionSpec,
    HttpRoute,
    Physical,
    QueueSource,
    Resolver,
    RuleSource,
    ScheduleSource,
    Template,
    TemplateError,
    api_endpoint,
    functions,
    local_names,
    merge_globals,
    queues,
)

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def template() -> Template:
    return Template.load(ROOT / "template.yaml")


@pytest.fixture(scope="module")
def names(template: Template) -> dict[str, Physical]:
    return local_names(template)


@pytest.fixture(scope="module")
def specs(template: Template, names: dict[str, Physical]) -> dict[str, FunctionSpec]:
    resolver = Resolver(template, names)
    return {spec.logical_id: spec for spec in functions(template, resolver, names)}


def small(tmp_path: Path, text: str) -> Template:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return Template.load(path)


# -- names ------------------------------------------------------------------------------------
def test_resources_get_the_stack_s_names(names: dict[str, Physical]) -> None:
    assert names["StepwellTable"].ref == f"{STACK}-StepwellTable"
    assert names["StepwellTable"].attrs["Arn"] == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-StepwellTable"
    )
    assert names["PayloadBucket"].ref == "stepwell-local-payloadbucket"
    queue = names["TimerQueue"]
    assert queue.ref == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-TimerQueue"
    assert queue.attrs["Arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-TimerQueue"
    assert names["EventBus"].ref == "stepwell-local-bus"  # !Sub "${AWS::StackName}-bus"
    assert names["ScheduleGroup"].ref == "stepwell-local-timers"
    assert names["SchedulerRole"].attrs["Arn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    assert names["SigningSecret"].ref.startswith(
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
    )
    assert names["RunnerFunction"].ref == "stepwell-local-runner"
    assert names["ChargeCardFunction"].attrs["Arn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:stepwell-local-ChargeCard"
    )
    assert len(names["HttpApi"].ref) == 10


def test_resources_whose_condition_is_false_do_not_exist(template: Template) -> None:
    assert "JwtApi" not in local_names(template)
    with_jwt = local_names(template, parameters={"JwtIssuer": "https://issuer.example.com"})
    assert "JwtApi" in with_jwt


def test_an_unknown_parameter_is_refused(template: Template) -> None:
    with pytest.raises(TemplateError, match="no parameter named Nope"):
        Resolver(template, {}, {"Nope": "1"})


def test_a_value_outside_allowed_values_is_refused(template: Template) -> None:
    with pytest.raises(TemplateError, match="LogLevel"):
        Resolver(template, {}, {"LogLevel": "LOUD"})


# -- intrinsics -------------------------------------------------------------------------------
def test_intrinsics_resolve_to_local_values(template: Template, names: dict[str, Physical]) -> None:
    resolver = Resolver(template, names)
    assert resolver.resolve({"Ref": "AWS::Region"}) == REGION
    assert resolver.resolve({"Ref": "RetentionDays"}) == "90"
    assert (
        resolver.resolve({"Fn::GetAtt": ["TimerQueue", "Arn"]}) == names["TimerQueue"].attrs["Arn"]
    )
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-x-${StepwellTable}"}) == (
        f"{STACK}-x-{STACK}-StepwellTable"
    )
    assert resolver.resolve({"Fn::Sub": "${TimerQueue.QueueName}/${!Literal}"}) == (
        f"{STACK}-TimerQueue/${{Literal}}"
    )
    assert resolver.resolve({"Fn::Sub": ["${a}-${AWS::AccountId}", {"a": {"Ref": "Stage"}}]}) == (
        f"dev-{ACCOUNT}"
    )
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "Stage"}, 3]]}) == "a/dev/3"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert resolver.resolve({"Fn::If": ["UseJwt", "jwt", "iam"]}) == "iam"
    assert resolver.resolve({"Fn::Base64": "hi"}) == "aGk="
    assert resolver.resolve({"a": 1, "b": {"Ref": "AWS::NoValue"}}) == {"a": 1}
    assert resolver.resolve([1, {"Ref": "AWS::NoValue"}, 2]) == [1, 2]
    assert resolver.resolve({"Fn::ToJsonString": {"a": [1]}}) == '{"a":[1]}'


def test_references_to_nothing_say_what_is_missing(
    template: Template, names: dict[str, Physical]
) -> None:
    resolver = Resolver(template, names)
    with pytest.raises(TemplateError, match="!Ref Missing"):
        resolver.resolve({"Ref": "Missing"})
    with pytest.raises(TemplateError, match="no attribute Nope of TimerQueue"):
        resolver.resolve({"Fn::GetAtt": "TimerQueue.Nope"})
    with pytest.raises(TemplateError, match="cannot import"):
        resolver.resolve({"Fn::ImportValue": "other-stack-output"})


def test_sam_globals_merge_maps_append_lists_and_replace_scalars() -> None:
    merged = merge_globals(
        {"Timeout": 30, "Layers": ["a"], "Environment": {"Variables": {"A": "1", "B": "2"}}},
        {"Timeout": 120, "Layers": ["b"], "Environment": {"Variables": {"B": "3"}}},
    )
    assert merged == {
        "Timeout": 120,
        "Layers": ["a", "b"],
        "Environment": {"Variables": {"A": "1", "B": "3"}},
    }


# -- functions and their events ---------------------------------------------------------------
def test_functions_get_their_code_handler_timeout_and_layer(specs: dict[str, FunctionSpec]) -> None:
    api = specs["ApiFunction"]
    scheduler = specs["SchedulerFunction"]
    assert api.name == "stepwell-local-api"
    assert api.code_uri == ROOT / "functions" / "api"
    assert api.handler == "app.handler"
    assert api.timeout_s == 30  # from Globals
    assert scheduler.timeout_s == 120  # its own
    assert api.layers == (ROOT,)  # StepwellLayer, ContentUri "."
    assert api.memory_mb == 512


def test_the_environment_is_resolved_to_local_names(
    specs: dict[str, FunctionSpec], names: dict[str, Physical]
) -> None:
    env = specs["ChargeCardFunction"].environment
    assert env["STEPWELL_TABLE"] == names["StepwellTable"].ref
    assert env["STEPWELL_TIMER_QUEUE_URL"] == names["TimerQueue"].ref
    assert env["STEPWELL_TIMER_QUEUE_ARN"] == names["TimerQueue"].attrs["Arn"]
    assert env["STEPWELL_SIGNING_SECRET"] == names["SigningSecret"].ref
    assert env["STEPWELL_RUNNER_FUNCTION"] == "stepwell-local-runner"
    assert env["STEPWELL_RETENTION_DAYS"] == "90"
    assert env["STEPWELL_FUNCTION_PREFIX"] == "stepwell-local-"
    assert specs["ChargeCardFunction"].name == "stepwell-local-ChargeCard"
    assert specs["ChargeCardFunction"].async_retries == 0
    assert specs["ChargeCardFunction"].on_failure == names["EventBus"].attrs["Arn"]
    assert specs["TriggerFunction"].async_retries == 2
    assert env["STEPWELL_API_URL"] == api_endpoint(names["HttpApi"].ref)
    assert env["STEPWELL_WORKFLOWS"] == "/opt/statemachines"
    # The API function serves HttpApi's routes, so it cannot name HttpApi (a cycle): it takes
    # the base URL from each request instead.
    assert specs["ApiFunction"].environment["STEPWELL_API_URL"] == ""


def test_events_of_every_kind_are_read(specs: dict[str, FunctionSpec]) -> None:
    api_events = specs["ApiFunction"].events
    routes = {e.route_key: e for e in api_events if isinstance(e, HttpRoute)}
    assert routes["POST /workflows/{name}/runs"].authorizer == "AWS_IAM"
    assert routes["POST /approvals/{token}"].authorizer is None
    scheduler_events = specs["SchedulerFunction"].events
    sweep = next(e for e in scheduler_events if isinstance(e, ScheduleSource))
    assert (sweep.kind, sweep.expression, json.loads(sweep.input or "")) == (
        "Schedule",
        "rate(1 minute)",
        {"sweep": True},
    )
    timers = next(e for e in scheduler_events if isinstance(e, QueueSource))
    assert timers.batch_size == 10 and timers.report_batch_item_failures
    trigger_events = specs["TriggerFunction"].events
    rule = next(e for e in trigger_events if isinstance(e, RuleSource))
    assert rule.bus == "stepwell-local-bus"
    assert rule.pattern == {"source": ["shop"], "detail-type": ["order.placed"]}
    assert rule.input_transformer is not None
    daily = next(e for e in trigger_events if isinstance(e, ScheduleSource))
    assert (daily.kind, daily.expression, daily.timezone) == (
        "ScheduleV2",
        "cron(0 6 * * ? *)",
        "UTC",
    )


def test_queues_come_dead_letter_queue_first(
    template: Template, names: dict[str, Physical]
) -> None:
    found = queues(template, Resolver(template, names), names)
    assert [q.logical_id for q in found] == ["TimerDeadLetterQueue", "TimerQueue"]
    redrive = json.loads(found[1].attributes["RedrivePolicy"])
    assert redrive == {"deadLetterTargetArn": found[0].arn, "maxReceiveCount": 5}
    assert found[1].attributes["VisibilityTimeout"] == "180"


def test_a_function_outside_python_or_without_code_is_refused(tmp_path: Path) -> None:
    text = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties: {CodeUri: code/, Handler: index.handler, Runtime: nodejs20.x}
"""
    template = small(tmp_path, text)
    names = local_names(template)
    with pytest.raises(TemplateError, match="not Python"):
        functions(template, Resolver(template, names), names)
    template = small(
        tmp_path, text.replace("code/", "nowhere/").replace("nodejs20.x", "python3.12")
    )
    with pytest.raises(TemplateError, match="not a folder"):
        functions(template, Resolver(template, local_names(template)), local_names(template))


def test_an_unsupported_event_type_is_named(tmp_path: Path) -> None:
    template = small(
        tmp_path,
        """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
      Events:
        Upload: {Type: S3, Properties: {Bucket: b, Events: s3:ObjectCreated:*}}
""",
    )
    names = local_names(template)
    with pytest.raises(TemplateError, match="event Upload: type S3 is not run locally"):
        functions(template, Resolver(template, names), names)


def test_an_http_api_event_without_api_id_uses_the_implicit_api(tmp_path: Path) -> None:
    template = small(
        tmp_path,
        """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
      Events:
        Root: {Type: HttpApi}
""",
    )
    names = local_names(template)
    (spec,) = functions(template, Resolver(template, names), names)
    (route,) = spec.events
    assert isinstance(route, HttpRoute)
    assert route.route_key == "$default"
    assert route.api == names["ServerlessHttpApi"].ref
