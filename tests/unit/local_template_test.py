"""template.yaml as the local stack reads it: local names, intrinsics, functions and events.

The repository's template nests the engine (shared/stepwell/stack/template.yaml), so it is read
flattened, as the local stack runs it: the engine's resources carry the application's logical
id as a prefix (``Stepwell`` + ``RunnerFunction``) and live in the nested stack
``stepwell-local-Stepwell``.
"""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import pytest

from stepwell.local import engine
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
from stepwell.runtime import wiring
from stepwell.store.tables import load_template

ROOT = Path(__file__).resolve().parents[2]
ENGINE = "stepwell-local-Stepwell"
"""The nested engine's stack name: the app's stack name and the application's logical id."""
ENGINE_FUNCTIONS = ("Api", "Scheduler", "Runner", "Trigger", "Publisher")


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


FUNCTION = """
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
"""
"""A template of one function; its events and other resources follow."""


def small(tmp_path: Path, text: str) -> Template:
    (tmp_path / "code").mkdir(exist_ok=True)
    (tmp_path / "code" / "app.py").write_text("def handler(event, context):\n    return event\n")
    path = tmp_path / "template.yaml"
    path.write_text(text)
    return Template.load(path)


# -- names ------------------------------------------------------------------------------------
def test_resources_get_the_stack_s_names(names: dict[str, Physical]) -> None:
    assert names["StepwellStepwellTable"].ref == f"{STACK}-StepwellStepwellTable"
    assert names["StepwellStepwellTable"].attrs["Arn"] == (
        f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/{STACK}-StepwellStepwellTable"
    )
    assert names["StepwellPayloadBucket"].ref == "stepwell-local-stepwellpayloadbucket"
    queue = names["StepwellTimerQueue"]
    assert queue.ref == f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/{STACK}-StepwellTimerQueue"
    assert queue.attrs["Arn"] == f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-StepwellTimerQueue"
    # !Sub "${AWS::StackName}-bus" in the engine: its stack is the nested one
    assert names["StepwellEventBus"].ref == f"{ENGINE}-bus"
    assert names["StepwellScheduleGroup"].ref == f"{ENGINE}-timers"
    assert names["StepwellSchedulerRole"].attrs["Arn"].startswith(f"arn:aws:iam::{ACCOUNT}:role/")
    assert names["StepwellSigningSecret"].ref.startswith(
        f"arn:aws:secretsmanager:{REGION}:{ACCOUNT}:secret:"
    )
    assert names["StepwellRunnerFunction"].ref == f"{ENGINE}-runner"
    assert names["StepwellPublisherFunction"].ref == f"{ENGINE}-publisher"
    # An app's step function has no FunctionName: CloudFormation names it after its stack.
    assert names["ChargeCardFunction"].attrs["Arn"] == (
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-ChargeCardFunction"
    )
    assert names["StepwellStepwellLayer"].ref.startswith(
        f"arn:aws:lambda:{REGION}:{ACCOUNT}:layer:"
    )
    assert len(names["StepwellHttpApi"].ref) == 10


def test_the_engine_is_nested_from_the_package_s_stack_folder(template: Template) -> None:
    """The repository's template nests the engine by path; that path is the engine the
    package ships (the one an app's template runs on locally)."""
    raw = load_template(ROOT / "template.yaml")["Resources"]
    assert raw["Stepwell"]["Type"] == "AWS::Serverless::Application"
    location = ROOT / raw["Stepwell"]["Properties"]["Location"]
    assert location.resolve() == engine.ENGINE_TEMPLATE.resolve()
    own = load_template(engine.ENGINE_TEMPLATE)["Resources"]
    assert template.nested == {f"Stepwell{logical_id}" for logical_id in own}
    assert set(template.resources) == (set(raw) - {"Stepwell"}) | template.nested


def test_resources_whose_condition_is_false_do_not_exist(template: Template) -> None:
    assert "StepwellJwtApi" not in local_names(template)
    with_jwt = local_names(template, parameters={"JwtIssuer": "https://issuer.example.com"})
    assert "StepwellJwtApi" in with_jwt


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
        resolver.resolve({"Fn::GetAtt": ["StepwellTimerQueue", "Arn"]})
        == names["StepwellTimerQueue"].attrs["Arn"]
    )
    assert resolver.resolve({"Fn::Sub": "${AWS::StackName}-x-${StepwellStepwellTable}"}) == (
        f"{STACK}-x-{STACK}-StepwellStepwellTable"
    )
    assert resolver.resolve({"Fn::Sub": "${StepwellTimerQueue.QueueName}/${!Literal}"}) == (
        f"{STACK}-StepwellTimerQueue/${{Literal}}"
    )
    assert resolver.resolve({"Fn::Sub": ["${a}-${AWS::AccountId}", {"a": {"Ref": "Stage"}}]}) == (
        f"dev-{ACCOUNT}"
    )
    assert resolver.resolve({"Fn::Join": ["/", ["a", {"Ref": "Stage"}, 3]]}) == "a/dev/3"
    assert resolver.resolve({"Fn::Select": [1, {"Fn::Split": [",", "x,y,z"]}]}) == "y"
    assert resolver.resolve({"Fn::If": ["StepwellUseJwt", "jwt", "iam"]}) == "iam"
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
    with pytest.raises(TemplateError, match="no attribute Nope of StepwellTimerQueue"):
        resolver.resolve({"Fn::GetAtt": "StepwellTimerQueue.Nope"})
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
    api = specs["StepwellApiFunction"]
    scheduler = specs["StepwellSchedulerFunction"]
    assert api.name == f"{ENGINE}-api"
    assert api.timeout_s == 30  # from the engine's Globals
    assert scheduler.timeout_s == 120  # its own
    assert specs["StepwellPublisherFunction"].timeout_s == 300
    assert api.memory_mb == 512
    layer = ROOT / "shared" / "stepwell"  # StepwellLayer, ContentUri ".." of stack/
    engine_resources = load_template(engine.ENGINE_TEMPLATE)["Resources"]
    for name in ENGINE_FUNCTIONS:
        spec = specs[f"Stepwell{name}Function"]
        # Lambda writes InlineCode as index.py; the handler is a module of the layer's package.
        inline = engine_resources[f"{name}Function"]["Properties"]["InlineCode"]
        assert (spec.code_uri / "index.py").read_text() == inline
        assert spec.handler == f"stepwell.handlers.{name.lower()}.handler"
        module = importlib.import_module(spec.handler.rpartition(".")[0])
        assert Path(str(module.__file__)).is_relative_to(layer), spec.logical_id
        assert spec.layers == (layer,), spec.logical_id
    # The app's functions: their own code, the engine's layer through its LayerArn output.
    charge = specs["ChargeCardFunction"]
    assert (charge.code_uri, charge.handler) == (
        ROOT / "functions" / "examples",
        "orders.charge_card",
    )
    assert charge.layers == (layer,)
    workflows = specs["ExampleWorkflowsFunction"]
    assert (workflows.code_uri, workflows.handler) == (
        ROOT / "statemachines",
        "stepwell.handlers.workflows.handler",
    )
    assert workflows.timeout_s == 300


def test_the_environment_is_resolved_to_local_names(
    specs: dict[str, FunctionSpec], names: dict[str, Physical]
) -> None:
    runner = specs["StepwellRunnerFunction"].environment
    expected = {
        "STEPWELL_TABLE": names["StepwellStepwellTable"].ref,
        "STEPWELL_BUCKET": names["StepwellPayloadBucket"].ref,
        "STEPWELL_BUS": f"{ENGINE}-bus",
        # The stack's EventWaitsBus left empty: event waits listen on the engine's own bus.
        "STEPWELL_EVENT_WAITS_BUS": f"{ENGINE}-bus",
        "STEPWELL_TIMER_QUEUE_URL": names["StepwellTimerQueue"].ref,
        "STEPWELL_TIMER_QUEUE_ARN": names["StepwellTimerQueue"].attrs["Arn"],
        "STEPWELL_SIGNING_SECRET": names["StepwellSigningSecret"].ref,
        "STEPWELL_SCHEDULE_GROUP": f"{ENGINE}-timers",
        "STEPWELL_RUNNER_FUNCTION": f"{ENGINE}-runner",
        "STEPWELL_RETENTION_DAYS": "90",
        "STEPWELL_API_URL": api_endpoint(names["StepwellHttpApi"].ref),
        "STEPWELL_GROUPS_PARAMETER": "",  # no GroupsParameter given: groups are not used
    }
    assert {key: runner[key] for key in expected} == expected
    # An app's function gets the same settings as one variable, the engine's Settings output.
    charge = specs["ChargeCardFunction"]
    assert json.loads(charge.environment["STEPWELL_ENGINE"]) == {
        **expected,
        "STEPWELL_SCHEDULER_ROLE_ARN": names["StepwellSchedulerRole"].attrs["Arn"],
    }
    assert {key: wiring.settings(charge.environment)[key] for key in expected} == expected
    assert not {"STEPWELL_FUNCTION_PREFIX", "STEPWELL_WORKFLOWS"} & {
        key for spec in specs.values() for key in spec.environment
    }
    assert charge.async_retries == 0
    assert charge.on_failure == names["StepwellEventBus"].attrs["Arn"]
    assert specs["StepwellTriggerFunction"].async_retries == 2
    trigger_arn = names["StepwellTriggerFunction"].attrs["Arn"]
    assert specs["StepwellPublisherFunction"].environment["STEPWELL_TRIGGER_FUNCTION_ARN"] == (
        trigger_arn
    )
    # The API function serves HttpApi's routes, so it cannot name HttpApi (a cycle): it takes
    # the base URL from each request instead.
    assert specs["StepwellApiFunction"].environment["STEPWELL_API_URL"] == ""


def test_functions_carry_their_resolved_tags(
    specs: dict[str, FunctionSpec], tmp_path: Path
) -> None:
    """An app's functions carry the engine's id (the engine may invoke only those); the
    engine's own do not need it (its policies name them by its stack's prefix)."""
    for logical_id in ("ChargeCardFunction", "ExampleWorkflowsFunction"):
        assert specs[logical_id].tags == {"stepwell:engine": ENGINE, "stepwell:stage": "dev"}
    assert specs["StepwellRunnerFunction"].tags == {"stepwell:stage": "dev"}
    # AWS::Lambda::Function writes them as a list of Key and Value.
    template = small(
        tmp_path,
        """
Resources:
  Fn:
    Type: AWS::Lambda::Function
    Properties:
      Code: code/
      Handler: app.handler
      Tags: [{Key: team, Value: !Sub "${AWS::StackName}-team"}]
""",
    )
    names = local_names(template)
    (spec,) = functions(template, Resolver(template, names), names)
    assert spec.tags == {"team": f"{STACK}-team"}


def test_events_of_every_kind_are_read(specs: dict[str, FunctionSpec], tmp_path: Path) -> None:
    api_events = specs["StepwellApiFunction"].events
    routes = {e.route_key: e for e in api_events if isinstance(e, HttpRoute)}
    assert routes["POST /workflows/{name}/runs"].authorizer == "AWS_IAM"
    assert routes["PUT /workflows/{name}"].authorizer == "AWS_IAM"
    assert routes["DELETE /workflows/{name}"].authorizer == "AWS_IAM"
    assert routes["POST /approvals/{token}"].authorizer is None
    scheduler_events = specs["StepwellSchedulerFunction"].events
    sweep = next(e for e in scheduler_events if isinstance(e, ScheduleSource))
    assert (sweep.kind, sweep.expression, json.loads(sweep.input or "")) == (
        "Schedule",
        "rate(1 minute)",
        {"sweep": True},
    )
    timers = next(e for e in scheduler_events if isinstance(e, QueueSource))
    assert timers.batch_size == 10 and timers.report_batch_item_failures
    lost = next(e for e in scheduler_events if isinstance(e, RuleSource))
    assert lost.bus == f"{ENGINE}-bus"
    assert lost.pattern["detail"] == {"requestPayload": {"stepwell": ["step/1"]}}
    # Workflows' triggers are published (rules and schedules the engine creates), not events of
    # the trigger function; the kinds they used are read from a template of their own.
    assert specs["StepwellTriggerFunction"].events == ()
    template = small(
        tmp_path,
        FUNCTION
        + """\
      Events:
        OrderPlaced:
          Type: EventBridgeRule
          Properties:
            EventBusName: !Ref Bus
            Pattern: {source: [shop], detail-type: [order.placed]}
            InputTransformer:
              InputPathsMap: {detail: $.detail}
              InputTemplate: '{"workflow": "orders", "input": <detail>}'
        Daily:
          Type: ScheduleV2
          Properties:
            ScheduleExpression: cron(0 6 * * ? *)
            ScheduleExpressionTimezone: Europe/Paris
            Input: '{"workflow": "report"}'
  Bus: {Type: AWS::Events::EventBus, Properties: {Name: shop}}
""",
    )
    names = local_names(template)
    (spec,) = functions(template, Resolver(template, names), names)
    rule = next(e for e in spec.events if isinstance(e, RuleSource))
    assert rule.bus == "shop"
    assert rule.pattern == {"source": ["shop"], "detail-type": ["order.placed"]}
    assert rule.input_transformer is not None
    assert rule.input_transformer["InputPathsMap"] == {"detail": "$.detail"}
    daily = next(e for e in spec.events if isinstance(e, ScheduleSource))
    assert (daily.kind, daily.expression, daily.timezone) == (
        "ScheduleV2",
        "cron(0 6 * * ? *)",
        "Europe/Paris",
    )


def test_queues_come_dead_letter_queue_first(
    template: Template, names: dict[str, Physical]
) -> None:
    found = queues(template, Resolver(template, names), names)
    order = [q.logical_id for q in found]
    assert sorted(order) == [
        "StepwellNotificationQueue",
        "StepwellTimerDeadLetterQueue",
        "StepwellTimerQueue",
    ]
    assert order.index("StepwellTimerDeadLetterQueue") < order.index("StepwellTimerQueue")
    found = [q for q in found if q.logical_id != "StepwellNotificationQueue"]
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
        FUNCTION
        + """\
      Events:
        Upload: {Type: S3, Properties: {Bucket: b, Events: s3:ObjectCreated:*}}
""",
    )
    names = local_names(template)
    with pytest.raises(TemplateError, match="event Upload: type S3 is not run locally"):
        functions(template, Resolver(template, names), names)


def test_an_http_api_event_without_api_id_uses_the_implicit_api(tmp_path: Path) -> None:
    template = small(tmp_path, FUNCTION + "      Events:\n        Root: {Type: HttpApi}\n")
    names = local_names(template)
    (spec,) = functions(template, Resolver(template, names), names)
    (route,) = spec.events
    assert isinstance(route, HttpRoute)
    assert route.route_key == "$default"
    assert route.api == names["ServerlessHttpApi"].ref
