"""Nested applications as the local stack reads them: flattened into the template that nests
them, their names prefixed, their parameters, Globals, conditions, mappings and outputs kept."""

from __future__ import annotations

import json
import textwrap
from collections.abc import Mapping
from pathlib import Path
from typing import Any

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
    Template,
    TemplateError,
    functions,
    local_names,
)
from stepwell.store.tables import load_template

ROOT = Path(__file__).resolve().parents[2]

PARENT = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  Stage: {Type: String, Default: dev}
Globals:
  Function:
    Runtime: python3.12
    Environment:
      Variables:
        FROM_PARENT: parent
        ENGINE_TABLE: !GetAtt Engine.Outputs.TableName
        ENGINE_BUS: !ImportValue stepwell-local-Engine-Bus
Resources:
  Inbox:
    Type: AWS::SQS::Queue
  Engine:
    Type: AWS::Serverless::Application
    Properties:
      Location: engine/template.yaml
      Parameters:
        QueueArn: !GetAtt Inbox.Arn
        Stage: !Ref Stage
  Consumer:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
      Environment:
        Variables:
          TABLE: !GetAtt Engine.Outputs.TableName
          TABLE_ARN: {"Fn::GetAtt": ["Engine", "Outputs.TableArn"]}
          TABLE_DOTTED: {"Fn::GetAtt": "Engine.Outputs.TableName"}
          RUNS: !Sub "${Engine.Outputs.ApiUrl}/runs"
          STAGED: !Sub ["${Engine.Outputs.TableName}/${Where}", {Where: !Ref Stage}]
          INNER_QUEUE: !GetAtt Engine.Outputs.InnerQueue
          BUS: !ImportValue stepwell-local-Engine-Bus
          BUS_BY_SUB: !ImportValue {"Fn::Sub": "${AWS::StackName}-Engine-Bus"}
          ENGINE_STACK: !Ref Engine
"""

ENGINE = """\
Transform: AWS::Serverless-2016-10-31
Parameters:
  QueueArn: {Type: String}
  Stage: {Type: String, Default: prod, AllowedValues: [dev, prod]}
  LogLevel: {Type: String, Default: INFO}
  Regions: {Type: CommaDelimitedList, Default: "us-east-1, eu-west-1"}
Conditions:
  IsProd: !Equals [!Ref Stage, prod]
  NotProd: !Not [{Condition: IsProd}]
Mappings:
  Sizes:
    dev: {Memory: 256}
    prod: {Memory: 1024}
Globals:
  Function:
    Runtime: python3.12
    Timeout: 30
    Environment:
      Variables:
        TABLE: !Ref Table
        LOG_LEVEL: !Ref LogLevel
        INNER_QUEUE: !GetAtt Inner.Outputs.QueueUrl
Resources:
  Table:
    Type: AWS::DynamoDB::Table
    Properties:
      TableName: !Sub "${AWS::StackName}-table"
  Bus:
    Type: AWS::Events::EventBus
    Properties: {Name: !Sub "${AWS::StackName}-bus"}
  ProdOnly:
    Type: AWS::SQS::Queue
    Condition: IsProd
  RunnerFunction:
    Type: AWS::Serverless::Function
    DependsOn: Table
    Properties:
      FunctionName: !Sub "${AWS::StackName}-runner"
      CodeUri: code/
      Handler: app.handler
      MemorySize: !FindInMap [Sizes, !Ref Stage, Memory]
      Environment:
        Variables:
          QUEUE: !Ref QueueArn
          BUS_ARN: !GetAtt Bus.Arn
          BUS_DOTTED: {"Fn::GetAtt": "Bus.Arn"}
          MODE: !If [IsProd, production, trial]
          TRIAL: !If [NotProd, "yes", "no"]
          LITERAL: !Sub "${!NotAReference}-${AWS::Region}"
          BUS_RULES: !Sub "${Bus.Arn}/rules"
          WHERE: !Sub ["${Prefix}:${Stage}:${Table}", {Prefix: !Ref LogLevel}]
          FIRST_REGION: !Select [1, !Ref Regions]
          STACK: !Ref AWS::StackName
          ACCOUNT: !Ref AWS::AccountId
      Events:
        Start:
          Type: HttpApi
          Properties: {Path: /start, Method: POST}
        Work:
          Type: SQS
          Properties: {Queue: !Ref QueueArn}
  Inner:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: inner/template.json
      Parameters:
        BusName: !Ref Bus
Outputs:
  TableName:
    Value: !Ref Table
  TableArn:
    Value: !GetAtt Table.Arn
  ApiUrl:
    Value: !Sub "https://${ServerlessHttpApi}.execute-api.${AWS::Region}.amazonaws.com"
  BusName:
    Value: !Ref Bus
    Export: {Name: !Sub "${AWS::StackName}-Bus"}
  InnerQueue:
    Value: !GetAtt Inner.Outputs.QueueUrl
"""

INNER = {
    "Parameters": {"BusName": {"Type": "String"}},
    "Globals": {"Function": {"Environment": {"Variables": {"INNER": "yes"}}}},
    "Resources": {
        "Queue": {
            "Type": "AWS::SQS::Queue",
            "Properties": {"QueueName": {"Fn::Sub": "${AWS::StackName}-q"}},
        },
        "Worker": {
            "Type": "AWS::Serverless::Function",
            "Properties": {
                "CodeUri": "../code/",
                "Handler": "app.handler",
                "Environment": {
                    "Variables": {"BUS": {"Ref": "BusName"}, "QUEUE_URL": {"Ref": "Queue"}}
                },
            },
        },
    },
    "Outputs": {"QueueUrl": {"Value": {"Ref": "Queue"}}},
}


def project(folder: Path, files: Mapping[str, str | dict[str, Any]]) -> Path:
    """Write a project (templates and code folders) and give its top template's path."""
    for name, content in files.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else json.dumps(content, indent=1))
    for code in ("code", "engine/code"):
        (folder / code).mkdir(parents=True, exist_ok=True)
        (folder / code / "app.py").write_text("def handler(event, context):\n    return event\n")
    return folder / "template.yaml"


def engine_project(folder: Path, **changes: str) -> Path:
    files: dict[str, str | dict[str, Any]] = {
        "template.yaml": PARENT,
        "engine/template.yaml": ENGINE,
        "engine/inner/template.json": INNER,
    }
    return project(folder, {**files, **changes})


@pytest.fixture
def template(tmp_path: Path) -> Template:
    return Template.load(engine_project(tmp_path))


def resolved(
    template: Template, parameters: Mapping[str, str] | None = None
) -> tuple[dict[str, Physical], dict[str, FunctionSpec]]:
    names = local_names(template, parameters=parameters)
    resolver = Resolver(template, names, parameters)
    return names, {spec.logical_id: spec for spec in functions(template, resolver, names)}


# -- the flattened document ---------------------------------------------------------------------


def test_an_application_becomes_its_template_s_resources_under_its_name(
    template: Template,
) -> None:
    assert "Engine" not in template.resources
    assert "EngineInner" not in template.resources
    assert set(template.resources) == {
        "Inbox",
        "Consumer",
        "EngineTable",
        "EngineBus",
        "EngineProdOnly",
        "EngineRunnerFunction",
        "EngineServerlessHttpApi",  # the nested stack's own implicit API
        "EngineInnerQueue",
        "EngineInnerWorker",
    }
    assert template.nested == set(template.resources) - {"Inbox", "Consumer"}
    runner = template.resources["EngineRunnerFunction"]
    assert runner["DependsOn"] == "EngineTable"
    variables = runner["Properties"]["Environment"]["Variables"]
    assert variables["QUEUE"] == {"Fn::GetAtt": ["Inbox", "Arn"]}  # the parent's expression
    assert variables["BUS_ARN"] == {"Fn::GetAtt": ["EngineBus", "Arn"]}
    assert variables["BUS_DOTTED"] == {"Fn::GetAtt": "EngineBus.Arn"}
    assert variables["MODE"] == {"Fn::If": ["EngineIsProd", "production", "trial"]}
    assert variables["LITERAL"] == {"Fn::Sub": "${!NotAReference}-${AWS::Region}"}
    assert variables["BUS_RULES"] == {"Fn::Sub": "${EngineBus.Arn}/rules"}
    assert variables["STACK"] == "stepwell-local-Engine"
    assert variables["ACCOUNT"] == {"Ref": "AWS::AccountId"}
    assert variables["WHERE"] == {
        "Fn::Sub": [
            "${Prefix}:${Stage}:${EngineTable}",
            {"Prefix": "INFO", "Stage": {"Ref": "Stage"}},
        ]
    }
    assert runner["Properties"]["MemorySize"] == {
        "Fn::FindInMap": ["EngineSizes", {"Ref": "Stage"}, "Memory"]
    }
    assert template.resources["EngineProdOnly"]["Condition"] == "EngineIsProd"
    assert template.conditions == {
        "EngineIsProd": {"Fn::Equals": [{"Ref": "Stage"}, "prod"]},
        "EngineNotProd": {"Fn::Not": [{"Condition": "EngineIsProd"}]},
    }
    assert template.document["Mappings"] == {
        "EngineSizes": {"dev": {"Memory": 256}, "prod": {"Memory": 1024}}
    }


def test_parameters_take_the_application_s_values_or_their_defaults(template: Template) -> None:
    variables = template.resources["EngineRunnerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["LOG_LEVEL"] == "INFO"  # default, through the nested Globals
    assert variables["FIRST_REGION"] == {"Fn::Select": [1, ["us-east-1", "eu-west-1"]]}
    worker = template.resources["EngineInnerWorker"]["Properties"]["Environment"]["Variables"]
    assert worker["BUS"] == {"Ref": "EngineBus"}  # the middle template's resource, renamed


def test_a_nested_template_s_globals_apply_to_its_own_functions_only(template: Template) -> None:
    runner = template.properties("EngineRunnerFunction")
    assert runner["Timeout"] == 30
    assert set(runner["Environment"]["Variables"]) >= {"TABLE", "LOG_LEVEL", "QUEUE"}
    assert "FROM_PARENT" not in runner["Environment"]["Variables"]
    worker = template.properties("EngineInnerWorker")
    assert set(worker["Environment"]["Variables"]) == {"INNER", "BUS", "QUEUE_URL"}
    assert "Timeout" not in worker
    consumer = template.properties("Consumer")
    assert consumer["Environment"]["Variables"]["FROM_PARENT"] == "parent"
    assert consumer["Environment"]["Variables"]["ENGINE_TABLE"] == {"Ref": "EngineTable"}
    assert consumer["Environment"]["Variables"]["ENGINE_BUS"] == {"Ref": "EngineBus"}
    assert "Timeout" not in consumer


def test_the_parent_s_references_to_outputs_become_their_values(template: Template) -> None:
    variables = template.resources["Consumer"]["Properties"]["Environment"]["Variables"]
    assert variables["TABLE"] == {"Ref": "EngineTable"}
    assert variables["TABLE_ARN"] == {"Fn::GetAtt": ["EngineTable", "Arn"]}
    assert variables["TABLE_DOTTED"] == {"Ref": "EngineTable"}
    assert variables["RUNS"] == {
        "Fn::Sub": [
            "${Engine.Outputs.ApiUrl}/runs",
            {
                "Engine.Outputs.ApiUrl": {
                    "Fn::Sub": (
                        "https://${EngineServerlessHttpApi}.execute-api.${AWS::Region}"
                        ".amazonaws.com"
                    )
                }
            },
        ]
    }
    assert variables["INNER_QUEUE"] == {"Ref": "EngineInnerQueue"}  # an output of an output
    assert variables["BUS"] == {"Ref": "EngineBus"}  # Fn::ImportValue of the nested export
    assert variables["BUS_BY_SUB"] == {"Ref": "EngineBus"}


def test_a_template_without_applications_loads_as_it_is() -> None:
    engine = ROOT / "shared" / "stepwell" / "stack" / "template.yaml"
    template = Template.load(engine)
    assert template.document == load_template(engine)
    assert template.nested == frozenset()


def test_the_repository_s_template_nests_the_engine_by_path() -> None:
    """Its app part as it is written, the engine's resources prefixed, their own Globals
    merged already and the app's Globals for the app's functions alone."""
    raw = load_template(ROOT / "template.yaml")
    template = Template.load(ROOT / "template.yaml")
    own = set(raw["Resources"]) - {"Stepwell"}
    assert set(template.resources) - template.nested == own
    # !GetAtt Stepwell.Outputs.StepFunctionPolicyArn is the engine's managed policy
    charge = template.resources["ChargeCardFunction"]["Properties"]
    assert charge == {
        **raw["Resources"]["ChargeCardFunction"]["Properties"],
        "Policies": [{"Ref": "StepwellOrchestratorPolicy"}],
    }
    assert "StepwellRunnerFunction" in template.nested
    runner = template.properties("StepwellRunnerFunction")
    assert runner["Layers"] == [{"Ref": "StepwellStepwellLayer"}]  # the engine's Globals
    assert "STEPWELL_ENGINE" not in runner["Environment"]["Variables"]  # not the app's
    assert template.properties("ChargeCardFunction")["Layers"] == [{"Ref": "StepwellStepwellLayer"}]


# -- through the local stack's pipeline -------------------------------------------------------


def test_a_nested_function_runs_with_its_names_environment_and_events(
    tmp_path: Path, template: Template
) -> None:
    names, specs = resolved(template)
    inbox_arn = f"arn:aws:sqs:{REGION}:{ACCOUNT}:{STACK}-Inbox"
    runner = specs["EngineRunnerFunction"]
    assert runner.name == "stepwell-local-Engine-runner"
    assert runner.code_uri == (tmp_path / "engine" / "code").resolve()
    assert runner.runtime == "python3.12"
    assert runner.timeout_s == 30
    assert runner.memory_mb == 256  # Sizes[dev]: the parent's Stage, given to the application
    assert runner.environment == {
        "TABLE": "stepwell-local-Engine-table",
        "LOG_LEVEL": "INFO",
        "QUEUE": inbox_arn,
        "BUS_ARN": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/stepwell-local-Engine-bus",
        "BUS_DOTTED": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/stepwell-local-Engine-bus",
        "MODE": "trial",
        "TRIAL": "yes",
        "LITERAL": "${NotAReference}-us-east-1",
        "BUS_RULES": f"arn:aws:events:{REGION}:{ACCOUNT}:event-bus/stepwell-local-Engine-bus/rules",
        "WHERE": "INFO:dev:stepwell-local-Engine-table",
        "FIRST_REGION": "eu-west-1",
        "STACK": "stepwell-local-Engine",
        "ACCOUNT": ACCOUNT,
        "INNER_QUEUE": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/stepwell-local-Engine-Inner-q",
    }
    route, queue = runner.events
    assert isinstance(route, HttpRoute)
    assert (route.api, route.route_key) == (names["EngineServerlessHttpApi"].ref, "POST /start")
    assert "ServerlessHttpApi" not in names  # the parent has no implicit API of its own
    assert isinstance(queue, QueueSource)
    assert queue.queue_arn == inbox_arn

    worker = specs["EngineInnerWorker"]
    assert worker.runtime == ""  # neither the parent's nor the middle template's Globals
    assert worker.environment == {
        "INNER": "yes",
        "BUS": "stepwell-local-Engine-bus",
        "QUEUE_URL": f"https://sqs.{REGION}.amazonaws.com/{ACCOUNT}/stepwell-local-Engine-Inner-q",
    }
    assert worker.code_uri == (tmp_path / "engine" / "code").resolve()

    consumer = specs["Consumer"].environment
    api = names["EngineServerlessHttpApi"].ref
    assert consumer == {
        "FROM_PARENT": "parent",
        "ENGINE_TABLE": "stepwell-local-Engine-table",
        "ENGINE_BUS": "stepwell-local-Engine-bus",
        "TABLE": "stepwell-local-Engine-table",
        "TABLE_ARN": f"arn:aws:dynamodb:{REGION}:{ACCOUNT}:table/stepwell-local-Engine-table",
        "TABLE_DOTTED": "stepwell-local-Engine-table",
        "RUNS": f"https://{api}.execute-api.{REGION}.amazonaws.com/runs",
        "STAGED": "stepwell-local-Engine-table/dev",
        "INNER_QUEUE": worker.environment["QUEUE_URL"],
        "BUS": "stepwell-local-Engine-bus",
        "BUS_BY_SUB": "stepwell-local-Engine-bus",
        "ENGINE_STACK": (
            f"arn:aws:cloudformation:{REGION}:{ACCOUNT}:stack/stepwell-local-Engine/"
            "00000000-0000-0000-0000-000000000000"
        ),
    }


def test_the_parent_s_parameters_reach_the_nested_conditions(template: Template) -> None:
    names, specs = resolved(template, {"Stage": "prod"})
    runner = specs["EngineRunnerFunction"]
    assert (runner.memory_mb, runner.environment["MODE"]) == (1024, "production")
    assert "EngineProdOnly" in names
    assert "EngineProdOnly" not in resolved(template)[0]


def test_nested_stacks_are_named_after_the_stack_the_loader_is_told(tmp_path: Path) -> None:
    template = Template.load(engine_project(tmp_path), stack="shop")
    variables = template.resources["EngineRunnerFunction"]["Properties"]["Environment"]["Variables"]
    assert variables["STACK"] == "shop-Engine"
    queue = template.resources["EngineInnerQueue"]["Properties"]["QueueName"]
    assert queue == {"Fn::Sub": "shop-Engine-Inner-q"}
    # The export is named after that stack too, so the parent's import of the old name stays.
    consumer = template.resources["Consumer"]["Properties"]["Environment"]["Variables"]
    assert consumer["BUS"] == {"Fn::ImportValue": "stepwell-local-Engine-Bus"}
    assert consumer["BUS_BY_SUB"] == {"Ref": "EngineBus"}


def test_the_caller_gives_exports_to_import(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        {
            "template.yaml": """\
Parameters:
  Engine: {Type: String, Default: engine}
Resources:
  Fn:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: code/
      Handler: app.handler
      Environment:
        Variables:
          API: !ImportValue {"Fn::Sub": "${Engine}-ApiUrl"}
          OTHER: !ImportValue elsewhere
""",
        },
    )
    exports = {"engine-ApiUrl": {"Fn::Sub": "https://${AWS::Region}"}, "shared-ApiUrl": "url"}
    template = Template.load(path, exports=exports)
    variables = template.resources["Fn"]["Properties"]["Environment"]["Variables"]
    assert variables["API"] == {"Fn::Sub": "https://${AWS::Region}"}
    assert variables["OTHER"] == {"Fn::ImportValue": "elsewhere"}
    with pytest.raises(TemplateError, match="cannot import from another"):
        resolved(template)
    given = Template.load(path, exports=exports, parameters={"Engine": "shared"})
    assert given.resources["Fn"]["Properties"]["Environment"]["Variables"]["API"] == "url"


def test_an_application_s_condition_and_dependencies_pass_to_its_resources(
    tmp_path: Path,
) -> None:
    path = project(
        tmp_path,
        {
            "template.yaml": """\
Parameters:
  WithEngine: {Type: String, Default: "no"}
Conditions:
  UseEngine: !Equals [!Ref WithEngine, "yes"]
Resources:
  First:
    Type: AWS::SQS::Queue
  Engine:
    Type: AWS::Serverless::Application
    Condition: UseEngine
    DependsOn: First
    Properties:
      Location: ./engine/small.yaml
  After:
    Type: AWS::SQS::Queue
    DependsOn: [Engine, First]
""",
            "engine/small.yaml": """\
Conditions:
  Always: !Equals [a, a]
Resources:
  Queue:
    Type: AWS::SQS::Queue
  Other:
    Type: AWS::SQS::Queue
    Condition: Always
    DependsOn: [Queue]
""",
        },
    )
    template = Template.load(path)
    assert template.resources["EngineQueue"]["Condition"] == "UseEngine"
    assert template.resources["EngineQueue"]["DependsOn"] == ["First"]
    assert template.resources["EngineOther"]["DependsOn"] == ["EngineQueue", "First"]
    assert template.conditions["EngineAlways"] == {
        "Fn::And": [{"Condition": "UseEngine"}, {"Fn::Equals": ["a", "a"]}]
    }
    assert template.resources["After"]["DependsOn"] == ["EngineQueue", "EngineOther", "First"]
    assert {"EngineQueue", "EngineOther"} & set(local_names(template)) == set()
    on = local_names(template, parameters={"WithEngine": "yes"})
    assert {"EngineQueue", "EngineOther"} <= set(on)


# -- locations the loader cannot read ---------------------------------------------------------

REMOTE = """\
Resources:
  Engine:
    Type: AWS::Serverless::Application
    Properties:
      Location: {location}
"""


@pytest.mark.parametrize(
    "location",
    [
        "https://example.com/engine.yaml",
        "s3://bucket/engine.yaml",
        "{ApplicationId: 'arn:aws:serverlessrepo:us-east-1:123456789012:applications/stepwell', "
        "SemanticVersion: 1.0.0}",
    ],
)
def test_a_location_not_on_disk_needs_the_hook(tmp_path: Path, location: str) -> None:
    path = project(tmp_path, {"template.yaml": REMOTE.format(location=location)})
    with pytest.raises(TemplateError, match=r"Engine.*only nested templates it can read from disk"):
        Template.load(path)
    asked: list[tuple[str, Any]] = []

    def nowhere(logical_id: str, resource: Mapping[str, Any]) -> Path | None:
        asked.append((logical_id, resource["Properties"]["Location"]))
        return None

    with pytest.raises(TemplateError, match="read from disk"):
        Template.load(path, remote=nowhere)
    assert asked and asked[0][0] == "Engine"

    (tmp_path / "fetched.yaml").write_text("Resources:\n  Queue:\n    Type: AWS::SQS::Queue\n")
    template = Template.load(path, remote=lambda logical_id, resource: tmp_path / "fetched.yaml")
    assert set(template.resources) == {"EngineQueue"}


def test_a_cloudformation_stack_s_url_goes_to_the_hook_too(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        {
            "template.yaml": """\
Resources:
  Engine:
    Type: AWS::CloudFormation::Stack
    Properties:
      TemplateURL: https://bucket.s3.amazonaws.com/engine.json
""",
        },
    )
    with pytest.raises(TemplateError, match=r"TemplateURL.*read from disk"):
        Template.load(path)


# -- mistakes -----------------------------------------------------------------------------------


def test_a_parameter_without_a_value_names_the_application_and_the_parameter(
    tmp_path: Path,
) -> None:
    parent = PARENT.replace("        QueueArn: !GetAtt Inbox.Arn\n", "")
    path = engine_project(tmp_path, **{"template.yaml": parent})
    with pytest.raises(TemplateError) as caught:
        Template.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:19: application Engine: parameter QueueArn")
    assert "add QueueArn to Engine's Parameters" in message


def test_a_parameter_the_nested_template_lacks(tmp_path: Path) -> None:
    parent = PARENT.replace("        Stage: !Ref Stage\n", "        Stag: !Ref Stage\n")
    path = engine_project(tmp_path, **{"template.yaml": parent})
    with pytest.raises(TemplateError, match=r"application Engine: .* has no parameter Stag "):
        Template.load(path)


def test_a_literal_parameter_outside_its_allowed_values(tmp_path: Path) -> None:
    parent = PARENT.replace("        Stage: !Ref Stage\n", "        Stage: test\n")
    path = engine_project(tmp_path, **{"template.yaml": parent})
    with pytest.raises(TemplateError, match="parameter Stage: 'test' is not one of dev, prod"):
        Template.load(path)


@pytest.mark.parametrize(
    "reference",
    [
        "!GetAtt Engine.Outputs.Nope",
        '{"Fn::GetAtt": "Engine.Outputs.Nope"}',
        '!Sub "${Engine.Outputs.Nope}/x"',
    ],
)
def test_an_unknown_output(tmp_path: Path, reference: str) -> None:
    parent = PARENT.replace("!GetAtt Engine.Outputs.InnerQueue", reference)
    path = engine_project(tmp_path, **{"template.yaml": parent})
    with pytest.raises(TemplateError) as caught:
        Template.load(path)
    message = str(caught.value)
    assert message.startswith(f"{path}:22: resource Consumer: Engine.Outputs.Nope: ")
    assert "has no output Nope (its outputs: TableName, TableArn, ApiUrl" in message


def test_applications_that_need_each_other_s_outputs(tmp_path: Path) -> None:
    small = "Parameters:\n  In: {Type: String}\nResources:\n  Q: {Type: AWS::SQS::Queue}\n"
    small += "Outputs:\n  Out: {Value: !Ref In}\n"
    path = project(
        tmp_path,
        {
            "template.yaml": """\
Resources:
  A:
    Type: AWS::Serverless::Application
    Properties: {Location: small.yaml, Parameters: {In: !GetAtt B.Outputs.Out}}
  B:
    Type: AWS::Serverless::Application
    Properties: {Location: small.yaml, Parameters: {In: !GetAtt A.Outputs.Out}}
""",
            "small.yaml": small,
        },
    )
    with pytest.raises(TemplateError, match=r"A -> B -> A"):
        Template.load(path)


def test_an_application_reading_another_s_output(tmp_path: Path) -> None:
    small = "Parameters:\n  In: {Type: String, Default: first}\nResources:\n"
    small += "  Q: {Type: AWS::SQS::Queue, Properties: {QueueName: !Ref In}}\n"
    small += "Outputs:\n  Out: {Value: !GetAtt Q.QueueName}\n"
    path = project(
        tmp_path,
        {
            "template.yaml": """\
Resources:
  B:
    Type: AWS::Serverless::Application
    Properties: {Location: small.yaml}
  A:
    Type: AWS::Serverless::Application
    Properties: {Location: small.yaml, Parameters: {In: !Sub "${B.Outputs.Out}-next"}}
""",
            "small.yaml": small,
        },
    )
    template = Template.load(path)
    names = local_names(template)
    assert names["AQ"].attrs["QueueName"] == "first-next"


def test_a_nested_template_that_is_not_there(tmp_path: Path) -> None:
    path = project(tmp_path, {"template.yaml": REMOTE.format(location="engine/none.yaml")})
    with pytest.raises(TemplateError, match=r"application Engine: Location engine/none.yaml: no"):
        Template.load(path)


def test_a_template_that_nests_itself(tmp_path: Path) -> None:
    path = project(tmp_path, {"template.yaml": REMOTE.format(location="template.yaml")})
    with pytest.raises(TemplateError, match="nests itself"):
        Template.load(path)


def test_a_renamed_resource_that_the_parent_has_already(tmp_path: Path) -> None:
    parent = PARENT.replace("  Inbox:\n", "  EngineTable:\n    Type: AWS::SQS::Queue\n  Inbox:\n")
    path = engine_project(tmp_path, **{"template.yaml": parent})
    with pytest.raises(TemplateError, match="its resource Table becomes EngineTable, which"):
        Template.load(path)


def test_a_broken_nested_template_says_where(tmp_path: Path) -> None:
    broken = ENGINE.replace("  Bus:\n", "  Bus: [\n")
    path = engine_project(tmp_path, **{"engine/template.yaml": broken})
    with pytest.raises(TemplateError, match=r'engine/template.yaml", line \d+'):
        Template.load(path)


def test_a_broken_template_is_an_error_not_a_traceback(tmp_path: Path) -> None:
    path = project(tmp_path, {"template.yaml": "Resources:\n  A:\n    Type: X\n   bad: [\n"})
    with pytest.raises(TemplateError, match="line 4"):
        Template.load(path)


def test_an_export_name_the_loader_cannot_read(tmp_path: Path) -> None:
    engine = ENGINE.replace('Name: !Sub "${AWS::StackName}-Bus"', "Name: !GetAtt Bus.Arn")
    path = engine_project(tmp_path, **{"engine/template.yaml": engine})
    with pytest.raises(TemplateError, match=r"output BusName: Export\.Name"):
        Template.load(path)


def test_a_nested_json_template(tmp_path: Path) -> None:
    path = project(
        tmp_path,
        {
            "template.yaml": textwrap.dedent("""\
                Resources:
                  Inner:
                    Type: AWS::CloudFormation::Stack
                    Properties:
                      TemplateURL: inner.json
                """),
            "inner.json": {"Resources": {"Queue": {"Type": "AWS::SQS::Queue"}}},
        },
    )
    assert set(Template.load(path).resources) == {"InnerQueue"}
