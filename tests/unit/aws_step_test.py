"""The aws step: an AWS API called with boto3 as Step Functions' AWS SDK integrations call it
(service and action names, PascalCase parameters and results, ``Service.CodeException``
errors), against moto; and where a machine, a YAML workflow and a code-first run name one."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from code_context_test import failure_of, issue_of
from definition_validation_test import problems_of
from moto import mock_aws

from stepwell.asl.loader import load_asl_file
from stepwell.definition import services
from stepwell.definition.errors import DefinitionError
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.envelope import StepEnvelope
from stepwell.runtime.runner import run_attempt
from stepwell.runtime.step_context import StepContext

CTX = StepContext("run-1", "call", "call", 1, "run-1:call:1")


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltinDeps]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        yield BuiltinDeps()


def call(deps: BuiltinDeps, service: str, action: str, **parameters: Any) -> Any:
    params = {"service": service, "action": action, "parameters": parameters}
    return run_builtin("aws", params, CTX, deps).output


@pytest.mark.parametrize(
    ("written", "boto3_name"),
    [
        ("s3", "s3"),
        ("sfn", "stepfunctions"),
        ("eventbridge", "events"),
        ("cloudwatchlogs", "logs"),
        ("acmpca", "acm-pca"),
        ("bedrockruntime", "bedrock-runtime"),
        ("elasticloadbalancingv2", "elbv2"),
        ("DynamoDB", "dynamodb"),
    ],
)
def test_a_service_as_step_functions_names_it_is_boto3s(written: str, boto3_name: str) -> None:
    assert services.service_name(written) == boto3_name


def test_an_unknown_service_or_action_names_the_closest() -> None:
    with pytest.raises(services.UnknownCall, match=r"'dynamodbb' is not an AWS .*'dynamodb'"):
        services.service_name("dynamodbb")
    with pytest.raises(services.UnknownCall, match=r"s3 has no action 'getObjet'.*'getObject'"):
        services.operation("s3", "getObjet")


@pytest.mark.parametrize(
    ("service", "code", "name"),
    [
        ("acm-pca", "ResourceNotFoundException", "AcmPca.ResourceNotFoundException"),
        ("s3", "BucketAlreadyExists", "S3.BucketAlreadyExistsException"),
        ("dynamodb", "ConditionalCheckFailedException", "DynamoDb.ConditionalCheckFailedException"),
        ("stepfunctions", "ExecutionDoesNotExist", "Sfn.ExecutionDoesNotExistException"),
        ("ec2", "InvalidInstanceID.NotFound", "Ec2.InvalidInstanceID.NotFoundException"),
        ("secretsmanager", "ResourceNotFoundException", "SecretsManager.ResourceNotFoundException"),
    ],
)
def test_errors_are_named_as_step_functions_names_them(service: str, code: str, name: str) -> None:
    # The developer guide's own examples: AcmPca.ResourceNotFoundException, and S3's
    # BucketAlreadyExists with the Exception suffix added.
    assert services.error_name(service, code) == name


def test_parameters_and_results_are_pascal_case_blobs_text(deps: BuiltinDeps) -> None:
    call(deps, "s3", "createBucket", Bucket="orders")
    call(deps, "s3", "putObject", bucket="orders", key="k.json", Body='{"a": 1}')
    got = call(deps, "s3", "getObject", Bucket="orders", Key="k.json")
    assert json.loads(got["Body"]) == {"a": 1}
    assert got["ContentLength"] == 8 and "ResponseMetadata" not in got
    listed = call(deps, "s3", "listObjectsV2", Bucket="orders")
    (entry,) = listed["Contents"]
    assert entry["Key"] == "k.json" and entry["LastModified"].endswith("Z")
    # Glacier's model is camelCase (accountId, vaultName): Step Functions' names are PascalCase.
    call(deps, "glacier", "createVault", AccountId="-", VaultName="v")
    assert call(deps, "glacier", "describeVault", AccountId="-", VaultName="v")["VaultName"] == "v"


def test_a_services_error_is_its_name_and_step_functions_cause(deps: BuiltinDeps) -> None:
    call(deps, "s3", "createBucket", Bucket="orders")
    with pytest.raises(ServiceCallFailed) as caught:
        call(deps, "s3", "getObject", Bucket="orders", Key="missing")
    assert caught.value.error_type == "S3.NoSuchKeyException"
    assert caught.value.retryable
    assert str(caught.value).startswith("The specified key does not exist. (Service: S3, ")
    assert "Status Code: 404, Request ID: " in str(caught.value)


def test_parameters_the_api_refuses_fail_the_task_for_good(deps: BuiltinDeps) -> None:
    with pytest.raises(ServiceCallFailed) as caught:
        call(deps, "s3", "getObject", Bucket="orders")
    assert caught.value.error_type == "States.TaskFailed" and not caught.value.retryable
    assert "step 'call': s3:getObject refused its parameters" in str(caught.value)
    assert "Key" in str(caught.value)


def test_the_runner_records_the_failure_by_step_functions_name(
    deps: BuiltinDeps, monkeypatch: pytest.MonkeyPatch
) -> None:
    recorded: list[Any] = []
    monkeypatch.setattr("stepwell.runtime.runner.record", lambda _, result: recorded.append(result))
    runtime: Any = type("R", (), {"builtins": deps, "orchestrator": None})()
    envelope = StepEnvelope.from_dict(
        {
            "run_id": "run-1",
            "step_id": "get",
            "key": "get",
            "token": "t1",
            "idempotency_key": "run-1:get:1",
            "attempt": 1,
            "step_type": "aws",
            "input": {"service": "sqs", "action": "getQueueUrl", "parameters": {"QueueName": "x"}},
        }
    )
    result = run_attempt(runtime, envelope)
    assert result.error_type == "Sqs.QueueDoesNotExistException", result
    assert recorded == [result]


def test_a_machine_names_an_sdk_call_and_its_mistakes_are_located(tmp_path: Path) -> None:
    def machine(resource: str, parameters: dict[str, Any]) -> Path:
        task = {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}
        path = tmp_path / "m.asl.json"
        path.write_text(json.dumps({"StartAt": "T", "States": {"T": task}}, indent=1))
        return path

    load_asl_file(machine("arn:aws:states:::aws-sdk:s3:getObject", {"Bucket": "b", "Key.$": "$"}))
    load_asl_file(machine("arn:aws-cn:states:::aws-sdk:sfn:startExecution.waitForTaskToken", {}))
    for resource, parameters, said in [
        ("arn:aws:states:::aws-sdk:s3:getObjet", {}, "s3 has no action 'getObjet': did you mean"),
        ("arn:aws:states:::aws-sdk:s4:getObject", {}, "'s4' is not an AWS service boto3 knows"),
        (
            "arn:aws:states:::aws-sdk:s3:getObject",
            {"Bucket": "b", "Kee.$": "$"},
            "s3:getObject takes no parameter 'Kee' (it takes Bucket, ",
        ),
    ]:
        with pytest.raises(DefinitionError) as caught:
            load_asl_file(machine(resource, parameters))
        (problem,) = caught.value.problems
        assert said in str(problem), problem
        assert "Stepwell runs" not in str(problem)


def test_a_yaml_aws_step_is_checked_as_it_loads() -> None:
    good = "name: wf\nsteps:\n  get:\n    type: aws\n    service: s3\n    action: getObject\n"
    assert problems_of(good + "    parameters: {Bucket: b, Key: '${input.key}'}\n") == []
    (problem,) = problems_of(good.replace("getObject", "fetchObject"))
    assert "s3 has no action 'fetchObject'" in problem


def test_code_first_issues_an_aws_step_with_the_runners_parameters() -> None:
    issue = issue_of(lambda ctx: ctx.aws("get", "s3", "getObject", {"Bucket": "b", "Key": "k"}))
    assert issue.kind == "aws"
    assert issue.input == {
        "service": "s3",
        "action": "getObject",
        "parameters": {"Bucket": "b", "Key": "k"},
    }
    assert issue.spec == {"service": "s3", "action": "getObject"}
    assert "step 'get': " in failure_of(lambda ctx: ctx.aws("get", "s3", "getObjet"))


def test_an_optimized_integration_has_its_own_error_prefix_metadata_and_json_text(
    deps: BuiltinDeps,
) -> None:
    assert services.error_name("dynamodb", "ConditionalCheckFailedException", "optimized") == (
        "DynamoDB.ConditionalCheckFailedException"
    )
    queue = call(deps, "sqs", "createQueue", QueueName="q")["QueueUrl"]
    params = {
        "service": "sqs",
        "action": "sendMessage",
        "parameters": {"QueueUrl": queue, "MessageBody": {"order": 7}},
        "integration": "optimized",
    }
    sent = run_builtin("aws", params, CTX, deps).output
    assert sent["SdkHttpMetadata"]["HttpStatusCode"] == 200
    assert sent["SdkResponseMetadata"]["RequestId"]
    (message,) = call(deps, "sqs", "receiveMessage", QueueUrl=queue)["Messages"]
    assert message["Body"] == '{"order":7}' and message["MD5OfBody"] == sent["MD5OfMessageBody"]
    assert "SdkHttpMetadata" not in call(deps, "sqs", "getQueueUrl", QueueName="q")


def test_an_optimized_resource_is_checked_as_step_functions_checks_it(tmp_path: Path) -> None:
    def problems(resource: str, parameters: dict[str, Any]) -> list[str]:
        task = {"Type": "Task", "Resource": resource, "Parameters": parameters, "End": True}
        path = tmp_path / "m.asl.json"
        path.write_text(json.dumps({"StartAt": "T", "States": {"T": task}}, indent=1))
        try:
            load_asl_file(path)
        except DefinitionError as exc:
            return [str(p) for p in exc.problems]
        return []

    assert problems("arn:aws:states:::sns:publish.waitForTaskToken", {"Message": "m"}) == []
    (token,) = problems("arn:aws:states:::dynamodb:getItem.waitForTaskToken", {})
    assert "dynamodb has no .waitForTaskToken" in token
    (unknown,) = problems("arn:aws:states:::sqs:sendMessage", {"QueueUrl": "u", "Body": "b"})
    assert "sqs:sendMessage takes no parameter 'Body'" in unknown


def test_a_yaml_aws_step_may_be_optimized_only_where_step_functions_has_it() -> None:
    step = "name: wf\nsteps:\n  q:\n    type: aws\n    service: dynamodb\n"
    step += "    integration: optimized\n"
    assert problems_of(step + "    action: putItem\n") == []
    (problem,) = problems_of(step + "    action: query\n")
    assert "dynamodb:query is no optimized integration Stepwell runs" in problem


def test_every_optimized_integration_that_runs_is_a_call_boto3_knows() -> None:
    for service, (_, actions) in services.OPTIMIZED.items():
        for action in actions:
            assert services.parameter_names(service, action, "optimized")
