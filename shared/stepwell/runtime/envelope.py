"""The wire shapes between the orchestrator and the Lambdas it drives.

* :class:`StepEnvelope` is the event a step Lambda (or the runner, for built-in kinds) receives.
* :class:`TimerMessage` is the body of a timer: an SQS message (short timers) or the input of an
  EventBridge Scheduler one-time schedule that sends the same body to the same queue (long ones).
* :class:`StepResult` is what one attempt came to; a plain Lambda's response (or error) is
  turned into one, and it becomes the engine's ``StepSucceeded`` or ``StepFailed``.

Each shape carries a ``stepwell`` marker naming the shape and its version, so a handler can tell
a Stepwell message from anything else that reaches it, and a newer shape from an older one.
Unknown fields are ignored on the way in: an older function keeps working when a newer
orchestrator adds a field.
"""

from __future__ import annotations

import json
import traceback
from collections.abc import Callable
from datetime import datetime
from typing import Any, Literal, Self

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from stepwell.engine.commands import DispatchAttempt, ScheduleTimer
from stepwell.engine.events import StepFailed, StepSucceeded
from stepwell.engine.state import Usage
from stepwell.runtime.step_context import StepContext
from stepwell.store.payloads import PayloadTooLarge

STEP_MARK = "step/1"
TIMER_MARK = "timer/1"
RESULT_MARK = "result/1"
MAX_INLINE_PAYLOAD = 1_000_000
"""Largest envelope sent inline: Lambda's asynchronous invoke takes 1 MB (1,048,576 bytes),
less some margin."""


class _Wire(BaseModel):
    model_config = ConfigDict(frozen=True, extra="ignore")

    def to_json(self) -> str:
        """Compact JSON, the form that goes on the wire."""
        return self.model_dump_json()

    def to_dict(self) -> dict[str, Any]:
        """JSON-compatible dict (datetimes as ISO 8601 strings)."""
        return self.model_dump(mode="json")

    @classmethod
    def from_json(cls, data: str | bytes) -> Self:
        """Parse the JSON form; raises ``pydantic.ValidationError`` when it is not this shape."""
        return cls.model_validate_json(data)

    @classmethod
    def from_dict(cls, data: Any) -> Self:
        """Parse an already decoded event (what a Lambda handler is given)."""
        return cls.model_validate(data)


class StepEnvelope(_Wire):
    """What a step Lambda receives: one attempt of one step, and the input it runs with."""

    stepwell: Literal["step/1"] = "step/1"
    """Marks the event as a Stepwell step envelope (shape and version)."""
    run_id: str
    workflow: str = ""
    """The workflow's name, for logs and metrics; empty when the sender did not know it."""
    step_id: str
    """The step's id in the definition."""
    key: str
    """The step record's key: the step id, or ``id[i]`` for the i-th item of a for_each."""
    step_type: str
    attempt: int = Field(ge=1)
    token: str
    """The attempt's fencing token; the result is recorded only while it is current."""
    idempotency_key: str
    """``run:key:attempt``: the same for every delivery of this attempt."""
    input: Any = None
    """The step's input; for built-in kinds, the rendered parameters."""
    function: str | None = None
    """The function a task step names (logical id, name or ARN); None for built-in kinds."""
    deadline: datetime | None = None
    """When the attempt times out (UTC), or None when the step sets no timeout."""
    dispatched_at: datetime | None = None
    """When the orchestrator decided to run the attempt: the receiver measures dispatch latency."""
    input_ref: str | None = None
    """Where the input is kept when it is too large for an asynchronous invoke (1 MB): the
    receiver loads it (``with_input``) before the step function sees it; ``input`` is then None."""

    @classmethod
    def from_dispatch(cls, command: DispatchAttempt, workflow: str | None = None) -> StepEnvelope:
        """The envelope for one DispatchAttempt command.

        ``workflow`` defaults to the command's own ``workflow`` when it has one.
        """
        if workflow is None:
            workflow = command.workflow
        return cls(
            run_id=command.run_id,
            workflow=workflow,
            step_id=command.step_id,
            key=command.key,
            step_type=command.step_type,
            attempt=command.attempt,
            token=command.token,
            idempotency_key=command.idempotency_key,
            input=command.input,
            function=command.function,
            deadline=command.deadline,
            dispatched_at=command.dispatched_at,
        )

    def to_payload(self, offload: Callable[[str, str], str] | None = None) -> bytes:
        """The invoke payload. Over :data:`MAX_INLINE_PAYLOAD` the input goes to
        ``offload(name, text) -> uri`` (the payload bucket) and the envelope carries its URI."""
        payload = self.to_json().encode()
        if len(payload) <= MAX_INLINE_PAYLOAD or self.input_ref is not None:
            return payload
        if offload is None:
            raise PayloadTooLarge(
                f"step '{self.step_id}': the envelope is {len(payload)} bytes, over Lambda's "
                "asynchronous invoke limit, and no payload bucket is configured "
                "(set STEPWELL_BUCKET)"
            )
        text = json.dumps(self.to_dict()["input"], separators=(",", ":"))
        uri = offload(f"input-{self.idempotency_key.replace(':', '-')}", text)
        return self.model_copy(update={"input": None, "input_ref": uri}).to_json().encode()

    def with_input(self, fetch: Callable[[str], str] | None) -> StepEnvelope:
        """This envelope with its input loaded from ``input_ref`` (unchanged when inline)."""
        if self.input_ref is None:
            return self
        if fetch is None:
            raise PayloadTooLarge(
                f"step '{self.step_id}': the input is kept at {self.input_ref} and this function "
                "has no payload bucket configured (set STEPWELL_BUCKET)"
            )
        return self.model_copy(
            update={"input": json.loads(fetch(self.input_ref)), "input_ref": None}
        )

    @staticmethod
    def recognise(event: Any) -> bool:
        """True when ``event`` (a decoded Lambda event) looks like a step envelope."""
        return isinstance(event, dict) and event.get("stepwell") == STEP_MARK

    def context(self) -> StepContext:
        """The StepContext a step function is given alongside the input."""
        return StepContext(
            run_id=self.run_id,
            step_id=self.step_id,
            key=self.key,
            attempt=self.attempt,
            idempotency_key=self.idempotency_key,
            workflow=self.workflow,
        )


class TimerMessage(_Wire):
    """A timer's body: deliver TimerFired for ``key`` (None: the run's own timer) at ``due_at``.

    The same body is sent by SQS (``DelaySeconds``) and by EventBridge Scheduler (``Input``),
    so one handler serves both. A timer can arrive early (never by more than SQS's one-second
    precision), late or twice; the engine compares ``due_at`` with the step's current due time.
    """

    stepwell: Literal["timer/1"] = "timer/1"
    run_id: str
    key: str | None = None
    due_at: datetime

    @classmethod
    def from_command(cls, command: ScheduleTimer) -> TimerMessage:
        """The message for one ScheduleTimer command."""
        return cls(run_id=command.run_id, key=command.key, due_at=command.due_at)

    @staticmethod
    def recognise(body: Any) -> bool:
        """True when ``body`` (decoded JSON) looks like a timer message."""
        return isinstance(body, dict) and body.get("stepwell") == TIMER_MARK


class UsageModel(_Wire):
    """What an attempt cost: model tokens and dollars."""

    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0

    @classmethod
    def of(cls, usage: Usage | None) -> UsageModel | None:
        """The wire form of the engine's Usage (None stays None)."""
        if usage is None:
            return None
        return cls(
            cost_usd=usage.cost_usd,
            input_tokens=usage.input_tokens,
            output_tokens=usage.output_tokens,
        )

    def to_usage(self) -> Usage:
        """The engine's Usage."""
        return Usage(self.cost_usd, self.input_tokens, self.output_tokens)


NOT_STARTED = frozenset(
    {
        "Runtime.ImportModuleError",
        "Runtime.HandlerNotFound",
        "Runtime.UserCodeSyntaxError",
        "Runtime.MalformedHandlerName",
        "Runtime.InvalidEntrypoint",
        "Runtime.BadFunctionCode",
    }
)
"""Lambda's error types of a function that could not start (its initialization failed): the
step's code never began. (A crash, an out-of-memory or a timeout while it ran, and one Lambda
cannot place, are reported alike, so they count as failed attempts.)"""
DROPPED = frozenset({"EventAgeExceeded"})
"""Lambda's conditions of an event it dropped without running it."""


class StepResult(_Wire):
    """What one attempt came to. The orchestrator turns it into StepSucceeded or StepFailed."""

    stepwell: Literal["result/1"] = "result/1"
    run_id: str
    key: str
    attempt: int = Field(ge=1)
    token: str
    status: Literal["succeeded", "failed"]
    output: Any = None
    error_type: str | None = None
    """The exception's type name: what ``retry_on`` and ``non_retryable`` match."""
    message: str | None = None
    retryable: bool = True
    """False when the error says retrying cannot help (e.g. a refused budget)."""
    started: bool = True
    """False when the step's code never began (its function could not start, or Lambda dropped
    the event unrun): the attempt did nothing, and a new one follows outside its retry policy."""
    usage: UsageModel | None = None
    trace: dict[str, Any] | None = None
    """A failure's ``requestId`` (its Lambda invocation's) and ``stackTrace`` (the frames from
    the function down, as Lambda's Python runtime writes them), kept on the step's error."""

    @classmethod
    def succeeded(
        cls, envelope: StepEnvelope, output: Any, usage: Usage | None = None
    ) -> StepResult:
        """The result of an attempt that returned ``output``."""
        return cls(
            run_id=envelope.run_id,
            key=envelope.key,
            attempt=envelope.attempt,
            token=envelope.token,
            status="succeeded",
            output=output,
            usage=UsageModel.of(usage),
        )

    @classmethod
    def failed(
        cls,
        envelope: StepEnvelope,
        error_type: str,
        message: str,
        *,
        retryable: bool = True,
        started: bool = True,
        usage: Usage | None = None,
        trace: dict[str, Any] | None = None,
    ) -> StepResult:
        """The result of an attempt that raised ``error_type`` (``started`` False: whose code
        never began)."""
        return cls(
            run_id=envelope.run_id,
            key=envelope.key,
            attempt=envelope.attempt,
            token=envelope.token,
            status="failed",
            error_type=error_type,
            message=message,
            retryable=retryable,
            started=started,
            usage=UsageModel.of(usage),
            trace=trace,
        )

    @classmethod
    def from_exception(
        cls,
        envelope: StepEnvelope,
        exc: BaseException,
        usage: Usage | None = None,
        request_id: str | None = None,
    ) -> StepResult:
        """The result of an attempt that raised ``exc`` (in the invocation ``request_id``).

        The error type is the exception's class name. An exception may say it is not worth
        retrying with a class attribute ``retryable = False``, and may carry ``usage`` (money
        already spent, e.g. a model call whose answer was then refused).
        """
        spent = getattr(exc, "usage", None)
        # The frames from the function down (the first is Stepwell's call of it), the last
        # ones when deep, so an error item stays small.
        frames = traceback.extract_tb(exc.__traceback__)[1:][-MAX_FRAMES:]
        return cls.failed(
            envelope,
            type(exc).__name__,
            str(exc),
            retryable=bool(getattr(exc, "retryable", True)),
            usage=usage if usage is not None else spent if isinstance(spent, Usage) else None,
            trace={"requestId": request_id or "", "stackTrace": traceback.format_list(frames)},
        )

    @classmethod
    def from_lambda_destination(cls, record: dict[str, Any]) -> StepResult:
        """Turn a Lambda asynchronous-invocation record (destination) into a result.

        ``record`` is the record itself, or the EventBridge event that carries it in
        ``detail``. A plain step Lambda simply returns its output or raises; Lambda sends a
        record with ``requestPayload`` (our envelope) and ``responsePayload`` (the return value,
        or ``{"errorType", "errorMessage"}``) to the destination. A handler that already
        returns a StepResult is taken as it is.
        """
        if "requestPayload" not in record and isinstance(record.get("detail"), dict):
            record = record["detail"]
        envelope = StepEnvelope.from_dict(record.get("requestPayload"))
        response = record.get("responsePayload")
        failed = bool((record.get("responseContext") or {}).get("functionError")) or (
            (record.get("requestContext") or {}).get("condition", "Success") != "Success"
        )
        if isinstance(response, dict) and response.get("stepwell") == RESULT_MARK:
            try:
                return cls.from_dict(response)
            except ValidationError:
                pass  # a damaged result is reported as what it is, below
        if not failed:
            return cls.succeeded(envelope, response)
        error = response if isinstance(response, dict) else {}
        condition = (record.get("requestContext") or {}).get("condition", "")
        error_type = str(error.get("errorType") or f"Lambda{condition or 'Error'}")
        return cls.failed(
            envelope,
            error_type,
            str(error.get("errorMessage") or response or condition),
            started=error_type not in NOT_STARTED and condition not in DROPPED,
            trace=lambda_trace(error),
        )

    def to_event(self) -> StepSucceeded | StepFailed:
        """The engine event this result is delivered to the run as."""
        usage = self.usage.to_usage() if self.usage is not None else None
        if self.status == "succeeded":
            return StepSucceeded(self.key, self.attempt, self.output, usage)
        return StepFailed(
            self.key,
            self.attempt,
            self.error_type or "Error",
            self.message or "",
            usage,
            self.retryable,
            started=self.started,
            trace=self.trace,
        )


MAX_FRAMES = 20
"""The most frames of a stack trace kept on a step's error."""


def lambda_trace(error: dict[str, Any]) -> dict[str, Any] | None:
    """A Lambda error's ``requestId`` and ``stackTrace`` (None when it has neither)."""
    found: dict[str, Any] = {k: error[k] for k in ("requestId", "stackTrace") if k in error}
    if isinstance(found.get("stackTrace"), list):
        found["stackTrace"] = found["stackTrace"][-MAX_FRAMES:]
    return found or None
