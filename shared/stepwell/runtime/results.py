"""An attempt's two ends on the step side: taking its envelope, and recording its result (the
run advances in the same invocation)."""

from __future__ import annotations

import dataclasses
import logging
import time
from typing import TYPE_CHECKING, Any

from stepwell.engine.events import StepFailed, StepSucceeded
from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.runtime.metrics import COUNT, DISPATCH_LATENCY, INVOCATIONS_FAILED, MILLISECONDS
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
    """Deliver a result to its run (see :func:`deliver`)."""
    deliver(orchestrator, result.run_id, dataclasses.replace(result.to_event(), token=result.token))


FAILURE_DETAIL_TYPE = "Lambda Function Invocation Result - Failure"
"""What Lambda's on-failure destination puts on an event bus."""


def is_lost_invocation(event: Any) -> bool:
    """Whether ``event`` is Lambda's report that a step's invocation failed outside its code."""
    return (
        isinstance(event, dict)
        and event.get("source") == "lambda"
        and event.get("detail-type") == FAILURE_DETAIL_TYPE
        and StepEnvelope.recognise((event.get("detail") or {}).get("requestPayload"))
    )


def record_lost_invocation(orchestrator: Orchestrator, event: dict[str, Any]) -> StepResult:
    """A step invocation died outside the step's code (the function crashed, timed out or could
    not start): its attempt fails now with Lambda's error type (``Sandbox.Timedout``,
    ``Runtime.ExitError`` ...), and the step's retry policy decides, rather than the attempt
    waiting for its lease. Lambda does not run the invocation again (``MaximumRetryAttempts:
    0``), so a new attempt is the only second run. A stale report (the attempt had ended) is
    noted and ignored, like any stale result."""
    result = StepResult.from_lambda_destination(event)
    orchestrator.metrics.add(INVOCATIONS_FAILED, COUNT, 1)
    record(orchestrator, result)
    return result


def deliver(orchestrator: Orchestrator, run_id: str, event: StepSucceeded | StepFailed) -> bool:
    """Deliver an attempt's result to its run; True once it was. The engine counts it only if
    its attempt is current and its token is the one that attempt was given (fencing); anything
    else is noted and ignored, so delivering it again after an error is safe.

    Never raises: the step's code has run, and an exception here would make Lambda run it again
    for the same attempt. A fault is tried again (``RECORD_TRIES`` times, with backoff); a
    result that still could not be recorded leaves the attempt running, and its lease (or its
    fan-out's watch) finds it and sends a new, fenced attempt."""
    for tries in range(RECORD_TRIES):
        try:
            orchestrator.handle(run_id, event)
            return True
        except Exception:
            if tries < RECORD_TRIES - 1:
                time.sleep(RECORD_BACKOFF_S * 2**tries)
                continue
            log.exception(
                "the result of %s attempt %s of run %s was not recorded; its lease will recover it",
                event.key,
                event.attempt,
                run_id,
            )
    return False


RECORD_TRIES = 3
RECORD_BACKOFF_S = 0.05
"""A result's delivery is tried again after 0.05 s, then 0.1 s."""
