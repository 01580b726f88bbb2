"""The task family: steps that run as an attempt of a Lambda (task, http, notify, agent, shell,
aws), and the replay of a code-first run. Each attempt is dispatched, fenced, leased and retried by
:mod:`stepwell.engine.attempts`; the kinds differ only in the parameters they run with."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import (
    SECRET_MARK,
    AgentStep,
    AwsStep,
    HttpStep,
    NotifyStep,
    ShellStep,
    Step,
)
from stepwell.engine import attempts
from stepwell.engine.decision import Work
from stepwell.engine.state import StepState

Render = Callable[[Any, dict[str, Any], datetime], Any]


@dataclass(frozen=True)
class Dispatched:
    """A kind whose step runs as attempts of a Lambda, with ``render``'s parameters (None: the
    step's input as it is)."""

    render: Render | None = None

    @property
    def waits(self) -> bool:
        return False

    @property
    def inline(self) -> bool:
        return False

    def parameters(self, spec: Step, data: dict[str, Any], now: datetime) -> Any:
        return None if self.render is None else self.render(spec, data, now)

    def start(self, work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
        attempts.start(work, step, spec)

    def on_timer(self, work: Work, step: StepState) -> None:
        attempts.on_timer(work, step)


def _http(spec: HttpStep, data: dict[str, Any], now: datetime) -> Any:
    render = expressions.render
    secret_data = {**data, "secrets": {n: SECRET_MARK % n for n in spec.secrets}}
    return {
        "method": spec.method,
        "url": render(spec.url, secret_data, now),
        "headers": render(spec.headers, secret_data, now),
        "body": render(spec.body, secret_data, now),
        "request_timeout_s": spec.request_timeout.total_seconds(),
        "secrets": dict(spec.secrets),
    }


def _notify(spec: NotifyStep, data: dict[str, Any], now: datetime) -> Any:
    return {
        "detail_type": expressions.render(spec.detail_type, data, now),
        "detail": expressions.render(spec.detail, data, now),
        "source": spec.source,
    }


def _shell(spec: ShellStep, data: dict[str, Any], now: datetime) -> Any:
    words = spec.command
    if isinstance(words, str):
        words = expressions.split_words(words)
    return {
        "command": [expressions.as_text(expressions.render(word, data, now)) for word in words],
        "timeout_s": spec.timeout.total_seconds() if spec.timeout else 60.0,
    }


def _agent(spec: AgentStep, data: dict[str, Any], now: datetime) -> Any:
    return {
        "model": spec.model,
        "prompt": expressions.render(spec.prompt, data, now),
        "system": expressions.render(spec.system, data, now),
        "max_tokens": spec.max_tokens,
        "budget_usd": spec.budget_usd,
    }


def _aws(spec: AwsStep, data: dict[str, Any], now: datetime) -> Any:
    call = {
        "service": spec.service,
        "action": spec.action,
        "parameters": expressions.render(spec.parameters, data, now),
        "integration": spec.integration,
    }
    if spec.role is not None:
        call["role"] = expressions.render(spec.role, data, now)
    return call


TASK = Dispatched()
HTTP = Dispatched(_http)
NOTIFY = Dispatched(_notify)
SHELL = Dispatched(_shell)
AGENT = Dispatched(_agent)
AWS = Dispatched(_aws)
REPLAY = Dispatched()
"""A code-first run's own step: each attempt replays the workflow function (its answer goes to
the code-first driver, engine.codeflow)."""
