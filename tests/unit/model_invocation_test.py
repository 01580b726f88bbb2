"""Step Functions' optimized ``bedrock:invokeModel``: Body or Input.S3Uri in, ``{"Body"}`` or
the Output.S3Uri it wrote out, against moto's S3 and the local model (what answers Bedrock in
the local stack)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from helpers import task_problems
from stepwell.local import models
from stepwell.local.intercept import Interceptor
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.step_context import StepContext

CTX = StepContext("run-1", "ask", "ask", 1, "run-1:ask:1")
HAIKU = "anthropic.claude-3-haiku-20240307-v1:0"
MESSAGES = {
    "anthropic_version": "bedrock-2023-05-31",
    "max_tokens": 100,
    "messages": [{"role": "user", "content": [{"type": "text", "text": "hello"}]}],
}


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltinDeps]:
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    local = Interceptor(models.operations(models.LocalModel()))
    with mock_aws():
        local.install()
        try:
            yield BuiltinDeps()
        finally:
            local.uninstall()


def invoke(deps: BuiltinDeps, **parameters: Any) -> Any:
    params = {
        "service": "bedrock",
        "action": "invokeModel",
        "integration": "optimized",
        "parameters": parameters,
    }
    return run_builtin("aws", params, CTX, deps).output


def test_the_answer_is_the_results_body_as_json(deps: BuiltinDeps) -> None:
    result = invoke(deps, ModelId=HAIKU, Body=MESSAGES, ContentType="application/json")
    assert result["Body"]["content"] == [{"type": "text", "text": "(local model) hello"}]
    assert set(result) == {"Body"}


def test_the_body_comes_from_s3_and_the_answer_goes_there(deps: BuiltinDeps) -> None:
    s3 = deps.client("s3")
    s3.create_bucket(Bucket="prompts")
    s3.put_object(Bucket="prompts", Key="in.json", Body=json.dumps(MESSAGES).encode())
    result = invoke(
        deps,
        ModelId=HAIKU,
        Input={"S3Uri": "s3://prompts/in.json"},
        Output={"S3Uri": "s3://prompts/out/answer.json"},
    )
    assert result == {"Body": {"S3Uri": "s3://prompts/out/answer.json"}}
    written = json.loads(s3.get_object(Bucket="prompts", Key="out/answer.json")["Body"].read())
    assert written["content"][0]["text"] == "(local model) hello"


def test_a_missing_input_object_is_the_s3_error(deps: BuiltinDeps) -> None:
    deps.client("s3").create_bucket(Bucket="prompts")
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, ModelId=HAIKU, Input={"S3Uri": "s3://prompts/none.json"})
    assert failed.value.error_type == "S3.NoSuchKeyException"


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        ({"ModelId": HAIKU}, "as Body or as Input.S3Uri (one of them)"),
        (
            {"ModelId": HAIKU, "Body": MESSAGES, "Input": {"S3Uri": "s3://b/k"}},
            "as Body or as Input.S3Uri (one of them)",
        ),
        (
            {"ModelId": HAIKU, "Input": {"S3Uri": "b/k"}},
            'Input must be {"S3Uri": "s3://BUCKET/KEY"}',
        ),
    ],
)
def test_a_request_step_functions_refuses_fails_the_task_and_says_why(
    deps: BuiltinDeps, parameters: dict[str, Any], said: str
) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, **parameters)
    assert failed.value.error_type == "States.TaskFailed" and not failed.value.retryable
    assert said in str(failed.value)


def test_the_models_error_is_named_after_bedrock(deps: BuiltinDeps) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, ModelId="cohere.command-r-v1:0", Body={"message": "hi"})
    assert failed.value.error_type == "Bedrock.ValidationException"
    assert "runs on AWS only" in str(failed.value)


def test_a_machine_is_checked_against_the_integrations_own_parameters(tmp_path: Path) -> None:
    def problems(parameters: dict[str, Any]) -> list[str]:
        return task_problems(tmp_path, "arn:aws:states:::bedrock:invokeModel", parameters)

    given = {"ModelId": HAIKU, "Input": {"S3Uri": "s3://b/k"}, "Output": {"S3Uri": "s3://b/o"}}
    assert problems(given) == []
    assert problems({"ModelId.$": "$.model", "Body": MESSAGES, "Accept": "application/json"}) == []
    (unknown,) = problems({"ModelId": HAIKU, "Prompt": "hi"})
    assert "bedrock:invokeModel takes no parameter 'Prompt'" in unknown
    assert "Body" in unknown and "Input, Output" in unknown
