"""``@step_handler``: turn a function into a Stepwell step Lambda.

    @step_handler
    def charge_card(order: dict, ctx: StepContext) -> dict:
        ...

The Lambda receives the step envelope; the function receives the step's input and a
:class:`StepContext` (run id, step id, attempt, idempotency key, logger) and returns JSON. The
result is recorded and the run advances in the same invocation, so a task step costs one Lambda
invocation on the happy path. A raised exception fails the attempt with its type name, which is
what ``retry_on`` matches.
"""

from __future__ import annotations

import dataclasses
import functools
import logging
import os
import sys
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

from stepwell import intake
from stepwell.runtime.step_context import LOGGER, StepContext, attempt_keys

if TYPE_CHECKING:
    from stepwell.runtime.envelope import StepEnvelope

T = TypeVar("T")
StepFunction = Callable[[Any, StepContext], Any]


class NotAStepEnvelope(TypeError):
    """The Lambda was invoked with something other than a Stepwell step envelope."""


def step_handler(function: StepFunction) -> Callable[[Any, Any], dict[str, Any]]:
    """Wrap ``function(input, ctx)`` as a Lambda handler ``(event, context)``."""
    _log_lines()

    @functools.wraps(function)
    def handler(event: Any, context: Any = None) -> dict[str, Any]:
        # The runtime (and the engine under it) loads at the first invocation: `import
        # stepwell`, in a step's or a workflow's module, loads neither.
        from stepwell.runtime.envelope import StepEnvelope, StepResult
        from stepwell.runtime.results import receive, record
        from stepwell.runtime.wiring import current

        if not StepEnvelope.recognise(event):
            raise NotAStepEnvelope(
                f"{function.__name__} is a Stepwell step: invoke it through a workflow (its event "
                "must be a step envelope); call the undecorated function with .function in tests"
            )
        runtime = current()
        envelope = receive(runtime, event)
        ctx = dataclasses.replace(envelope.context(), beat=lambda: beat(runtime, envelope))
        with attempt_keys(ctx):
            ctx.logger.info("step attempt")
            try:
                output = intake.check(function(envelope.input, ctx), f"step '{ctx.step_id}' output")
                result = StepResult.succeeded(envelope, output)
            except Exception as exc:  # the attempt's failure, recorded by type name
                request_id = getattr(context, "aws_request_id", None)
                result = StepResult.from_exception(envelope, exc, request_id=request_id)
        record(runtime.orchestrator, result)
        runtime.metrics.flush()
        return result.to_dict()

    handler.function = function  # type: ignore[attr-defined]
    return handler


def beat(runtime: Any, envelope: StepEnvelope) -> None:
    """One heartbeat of the attempt ``envelope`` runs."""
    from stepwell.engine.events import Heartbeat

    event = Heartbeat(envelope.key, envelope.attempt, envelope.token)
    runtime.orchestrator.handle(envelope.run_id, event)


def _log_lines() -> None:
    """Make ``ctx.logger`` write its lines, whatever the function's own logging: one JSON line
    each on stdout (Powertools' format, with the attempt's ``run_id``, ``step_id`` and
    ``attempt``, what the step's Logs Insights query finds), at ``POWERTOOLS_LOG_LEVEL`` (INFO
    unless set). Lambda's own root logger would drop INFO lines and write text."""
    logger = logging.getLogger(LOGGER)
    if logger.handlers:
        return
    from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

    formatter = LambdaPowertoolsFormatter()
    formatter.append_keys(service=os.environ.get("POWERTOOLS_SERVICE_NAME") or "stepwell")
    handler = logging.StreamHandler(sys.stdout)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    known = logging.getLevelName((os.environ.get("POWERTOOLS_LOG_LEVEL") or "INFO").upper())
    logger.setLevel(known if isinstance(known, int) else logging.INFO)
    logger.propagate = False
