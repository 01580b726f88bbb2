"""Recording an attempt's result: the run advances in the same invocation."""

from __future__ import annotations

import dataclasses

from stepwell.runtime.envelope import StepResult
from stepwell.runtime.orchestrator import Orchestrator


def record(orchestrator: Orchestrator, result: StepResult) -> None:
    """Deliver a result to its run. The engine counts it only if its attempt is current and its
    token is the one that attempt was given (fencing); anything else is noted and ignored."""
    event = dataclasses.replace(result.to_event(), token=result.token)
    orchestrator.handle(result.run_id, event)
