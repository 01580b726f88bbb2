"""The local model: deterministic Converse answers from a fixtures file."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.intercept import ServiceError
from stepwell.local.models import LocalModel, ModelsFileError, Reply


def ask(model: LocalModel, prompt: str, **extra: Any) -> dict[str, Any]:
    return model.converse(
        {
            "modelId": "amazon.nova-lite-v1:0",
            "messages": [{"role": "user", "content": [{"text": prompt}]}],
            **extra,
        }
    )


def text_of(answer: dict[str, Any]) -> str:
    return str(answer["output"]["message"]["content"][0]["text"])


def fixtures(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "models.yaml"
    path.write_text(text)
    return path


def test_the_first_matching_reply_answers(tmp_path: Path) -> None:
    model = LocalModel.load(
        fixtures(
            tmp_path,
            "replies:\n"
            "  - {workflow: triage, step: classify, when: '(?i)refund', text: billing}\n"
            "  - {workflow: triage, text: other}\n"
            "default: no idea\n",
        )
    )
    meta = {"stepwell_workflow": "triage", "stepwell_step": "classify"}
    assert text_of(ask(model, "A REFUND please", requestMetadata=meta)) == "billing"
    assert text_of(ask(model, "hello", requestMetadata=meta)) == "other"
    assert text_of(ask(model, "A refund", requestMetadata={"stepwell_workflow": "x"})) == "no idea"


def test_without_fixtures_it_echoes_and_counts_four_bytes_a_token(tmp_path: Path) -> None:
    model = LocalModel.load(tmp_path / "missing.yaml")
    answer = ask(model, "x" * 40, system=[{"text": "y" * 8}])
    assert text_of(answer) == "(local model) " + "x" * 40
    assert answer["usage"]["inputTokens"] == 10 + 2
    assert answer["usage"]["outputTokens"] == 14  # 54 bytes
    assert answer["stopReason"] == "end_turn"


def test_a_reply_is_cut_at_max_tokens() -> None:
    answer = ask(LocalModel(default="z" * 100), "hi", inferenceConfig={"maxTokens": 5})
    assert text_of(answer) == "z" * 20
    assert answer["stopReason"] == "max_tokens"
    assert answer["usage"]["outputTokens"] == 5


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("replies: [{when: x}]", "replies[0]: each reply needs `text:`"),
        ("replies: [{text: a, colour: red}]", "unknown field 'colour'"),
        ("replies: [{text: a, when: '('}]", "replies[0].when: not a regular expression"),
        ("answers: []", "write a mapping with `replies:`"),
        ("replies: [", "not YAML"),
    ],
)
def test_a_bad_fixtures_file_is_named_with_the_fix(tmp_path: Path, text: str, message: str) -> None:
    path = fixtures(tmp_path, text)
    with pytest.raises(ModelsFileError, match=r"models\.yaml") as caught:
        LocalModel.load(path)
    assert message in str(caught.value)


def invoke(model: LocalModel, model_id: str, body: dict[str, Any]) -> dict[str, Any]:
    answer = model.invoke_model({"modelId": model_id, "body": json.dumps(body).encode()})
    assert answer["contentType"] == "application/json"
    parsed: dict[str, Any] = json.loads(answer["body"].read())
    return parsed


REPLY = LocalModel([Reply("a sunny day", when=re.compile("weather"))])


@pytest.mark.parametrize(
    ("model_id", "body", "read"),
    [
        (
            "anthropic.claude-3-haiku-20240307-v1:0",
            {
                "anthropic_version": "bedrock-2023-05-31",
                "max_tokens": 50,
                "messages": [
                    {"role": "user", "content": [{"type": "text", "text": "the weather?"}]}
                ],
            },
            lambda b: (b["content"][0]["text"], b["stop_reason"], b["usage"]["input_tokens"]),
        ),
        (
            "anthropic.claude-v2",
            {"prompt": "\n\nHuman: the weather?\n\nAssistant:", "max_tokens_to_sample": 50},
            lambda b: (b["completion"], b["stop_reason"], None),
        ),
        (
            "amazon.titan-text-express-v1",
            {"inputText": "the weather?", "textGenerationConfig": {"maxTokenCount": 50}},
            lambda b: (
                b["results"][0]["outputText"],
                b["results"][0]["completionReason"],
                b["inputTextTokenCount"],
            ),
        ),
        (
            "us.amazon.nova-lite-v1:0",
            {"messages": [{"role": "user", "content": [{"text": "the weather?"}]}]},
            lambda b: (
                b["output"]["message"]["content"][0]["text"],
                b["stopReason"],
                b["usage"]["inputTokens"],
            ),
        ),
        (
            "arn:aws:bedrock:us-east-1::foundation-model/meta.llama3-8b-instruct-v1:0",
            {"prompt": "the weather?", "max_gen_len": 50},
            lambda b: (b["generation"], b["stop_reason"], b["prompt_token_count"]),
        ),
        (
            "mistral.mistral-7b-instruct-v0:2",
            {"prompt": "the weather?", "max_tokens": 50},
            lambda b: (b["outputs"][0]["text"], b["outputs"][0]["stop_reason"], None),
        ),
    ],
)
def test_invoke_model_answers_in_the_model_familys_own_body(
    model_id: str, body: dict[str, Any], read: Any
) -> None:
    text, stop, tokens_in = read(invoke(REPLY, model_id, body))
    assert text == "a sunny day"
    assert stop in ("end_turn", "stop_sequence", "FINISH", "stop")
    assert tokens_in in (None, 3)  # "the weather?": 12 bytes, four a token


def test_invoke_model_cuts_the_reply_at_the_familys_limit() -> None:
    body = invoke(REPLY, "meta.llama3-8b-instruct-v1:0", {"prompt": "weather", "max_gen_len": 1})
    assert (body["generation"], body["stop_reason"]) == ("a su", "length")


def test_invoke_model_of_a_family_it_does_not_know_names_those_it_does() -> None:
    with pytest.raises(ServiceError) as refused:
        invoke(REPLY, "cohere.command-r-v1:0", {"message": "hi"})
    assert refused.value.code == "ValidationException"
    assert "anthropic, amazon.titan-text" in str(refused.value)
    assert "runs on AWS only" in str(refused.value)


def test_invoke_model_refuses_a_body_without_the_familys_prompt() -> None:
    with pytest.raises(ServiceError, match="inputText: a string is required"):
        invoke(REPLY, "amazon.titan-text-lite-v1", {"prompt": "hi"})
