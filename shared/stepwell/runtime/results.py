"""An attempt's two ends on the step side: taking its envelope, and recording its result (the
run advances in the same invocation)."""

from __future__ import annotations

import dataclasses
import logging
from typing import TYPE_CHECKING, Any

from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.runtime.metrics import DISPATCH_LATENCY, MILLISECONDS
from stepwell.runtime.orchestrator import Orchestrator

if TYPE_CHECKING:
    from stepwell.runtime.wiring import Runtime

log = logging.getLogger(__name__)


def receive(runtime: Runtime, event: Any) -> StepEnvelope:
    """The envelope of ``event`` with its input loaded (when it travelled as a pointer); counts
    the dispatch latency, from the engine's decision to this moment."""
    fetch = runtime.payloads.get_text if runtime.payloads is not None else None
    envelope = StepEnvelope.from_dict(event).with_input(fetch)
    if envelope.dispatched_at is not None:
        waited = (runtime.clock.now() - envelope.dispatched_at).total_seconds() * 1000
        runtime.metrics.add(DISPATCH_LATENCY, MILLISECONDS, max(0.0, waited))
    return envelope


def record(orchestrator: Orchestrator, result: StepResult) -> None:
    """Deliver a result to its run. The engine counts it only if its attempt is current and its
    token is the one that attempt was given (fencing); anything else is noted and ignored.

    Never raises: the step's code has run, and an exception here would make Lambda run it again
    for the same attempt. A result that could not be recorded leaves the attempt running; its
    lease (or its fan-out's watch) finds it and sends a new, fenced attempt."""
    event = dataclasses.replace(result.to_event(), token=result.token)
    try:
        orchestrator.handle(result.run_id, event)
    except Exception:
        log.exception(
            "the result of %s attempt %s of run %s was not recorded; its lease will recover it",
            result.key,
            result.attempt,
            result.run_id,
        )
