"""The agent step: one Amazon Bedrock Converse call with a prompt.

Output: ``{"text", "stop_reason", "usage": {"input_tokens", "output_tokens"}, "cost_usd",
"cost_known", "model"}``; the usage is also returned to the runner so the run totals it.

Budget (``budget_usd``) is checked *before* the call, against the worst case: the input tokens
estimated from the prompt's length (:func:`estimate_input_tokens`, deliberately on the high
side) plus all ``max_tokens`` output tokens at the model's prices. A call that could cost more
is refused with ``BudgetExceeded`` and costs nothing; the message says what to lower. Should the
real call still cost more than the budget (the estimate was low), the attempt fails with
``BudgetExceeded`` after the call, carrying the usage so the money spent is still counted.
``BudgetExceeded`` is not retried: the same call would cost the same. A model without a known
price (see :mod:`prices`) cannot be held to a budget, so with a budget it is refused with
``ModelPriceUnknown``; without one it runs and is counted at cost 0.

Bedrock's own errors keep their names (``ThrottlingException``, ``ModelTimeoutException``,
``ServiceUnavailableException``, ``ValidationException`` ...): list them in ``retry_on``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any, ClassVar

from stepwell.engine.state import Usage
from stepwell.runtime.builtins.prices import ModelPrice, price_of
from stepwell.runtime.step_context import StepContext

if TYPE_CHECKING:
    from mypy_boto3_bedrock_runtime import BedrockRuntimeClient

BYTES_PER_TOKEN_ESTIMATE = 3
"""Tokenizers average about four bytes of English per token; three errs towards refusing."""
MESSAGE_OVERHEAD_TOKENS = 16
"""Role markers and framing the model counts besides the text."""


class BudgetExceeded(Exception):
    """The call would cost (or did cost) more than the step's ``budget_usd``."""

    retryable: ClassVar[bool] = False

    def __init__(self, message: str, usage: Usage | None = None) -> None:
        super().__init__(message)
        self.usage = usage


class ModelPriceUnknown(LookupError):
    """The step sets a budget for a model whose price Stepwell does not know."""

    retryable: ClassVar[bool] = False


ERROR_NAMES = ("BudgetExceeded", "ModelPriceUnknown")
"""Stepwell's own error names for agent steps (Bedrock's errors keep theirs)."""


def estimate_input_tokens(*texts: str | None) -> int:
    """A high estimate of the tokens ``texts`` count as input."""
    size = sum(len(t.encode()) for t in texts if t)
    return math.ceil(size / BYTES_PER_TOKEN_ESTIMATE) + MESSAGE_OVERHEAD_TOKENS


def run(
    params: Mapping[str, Any], ctx: StepContext, client: BedrockRuntimeClient
) -> tuple[Any, Usage]:
    """Call the model ``params`` describe; return the output and the call's usage."""
    model = str(params["model"])
    prompt = _text(params.get("prompt"))
    system = _text(params.get("system")) or None
    max_tokens = int(params.get("max_tokens") or 1024)
    budget = params.get("budget_usd")
    price = price_of(model)

    if budget is not None:
        _check_budget(
            model=model,
            price=price,
            budget=float(budget),
            prompt=prompt,
            system=system,
            max_tokens=max_tokens,
        )

    request: dict[str, Any] = {
        "modelId": model,
        "messages": [{"role": "user", "content": [{"text": prompt}]}],
        "inferenceConfig": {"maxTokens": max_tokens},
    }
    if system:
        request["system"] = [{"text": system}]
    # Kept by Bedrock's invocation logs: which run and step a call was for.
    request["requestMetadata"] = {
        "stepwell_workflow": _metadata(ctx.workflow),
        "stepwell_run": _metadata(ctx.run_id),
        "stepwell_step": _metadata(ctx.step_id),
    }
    response = client.converse(**request)

    tokens = response.get("usage") or {}
    input_tokens = int(tokens.get("inputTokens", 0))
    output_tokens = int(tokens.get("outputTokens", 0))
    cost = price.cost(input_tokens, output_tokens) if price else 0.0
    usage = Usage(cost, input_tokens, output_tokens)
    content = response.get("output", {}).get("message", {}).get("content", [])
    text = "".join(block["text"] for block in content if "text" in block)
    ctx.logger.info(
        "agent step: %s, %d in / %d out tokens, $%.6f", model, input_tokens, output_tokens, cost
    )
    if budget is not None and cost > float(budget):
        raise BudgetExceeded(
            f"agent step '{ctx.step_id}': the call cost ${cost:.6f}, over budget_usd "
            f"${float(budget):g} (the estimate before the call was low)",
            usage,
        )
    output = {
        "text": text,
        "stop_reason": response.get("stopReason"),
        "usage": {"input_tokens": input_tokens, "output_tokens": output_tokens},
        "cost_usd": cost,
        "cost_known": price is not None,
        "model": model,
    }
    return output, usage


def _check_budget(
    *,
    model: str,
    price: ModelPrice | None,
    budget: float,
    prompt: str,
    system: str | None,
    max_tokens: int,
) -> None:
    if price is None:
        raise ModelPriceUnknown(
            f"model {model!r} has no known price, so budget_usd cannot be enforced: "
            "remove budget_usd, or use a model listed in stepwell.runtime.builtins.prices"
        )
    estimate = estimate_input_tokens(prompt, system)
    worst = price.cost(estimate, max_tokens)
    if worst > budget:
        raise BudgetExceeded(
            f"the call could cost ${worst:.6f} (about {estimate} input tokens and up to "
            f"max_tokens={max_tokens} output tokens on {model}), over budget_usd ${budget:g}: "
            "lower max_tokens, shorten the prompt or raise budget_usd"
        )


def _metadata(value: str) -> str:
    """``value`` in the characters Converse's ``requestMetadata`` allows (256 at most)."""
    return re.sub(r"[^a-zA-Z0-9\s:_@$#=/+,.-]", "_", value)[:256]


def _text(value: Any) -> str:
    # A prompt rendered from an expression may be an object: the model gets it as JSON.
    if value is None:
        return ""
    return value if isinstance(value, str) else json.dumps(value)
