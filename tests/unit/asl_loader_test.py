"""Loading Step Functions machines: every problem located FILE:LINE:COL with the state and
the field, and the fix."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepwell.asl.loader import load_asl_file
from stepwell.definition.errors import DefinitionError

GOOD = {
    "StartAt": "A",
    "States": {
        "A": {"Type": "Pass", "Next": "B"},
        "B": {"Type": "Task", "Resource": "ChargeCardFunction", "End": True},
    },
}


MAP = {
    "Type": "Map",
    "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
    "Next": "B",
}


def problems_of(tmp_path: Path, document: object) -> list[str]:
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(document, indent=1))
    with pytest.raises(DefinitionError) as caught:
        load_asl_file(path)
    return [str(p) for p in caught.value.problems]


def test_a_good_machine_loads_as_a_workflow_named_by_its_file(tmp_path: Path) -> None:
    path = tmp_path / "charge.asl.json"
    path.write_text(json.dumps(GOOD))
    loaded = load_asl_file(path)
    assert loaded.workflow.name == "charge"
    assert loaded.workflow.code_version.startswith("asl-")


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda d: d.update(StartAt="Z"), "StartAt 'Z' names no state"),
        (lambda d: d["States"]["A"].update(Next="Nowhere"), "Next 'Nowhere' names no state"),
        (
            lambda d: d["States"]["A"].update(Colour="red"),
            "unknown field 'Colour' for a Pass state",
        ),
        (lambda d: d["States"]["A"].pop("Next"), "give exactly one of Next or End"),
        (lambda d: d["States"].update(C={"Type": "Succeed"}), "step 'C': no state leads here"),
        (
            lambda d: d["States"]["B"].update(Resource="arn:aws:states:::sqs:sendMessageBatch"),
            "is not run by Stepwell yet",
        ),
        (lambda d: d["States"]["A"].update(InputPath="a.b"), "a path starts with $"),
        (lambda d: d["States"]["B"].update(ResultPath="$.a[*]"), "not a reference path"),
        (lambda d: d["States"]["A"].update(Type="Loop"), "Type must be one of"),
        (lambda d: d.update(QueryLanguage="XPath"), "QueryLanguage is JSONPath or JSONata"),
        (lambda d: d["States"]["A"].update(Output="x"), "is a JSONata field: set QueryLanguage"),
        (
            lambda d: d.update(QueryLanguage="JSONata") or d["States"]["A"].update(InputPath="$"),
            "InputPath is a JSONPath field",
        ),
        (
            lambda d: (
                d.update(QueryLanguage="JSONata") or d["States"]["A"].update(Output="{% 1 + %}")
            ),
            "an expression does not compile",
        ),
        (
            lambda d: (
                d.update(QueryLanguage="JSONata")
                or d["States"]["A"].update(Output="{% $eval($states.input.code) %}")
            ),
            "$eval is not available",
        ),
        (lambda d: d["States"]["A"].update(Assign={"1st": 1}), "variable name '1st'"),
        (lambda d: d["States"]["A"].update(Assign={"x.$": "a.b"}), "a path starts with $"),
        (
            lambda d: d["States"].update(A=MAP | {"ItemBatcher": {"BatchInput": {}}}),
            "ItemBatcher needs MaxItemsPerBatch",
        ),
        (
            lambda d: d["States"].update(
                A=MAP
                | {"ItemProcessor": {**MAP["ItemProcessor"], "ProcessorConfig": {"Mode": "X"}}}
            ),
            "Mode is INLINE or DISTRIBUTED",
        ),
        (
            lambda d: d["States"].update(A=MAP | {"ItemReader": {"ReaderConfig": {}}}),
            "no Resource: Stepwell reads items with arn:aws:states:::s3:getObject",
        ),
        (
            lambda d: d["States"]["B"].update(
                Resource="arn:aws:states:::states:startExecution.sync:2.waitForTaskToken"
            ),
            "not a Resource Step Functions accepts (.sync with .waitForTaskToken): use "
            "states:startExecution.sync:2",
        ),
        (
            lambda d: d["States"]["B"].update(
                Resource="arn:aws:states:::states:startExecution.sync.waitForTaskToken"
            ),
            "not a Resource Step Functions accepts",
        ),
        (
            lambda d: d["States"]["B"].update(
                Resource="arn:aws:lambda:${AWS::Region}:${AWS::AccountId}:function:Charge"
            ),
            "${AWS::Region} is filled by CloudFormation, not in a machine's file: write the "
            "function's ARN",
        ),
        (
            lambda d: d["States"]["B"].update(
                Resource="arn:aws:states:us-east-1:123456789012:activity:review"
            ),
            "is an activity, which is not run by Stepwell: do its work in a function",
        ),
        (
            lambda d: d["States"]["B"].update(TimeoutSeconds="30"),
            "step 'B': field 'TimeoutSeconds': TimeoutSeconds must be a positive integer, not "
            "the string '30' (write 30 without quotes)",
        ),
        (lambda d: d.update(TimeoutSeconds=0), "TimeoutSeconds must be a positive integer"),
        (
            lambda d: d["States"]["B"].update(
                Retry=[{"ErrorEquals": ["X"], "IntervalSeconds": "2", "BackoffRate": 0.5}]
            ),
            "field 'Retry.0.IntervalSeconds': IntervalSeconds must be a positive integer",
        ),
        (
            lambda d: d["States"]["B"].update(Retry=[{"ErrorEquals": ["X"], "BackoffRate": 0.5}]),
            "BackoffRate must be a number >= 1.0, not 0.5",
        ),
        (
            lambda d: d["States"]["B"].update(Retry=[{"Errors": ["X"]}]),
            "unknown field 'Errors' of a retrier",
        ),
        (
            lambda d: d["States"]["B"].update(Catch=[{"ErrorEquals": [], "Next": "A"}]),
            "ErrorEquals must be a non-empty list of error names",
        ),
        (
            lambda d: d["States"]["B"].update(
                Catch=[{"ErrorEquals": ["X"], "Next": "A", "ResultPath": "$.e[*]"}]
            ),
            "field 'Catch.0.ResultPath'",
        ),
        (
            lambda d: d["States"]["B"].update(Parameters={"order": {"id.$": "order.id"}}),
            "field 'Parameters.order.id.$': a path starts with $",
        ),
        (
            lambda d: d["States"]["B"].update(ResultSelector={"x.$": "States.Nope($.a)"}),
            "States.Nope is not an intrinsic function",
        ),
        (
            lambda d: d["States"]["B"].update(ResultSelector={"x.$": "States.Format('{}', $.a["}),
            "is not a JSONPath",
        ),
        (
            lambda d: d["States"].update(A=MAP | {"ItemSelector": {"v.$": 3}}),
            "a .$ field holds a path or an intrinsic call, not 3",
        ),
        (
            lambda d: d["States"]["A"].update(Assign={"x.$": "States.ArrayLength(a)"}),
            "'a' is not an argument",
        ),
        (
            lambda d: (
                d.update(QueryLanguage="JSONata") or d["States"]["B"].update(HeartbeatSeconds="5")
            ),
            "HeartbeatSeconds must be a positive integer, not the string '5'",
        ),
    ],
)
def test_every_problem_is_located_with_the_fix(
    tmp_path: Path, change: object, message: str
) -> None:
    document = json.loads(json.dumps(GOOD))
    change(document)  # type: ignore[operator]
    found = problems_of(tmp_path, document)
    assert any(message in p for p in found), found
    assert all(p.startswith(str(tmp_path / "m.asl.json") + ":") for p in found)


def test_an_unreachable_state_and_a_bad_choice_rule_are_named(tmp_path: Path) -> None:
    document = {
        "StartAt": "Pick",
        "States": {
            "Pick": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.x", "Next": "Done"}],
                "Default": "Done",
            },
            "Done": {"Type": "Succeed"},
            "Lost": {"Type": "Succeed"},
        },
    }
    found = problems_of(tmp_path, document)
    assert any("step 'Lost'" in p and "unreachable" in p for p in found), found
    assert any("exactly one comparison operator" in p for p in found), found


def test_variables_batches_and_a_distributed_map_load(tmp_path: Path) -> None:
    path = tmp_path / "vars.asl.json"
    processor = {**MAP["ItemProcessor"], "ProcessorConfig": {"Mode": "DISTRIBUTED"}}
    document = {
        "StartAt": "A",
        "States": {
            "A": {"Type": "Pass", "Assign": {"n": 1, "who.$": "$.who"}, "Next": "M"},
            "M": {
                **MAP,
                "ItemProcessor": processor,
                "ItemBatcher": {"MaxItemsPerBatch": 10},
                "MaxConcurrencyPath": "$n",
                "Next": "B",
            },
            "B": {"Type": "Task", "Resource": "${ChargeCardFunctionArn}", "End": True},
        },
    }
    path.write_text(json.dumps(document))
    assert load_asl_file(path).workflow.name == "vars"


def test_not_json_is_a_located_problem(tmp_path: Path) -> None:
    path = tmp_path / "m.asl.json"
    path.write_text('{"StartAt": "A", "States": {')
    with pytest.raises(DefinitionError) as caught:
        load_asl_file(path)
    assert "not JSON" in str(caught.value)


@pytest.mark.parametrize(
    ("file", "name"),
    [
        ("Order_Machine.asl.json", "order-machine"),
        ("orderMachine.asl.json", "order-machine"),
        ("StateMachine.asl.json", "state-machine"),
        ("order-machine.asl.json", "order-machine"),
    ],
)
def test_a_step_functions_machine_name_is_spelled_as_a_workflow_name(
    tmp_path: Path, file: str, name: str
) -> None:
    path = tmp_path / file
    path.write_text(json.dumps(GOOD))
    assert load_asl_file(path).workflow.name == name


@pytest.mark.parametrize(
    "resource",
    [
        "arn:aws:states:::states:startExecution.waitForTaskToken",
        "arn:aws-us-gov:states:::lambda:invoke",
        "arn:aws-cn:states:::events:putEvents.waitForTaskToken",
        "arn:${AWS::Partition}:states:::states:startExecution.sync:2",
        "arn:${partition}:states:::lambda:invoke",
        "arn:aws:states:us-east-1:111122223333:events:putEvents",
        "arn:aws:states:${AWS::Region}:${AWS::AccountId}:lambda:invoke",
        "arn:aws-us-gov:lambda:us-gov-west-1:210987654321:function:ChargeCardFunction",
        "arn:aws-cn:lambda:cn-north-1:111122223333:function:charge:live",
    ],
)
def test_resources_of_any_partition_and_account_load(tmp_path: Path, resource: str) -> None:
    document = json.loads(json.dumps(GOOD))
    document["States"]["B"] |= {
        "Resource": resource,
        "Parameters": {"FunctionName": "ChargeCardFunction", "StateMachineArn": "x:y"},
    }
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(document))
    assert load_asl_file(path).workflow.name == "m"


def test_each_refused_resource_is_one_line_and_what_runs_is_listed_once(tmp_path: Path) -> None:
    document = {
        "StartAt": "Put",
        "States": {
            "Put": {"Type": "Task", "Resource": "arn:aws:states:::dynamodb:query", "Next": "Q"},
            "Q": {
                "Type": "Task",
                "Resource": "arn:aws:states:::emr-serverless:startJobRun.sync",
                "Next": "S",
            },
            "S": {"Type": "Task", "Resource": "arn:aws:states:::athena:getWorkGroup", "End": True},
        },
    }
    found = problems_of(tmp_path, document)
    assert len(found) == 3, found
    put, queue, sdk = found
    assert "use arn:aws:states:::aws-sdk:dynamodb:query, the same call" in put
    assert "(Stepwell waits for the jobs of batch:submitJob.sync, ecs:runTask.sync" in queue
    assert (
        "start the job with arn:aws:states:::aws-sdk:emr-serverless:startJobRun and wait" in queue
    )
    assert "use arn:aws:states:::aws-sdk:athena:getWorkGroup" in sdk
    assert put.count("lambda:invoke") == 1
    for other in (queue, sdk):
        assert "lambda:invoke" not in other and "(what Stepwell runs: line 6)" in other, other


def test_a_jsonata_state_may_give_a_number_as_an_expression(tmp_path: Path) -> None:
    document = json.loads(json.dumps(GOOD)) | {"QueryLanguage": "JSONata"}
    document["States"]["B"] |= {"TimeoutSeconds": "{% $states.input.seconds %}"}
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(document))
    assert load_asl_file(path).workflow.name == "m"


def test_a_path_with_a_dot_before_its_bracket_is_step_functions_jsonpath(tmp_path: Path) -> None:
    # Step Functions reads $.[?(...)] as $[?(...)] (a sample machine's ResultSelector does).
    document = json.loads(json.dumps(GOOD))
    document["States"]["B"]["ResultSelector"] = {"ous.$": "$.[?(@.OU > 0)]", "first.$": "$.a.[0]"}
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps(document))
    assert load_asl_file(path).workflow.name == "m"
