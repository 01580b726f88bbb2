"""A condition step: decided as it starts, its output the truth of its ``condition``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import ConditionStep, Step
from stepwell.engine.decision import Work
from stepwell.engine.outcomes import succeed
from stepwell.engine.state import StepState

waits = False
inline = True


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Evaluate the condition (an ExpressionError fails the step where it starts)."""
    assert isinstance(spec, ConditionStep)
    value = expressions.truthy(expressions.render(spec.condition, data, work.now))
    work.note("condition_evaluated", step, f"condition is {str(value).lower()}", value=value)
    succeed(work, step, value)


def on_timer(work: Work, step: StepState) -> None:
    """A condition never waits: nothing is due."""
