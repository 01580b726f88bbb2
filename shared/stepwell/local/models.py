"""The local model: what answers an agent step's Bedrock ``Converse`` call (and a machine's
``bedrock:invokeModel``) in the local stack.

moto has no Converse (and its ``InvokeModel`` answers every call with an empty body), and a
test or a dev loop should neither need an account nor pay for tokens, so the local stack
answers ``bedrock-runtime.Converse`` and ``InvokeModel`` itself, deterministically, from a
fixtures file (``fixtures/models.yaml`` beside the workflows, or ``STEPWELL_LOCAL_MODELS``)::

    replies:
      - workflow: support-triage   # optional: only runs of this workflow
        step: classify             # optional: only this step
        when: refund|money back    # optional: a regular expression the prompt must match
        text: '{"category": "billing"}'
    default: echo                  # or a text: what a call that matches no reply gets

The first reply that matches answers. With no match, ``echo`` answers ``(local model) `` and the
start of the prompt. Usage is counted as one token per four bytes of the prompt (and system
prompt) and of the reply, and a reply is cut to ``maxTokens`` (``stopReason: max_tokens``), so
the step's cost, budget and the run's totals come out as they would on Bedrock for a reply of
that length, at the model's listed price. The agent step tells the call which run, workflow and
step it is for through Converse's ``requestMetadata`` (which Bedrock's invocation logs keep).
``InvokeModel`` carries no such metadata, so a reply limited to a ``workflow`` or a ``step``
does not answer it; its body is read and written in the invoked model's own format
(:mod:`stepwell.local.model_bodies`).
"""

from __future__ import annotations

import json
import math
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.error import YAMLError

from stepwell.local import model_bodies
from stepwell.local.intercept import Operation, ServiceError, streaming

BYTES_PER_TOKEN = 4
ECHO = "echo"
FILE = Path("fixtures") / "models.yaml"
"""Where the fixtures are, in the workflows folder."""


class ModelsFileError(ValueError):
    """The fixtures file cannot be used; the message names the file, the entry and the fix."""


@dataclass(frozen=True)
class Reply:
    """One canned answer and the calls it answers."""

    text: str
    workflow: str | None = None
    step: str | None = None
    when: re.Pattern[str] | None = None
    stop_reason: str = "end_turn"

    def answers(self, workflow: str | None, step: str | None, prompt: str) -> bool:
        return (
            (self.workflow is None or self.workflow == workflow)
            and (self.step is None or self.step == step)
            and (self.when is None or self.when.search(prompt) is not None)
        )


_FIELDS = {"text", "workflow", "step", "when", "stop_reason"}


class LocalModel:
    """Answers Converse from its replies (see the module's docstring)."""

    def __init__(self, replies: list[Reply] | None = None, default: str = ECHO) -> None:
        self.replies = list(replies or [])
        self.default = default
        self.calls: list[dict[str, Any]] = []
        """Every request it answered, as the agent step sent it."""

    @classmethod
    def load(cls, path: Path) -> LocalModel:
        """The model of a fixtures file; no file: a model that echoes."""
        if not path.is_file():
            return cls()
        try:
            document = YAML(typ="safe").load(path.read_text(encoding="utf-8")) or {}
        except YAMLError as exc:
            raise ModelsFileError(f"{path}: not YAML ({exc})") from None
        if not isinstance(document, dict) or set(document) - {"replies", "default"}:
            raise ModelsFileError(f"{path}: write a mapping with `replies:` and `default:`")
        replies = []
        for index, entry in enumerate(document.get("replies") or []):
            where = f"{path}: replies[{index}]"
            if not isinstance(entry, dict) or "text" not in entry:
                raise ModelsFileError(f"{where}: each reply needs `text:`")
            unknown = set(entry) - _FIELDS
            if unknown:
                raise ModelsFileError(
                    f"{where}: unknown field {sorted(unknown)[0]!r} (fields: {sorted(_FIELDS)})"
                )
            try:
                when = re.compile(str(entry["when"])) if entry.get("when") is not None else None
            except re.error as exc:
                raise ModelsFileError(f"{where}.when: not a regular expression ({exc})") from None
            replies.append(
                Reply(
                    text=str(entry["text"]),
                    workflow=_optional(entry.get("workflow")),
                    step=_optional(entry.get("step")),
                    when=when,
                    stop_reason=str(entry.get("stop_reason") or "end_turn"),
                )
            )
        return cls(replies, str(document.get("default", ECHO)))

    def converse(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The ``Converse`` answer for ``params`` (as botocore parsed the request)."""
        self.calls.append(dict(params))
        messages = params.get("messages") or []
        if not messages:
            raise ServiceError("ValidationException", "messages must not be empty")
        prompt = "".join(
            block.get("text", "") for block in messages[-1].get("content") or [] if block
        )
        system = "".join(block.get("text", "") for block in params.get("system") or [])
        metadata = params.get("requestMetadata") or {}
        limit = int((params.get("inferenceConfig") or {}).get("maxTokens") or 0)
        text, stop = self.reply(
            prompt, metadata.get("stepwell_workflow"), metadata.get("stepwell_step"), limit
        )
        tokens_in, tokens_out = _tokens(prompt) + _tokens(system), _tokens(text)
        answer = model_bodies.converse_answer(
            str(params.get("modelId")), text, stop, tokens_in, tokens_out
        )
        return {**answer, "metrics": {"latencyMs": 0}}

    def reply(
        self, prompt: str, workflow: str | None, step: str | None, limit: int
    ) -> tuple[str, str]:
        """The text that answers ``prompt`` and why it stopped (``end_turn``, or
        ``max_tokens`` when cut to ``limit`` tokens; 0: no limit)."""
        found = next((r for r in self.replies if r.answers(workflow, step, prompt)), None)
        if found is not None:
            text, stop = found.text, found.stop_reason
        else:
            text = f"(local model) {prompt[:200]}" if self.default == ECHO else self.default
            stop = "end_turn"
        if limit and _tokens(text) > limit:
            text, stop = (
                text.encode()[: limit * BYTES_PER_TOKEN].decode(errors="ignore"),
                "max_tokens",
            )
        return text, stop

    def invoke_model(self, params: Mapping[str, Any]) -> dict[str, Any]:
        """The ``InvokeModel`` answer: the request body read as its model family writes it
        (:mod:`stepwell.local.model_bodies`), the reply in that family's response body."""
        self.calls.append(dict(params))
        model_id = str(params.get("modelId") or "")
        try:
            body = json.loads(params.get("body") or b"")
        except ValueError:
            raise ServiceError("ValidationException", "the body is not JSON") from None
        if not isinstance(body, dict):
            raise ServiceError("ValidationException", "the body must be a JSON object")
        family = model_bodies.family(model_id, body)
        request = family.read(body)
        text, stop = self.reply(request.prompt, None, None, request.limit)
        answer = family.write(
            model_id, text, stop, _tokens(request.prompt) + _tokens(request.system), _tokens(text)
        )
        return {
            "body": streaming(json.dumps(answer).encode()),
            "contentType": "application/json",
        }


def _tokens(text: str) -> int:
    return math.ceil(len(text.encode()) / BYTES_PER_TOKEN)


def _optional(value: Any) -> str | None:
    return None if value is None else str(value)


def fixtures_file(environment: Mapping[str, str], folders: list[Path], project: Path) -> Path:
    """The local model's fixtures: ``STEPWELL_LOCAL_MODELS`` (the stack's variables, then the
    process's), else ``fixtures/models.yaml`` in a workflows folder, else the project's
    ``statemachines``."""
    chosen = environment.get("STEPWELL_LOCAL_MODELS") or os.environ.get("STEPWELL_LOCAL_MODELS")
    if chosen:
        return Path(chosen)
    for folder in folders:
        if (folder / FILE).is_file():
            return folder / FILE
    return project / "statemachines" / FILE


def operations(model: LocalModel) -> dict[str, Operation]:
    """Bedrock Runtime's Converse and InvokeModel, answered by the local model."""
    return {
        "bedrock-runtime.Converse": model.converse,
        "bedrock-runtime.InvokeModel": model.invoke_model,
    }
