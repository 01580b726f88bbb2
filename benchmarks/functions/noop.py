"""The benchmarks' step function: no work of its own, so what is measured is orchestration."""

from __future__ import annotations

from typing import Any

from stepwell.runtime.step_context import StepContext
from stepwell.steps import step_handler


@step_handler
def handler(value: Any, ctx: StepContext) -> dict[str, Any]:
    """Count one more: ``{"n": k}`` in, ``{"n": k + 1}`` out (so a chain can be checked)."""
    n = value.get("n", 0) if isinstance(value, dict) else 0
    return {"n": n + 1}
