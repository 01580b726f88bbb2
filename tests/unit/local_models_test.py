"""The local model: deterministic Converse answers from a fixtures file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from stepwell.local.models import LocalModel, ModelsFileError


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
