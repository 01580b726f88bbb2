"""Agent steps run locally: the local model answers their Bedrock calls from
statemachines/fixtures/models.yaml, and the run still counts their tokens and cost."""

from __future__ import annotations

import pytest
from e2e_helpers import finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.runtime.builtins.prices import price_of


@pytest.mark.parametrize(
    ("text", "category", "routed"),
    [
        ("I was charged twice for one invoice", "billing", "to_finance"),
        ("The export page crashes with a 500", "bug", "to_support"),
        ("How do I add a user?", "question", "to_support"),
    ],
)
def test_a_ticket_is_sorted_by_the_local_model_and_routed(
    stack: LocalStack, api: Client, text: str, category: str, routed: str
) -> None:
    run_id = api.start_run("support-triage", {"ticket_id": "t-1", "text": text}).body["run_id"]
    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["category"] == category
    assert steps[routed]["status"] == "succeeded"
    classify = steps["classify"]["output"]
    price = price_of("amazon.nova-lite-v1:0")
    assert price is not None
    tokens = classify["usage"]
    assert classify["cost_usd"] == pytest.approx(
        price.cost(tokens["input_tokens"], tokens["output_tokens"])
    )
    assert run["usage"]["input_tokens"] == tokens["input_tokens"] > 0  # the run counts them
    assert run["usage"]["cost_usd"] == pytest.approx(classify["cost_usd"])
    asked = [c for c in stack.model.calls if c["requestMetadata"]["stepwell_run"] == run_id]
    assert len(asked) == 1 and asked[0]["requestMetadata"]["stepwell_step"] == "classify"
