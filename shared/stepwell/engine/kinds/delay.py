"""A delay: the step waits for a duration, or until a time, and passes its input on."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell.definition.models import DelayStep, Step
from stepwell.engine import waiting
from stepwell.engine.attempts import set_timer
from stepwell.engine.decision import Work
from stepwell.engine.outcomes import succeed
from stepwell.engine.state import StepState

waits = True
inline = False


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Wait until the delay is over (at once when that is now or past)."""
    assert isinstance(spec, DelayStep)
    waiting.open_wait(work, step)
    step.waiting_for = "delay"
    if spec.duration is not None:
        until = work.now + spec.duration
    else:
        found = waiting.time_of(work, step, spec.until, data)
        if found is None:
            return
        until = found
    work.note("step_delay_started", step, f"until {until.isoformat()}", until=until.isoformat())
    if until <= work.now:
        on_timer(work, step)
        return
    set_timer(work, step, until)


def on_timer(work: Work, step: StepState) -> None:
    """The delay is over."""
    succeed(work, step, step.input)
