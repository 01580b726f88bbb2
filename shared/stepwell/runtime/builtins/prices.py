"""What a model call costs on Amazon Bedrock: a small table of on-demand token prices.

Source: the Amazon Bedrock pricing page (https://aws.amazon.com/bedrock/pricing/), on-demand
text-generation prices in US dollars per 1,000 tokens, US East (N. Virginia). Prices change and
differ by region, by endpoint (the Claude 4.5 generation costs 10% more on regional than on
global endpoints; the global price is listed) and by context length (long-context requests are
priced higher); batch, prompt caching and provisioned throughput are not modelled. The table is
for budgets and run totals, not for billing: update it when the page changes.

A model that is not listed has no price: its calls are counted at cost 0 with ``cost_known``
false, and a step that sets a budget refuses to call it (a budget that cannot be checked would
be a budget silently ignored).
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class ModelPrice:
    """On-demand prices of one model, US dollars per 1,000 tokens."""

    input_per_1k: float
    output_per_1k: float

    def cost(self, input_tokens: int, output_tokens: int) -> float:
        """Dollars for a call with these token counts."""
        return (input_tokens * self.input_per_1k + output_tokens * self.output_per_1k) / 1000


PRICES: dict[str, ModelPrice] = {
    # Anthropic Claude
    "anthropic.claude-3-haiku-20240307-v1:0": ModelPrice(0.00025, 0.00125),
    "anthropic.claude-3-5-haiku-20241022-v1:0": ModelPrice(0.0008, 0.004),
    "anthropic.claude-3-7-sonnet-20250219-v1:0": ModelPrice(0.003, 0.015),
    "anthropic.claude-sonnet-4-20250514-v1:0": ModelPrice(0.003, 0.015),
    "anthropic.claude-sonnet-4-5-20250929-v1:0": ModelPrice(0.003, 0.015),
    "anthropic.claude-haiku-4-5-20251001-v1:0": ModelPrice(0.001, 0.005),
    "anthropic.claude-opus-4-20250514-v1:0": ModelPrice(0.015, 0.075),
    "anthropic.claude-opus-4-1-20250805-v1:0": ModelPrice(0.015, 0.075),
    # Amazon Nova
    "amazon.nova-micro-v1:0": ModelPrice(0.000035, 0.00014),
    "amazon.nova-lite-v1:0": ModelPrice(0.00006, 0.00024),
    "amazon.nova-pro-v1:0": ModelPrice(0.0008, 0.0032),
    "amazon.nova-premier-v1:0": ModelPrice(0.0025, 0.0125),
}

# Cross-region inference profiles prefix the model id with a geography ("us.", "global.").
_GEOGRAPHY = re.compile(r"^(?:us|eu|apac|jp|au|ca|us-gov|global)\.")


def base_model_id(model: str) -> str:
    """The foundation model id behind a model id, inference profile id or ARN.

    ``arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0`` and
    ``us.amazon.nova-lite-v1:0`` both give ``amazon.nova-lite-v1:0``.
    """
    if model.startswith("arn:"):
        model = model.rsplit("/", 1)[-1]
    return _GEOGRAPHY.sub("", model)


def price_of(model: str) -> ModelPrice | None:
    """The price of ``model`` (id, inference profile or ARN), or None when it is not listed."""
    return PRICES.get(base_model_id(model))
