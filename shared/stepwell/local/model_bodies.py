"""The request and response bodies of Bedrock's ``InvokeModel``, by model family, as the local
model reads and writes them.

``InvokeModel`` takes and gives a body in the invoked model's own format (Bedrock's model
parameters pages): the local model finds the prompt and the token limit in a request body, and
writes its reply in the response body that family's callers read (``$.Body.content[0].text``
for Anthropic's Messages, ``$.Body.results[0].outputText`` for Titan Text ...). A family it
does not know is refused with the families it answers, so a machine for another model runs on
AWS, or asks for one of these locally.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stepwell.local.intercept import ServiceError


@dataclass(frozen=True)
class Request:
    """What the local model needs from a request body."""

    prompt: str
    system: str = ""
    limit: int = 0
    """The most tokens the reply may have (0: no limit)."""


Writer = Callable[[str, str, str, int, int], dict[str, Any]]
"""``(model id, text, stop reason, input tokens, output tokens)`` -> the response body; the
stop reason is ``end_turn`` or ``max_tokens``."""


@dataclass(frozen=True)
class Family:
    """One family's body formats."""

    name: str
    read: Callable[[Mapping[str, Any]], Request]
    write: Writer


def _text_of(content: Any) -> str:
    """The text of a message's content: a string, or its text blocks."""
    if isinstance(content, str):
        return content
    blocks = content if isinstance(content, list) else []
    return "".join(str(b.get("text", "")) for b in blocks if isinstance(b, dict))


def _last_message(body: Mapping[str, Any]) -> str:
    messages = body.get("messages")
    if not isinstance(messages, list) or not messages or not isinstance(messages[-1], dict):
        raise ServiceError("ValidationException", "messages: at least one message is required")
    return _text_of(messages[-1].get("content"))


def _limit(value: Any) -> int:
    return value if isinstance(value, int) and not isinstance(value, bool) else 0


def _prompt(body: Mapping[str, Any], field: str = "prompt") -> str:
    prompt = body.get(field)
    if not isinstance(prompt, str):
        raise ServiceError("ValidationException", f"{field}: a string is required")
    return prompt


def _anthropic_read(body: Mapping[str, Any]) -> Request:
    if "messages" in body:
        return Request(
            _last_message(body), _text_of(body.get("system")), _limit(body.get("max_tokens"))
        )
    # Text Completions: "\n\nHuman: ... \n\nAssistant:"
    prompt = re.sub(r"\n\nAssistant:\s*$", "", _prompt(body)).replace("\n\nHuman:", "").strip()
    return Request(prompt, limit=_limit(body.get("max_tokens_to_sample")))


def _anthropic_write(model: str, text: str, stop: str, tokens_in: int, tokens_out: int) -> Any:
    return {
        "id": "msg_local",
        "type": "message",
        "role": "assistant",
        "model": model,
        "content": [{"type": "text", "text": text}],
        "stop_reason": stop,
        "stop_sequence": None,
        "usage": {"input_tokens": tokens_in, "output_tokens": tokens_out},
    }


def _anthropic_completion_write(
    model: str, text: str, stop: str, tokens_in: int, tokens_out: int
) -> Any:
    return {
        "completion": text,
        "stop_reason": "max_tokens" if stop == "max_tokens" else "stop_sequence",
        "stop": None,
    }


def _titan_read(body: Mapping[str, Any]) -> Request:
    config = body.get("textGenerationConfig") or {}
    return Request(_prompt(body, "inputText"), limit=_limit(config.get("maxTokenCount")))


def _titan_write(model: str, text: str, stop: str, tokens_in: int, tokens_out: int) -> Any:
    reason = "LENGTH" if stop == "max_tokens" else "FINISH"
    return {
        "inputTextTokenCount": tokens_in,
        "results": [{"tokenCount": tokens_out, "outputText": text, "completionReason": reason}],
    }


def _nova_read(body: Mapping[str, Any]) -> Request:
    config = body.get("inferenceConfig") or {}
    system = body.get("system")
    return Request(
        _last_message(body),
        _text_of(system) if isinstance(system, list) else "",
        _limit(config.get("maxTokens") or config.get("max_new_tokens")),
    )


def converse_answer(model: str, text: str, stop: str, tokens_in: int, tokens_out: int) -> Any:
    """Converse's answer, which is also the body of Nova's ``InvokeModel``."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": text}]}},
        "stopReason": stop,
        "usage": {
            "inputTokens": tokens_in,
            "outputTokens": tokens_out,
            "totalTokens": tokens_in + tokens_out,
        },
    }


def _llama_read(body: Mapping[str, Any]) -> Request:
    return Request(_prompt(body), limit=_limit(body.get("max_gen_len")))


def _llama_write(model: str, text: str, stop: str, tokens_in: int, tokens_out: int) -> Any:
    return {
        "generation": text,
        "prompt_token_count": tokens_in,
        "generation_token_count": tokens_out,
        "stop_reason": "length" if stop == "max_tokens" else "stop",
    }


def _mistral_read(body: Mapping[str, Any]) -> Request:
    return Request(_prompt(body), limit=_limit(body.get("max_tokens")))


def _mistral_write(model: str, text: str, stop: str, tokens_in: int, tokens_out: int) -> Any:
    reason = "length" if stop == "max_tokens" else "stop"
    return {"outputs": [{"text": text, "stop_reason": reason}]}


FAMILIES = {
    "anthropic": Family("anthropic", _anthropic_read, _anthropic_write),
    "amazon.titan-text": Family("amazon.titan-text", _titan_read, _titan_write),
    "amazon.nova": Family("amazon.nova", _nova_read, converse_answer),
    "meta.llama": Family("meta.llama", _llama_read, _llama_write),
    "mistral": Family("mistral", _mistral_read, _mistral_write),
}
"""The families the local model answers, by the start of their model ids."""
COMPLETIONS = Family("anthropic", _anthropic_read, _anthropic_completion_write)
"""Anthropic's older Text Completions body (``prompt`` in, ``completion`` out)."""

_FAMILY = re.compile(r"(?:^|[./])(" + "|".join(re.escape(f) for f in FAMILIES) + r")")


def family(model_id: str, body: Mapping[str, Any]) -> Family:
    """The family of a model id, an inference profile (``us.anthropic...``) or a model ARN (an
    Anthropic body with ``prompt`` is the Text Completions one); ServiceError naming the
    families the local model answers when there is none."""
    found = _FAMILY.search(model_id.rsplit("/", 1)[-1])
    if found is None:
        raise ServiceError(
            "ValidationException",
            f"the local model answers InvokeModel for {', '.join(FAMILIES)} models, not "
            f"{model_id!r}: that model runs on AWS only (or call it with Converse, which the "
            "local model answers for any model)",
        )
    if found.group(1) == "anthropic" and "messages" not in body:
        return COMPLETIONS
    return FAMILIES[found.group(1)]
