"""The wire shapes: step envelopes, timer messages and step results, against AWS's event shapes."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError

from stepwell.engine.commands import DispatchAttempt, ScheduleTimer
from stepwell.engine.events import StepFailed, StepSucceeded
from stepwell.engine.state import Usage
from stepwell.runtime.envelope import (
    MAX_INLINE_PAYLOAD,
    StepEnvelope,
    StepResult,
    TimerMessage,
)
from stepwell.store.payloads import PayloadTooLarge

EVENTS = Path(__file__).resolve().parents[1] / "events"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def load(name: str) -> dict:
    return json.loads((EVENTS / name).read_text())


def dispatch(**overrides) -> DispatchAttempt:
    fields = {
        "run_id": "run-1",
        "key": "charge[2]",
        "step_id": "charge",
        "step_type": "task",
        "attempt": 3,
        "token": "tok-3",
        "input": {"amount": 42, "when": T0},
        "function": "ChargeCardFunction",
        "deadline": T0 + timedelta(minutes=5),
    }
    return DispatchAttempt(**{**fields, **overrides})


class TestStepEnvelope:
    def test_an_input_too_large_for_an_async_invoke_travels_as_a_pointer(self):
        kept: dict[str, str] = {}

        def offload(name: str, text: str) -> str:
            kept[f"s3://payloads/{name}"] = text
            return f"s3://payloads/{name}"

        big = {"notes": "x" * MAX_INLINE_PAYLOAD, "when": T0}
        envelope = StepEnvelope.from_dispatch(dispatch(input=big))
        payload = envelope.to_payload(offload)
        assert len(payload) < 2048
        sent = StepEnvelope.from_json(payload)
        assert sent.input is None and sent.input_ref == "s3://payloads/input-run-1-charge[2]-3"
        received = sent.with_input(kept.__getitem__)
        assert received.input == {"notes": big["notes"], "when": "2026-01-01T00:00:00Z"}
        assert received.input_ref is None

    def test_a_small_input_stays_inline_and_needs_no_bucket(self):
        envelope = StepEnvelope.from_dispatch(dispatch())
        payload = envelope.to_payload(None)
        assert json.loads(payload)["input"]["amount"] == 42
        assert StepEnvelope.from_json(payload).with_input(None).input["amount"] == 42

    def test_a_large_input_without_a_bucket_says_what_to_set(self):
        envelope = StepEnvelope.from_dispatch(dispatch(input="x" * MAX_INLINE_PAYLOAD))
        with pytest.raises(PayloadTooLarge, match="STEPWELL_BUCKET"):
            envelope.to_payload(None)
        pointer = envelope.model_copy(update={"input": None, "input_ref": "s3://b/k"})
        with pytest.raises(PayloadTooLarge, match="STEPWELL_BUCKET"):
            pointer.with_input(None)

    def test_built_from_a_dispatch_command(self):
        envelope = StepEnvelope.from_dispatch(dispatch(), workflow="orders")
        assert envelope.idempotency_key == "run-1:charge[2]:3"
        assert (envelope.step_id, envelope.key, envelope.attempt) == ("charge", "charge[2]", 3)
        assert envelope.workflow == "orders"
        assert envelope.function == "ChargeCardFunction"

    def test_json_form_is_marked_and_has_iso_times(self):
        wire = json.loads(StepEnvelope.from_dispatch(dispatch()).to_json())
        assert wire["stepwell"] == "step/1"
        assert wire["deadline"] == "2026-01-01T00:05:00Z"
        assert wire["input"] == {"amount": 42, "when": "2026-01-01T00:00:00Z"}
        assert StepEnvelope.recognise(wire)

    def test_round_trips_through_json(self):
        envelope = StepEnvelope.from_dispatch(dispatch(input=[1, "two", None], deadline=None))
        again = StepEnvelope.from_json(envelope.to_json())
        assert again == envelope
        assert again.deadline is None

    def test_the_shared_fixture_is_a_step_envelope(self):
        event = load("stepEnvelope.json")
        envelope = StepEnvelope.from_dict(event)
        assert StepEnvelope.recognise(event)
        assert envelope.deadline == T0 + timedelta(minutes=5)
        ctx = envelope.context()
        assert (ctx.run_id, ctx.step_id, ctx.attempt) == ("run-7f3a9c2e", "charge", 1)
        assert ctx.idempotency_key == "run-7f3a9c2e:charge:1"
        assert ctx.workflow == "order-fulfilment"

    def test_unknown_fields_are_ignored(self):
        event = {**load("stepEnvelope.json"), "added_in_a_later_version": True}
        assert StepEnvelope.from_dict(event).step_id == "charge"

    @pytest.mark.parametrize(
        "event",
        [
            {"Records": []},
            {"stepwell": "step/2", "run_id": "r"},
            "not a dict",
            None,
        ],
    )
    def test_other_events_are_not_recognised(self, event):
        assert not StepEnvelope.recognise(event)

    def test_another_version_is_refused(self):
        with pytest.raises(ValidationError):
            StepEnvelope.from_dict({**load("stepEnvelope.json"), "stepwell": "step/2"})

    def test_attempt_numbers_start_at_one(self):
        with pytest.raises(ValidationError):
            StepEnvelope.from_dict({**load("stepEnvelope.json"), "attempt": 0})


class TestTimerMessage:
    def test_built_from_a_schedule_command(self):
        message = TimerMessage.from_command(ScheduleTimer("run-1", "wait", T0))
        assert json.loads(message.to_json()) == {
            "stepwell": "timer/1",
            "run_id": "run-1",
            "key": "wait",
            "due_at": "2026-01-01T00:00:00Z",
        }

    def test_sqs_fixture_body_parses(self):
        record = load("sqsTimerEvent.json")["Records"][0]
        assert record["eventSource"] == "aws:sqs"
        message = TimerMessage.from_json(record["body"])
        assert message.key == "charge"
        assert message.due_at == T0 + timedelta(minutes=5)
        assert message.due_at.tzinfo is not None

    def test_scheduler_fixture_body_parses_with_a_run_timer(self):
        body = load("schedulerTimerEvent.json")["Records"][0]["body"]
        assert TimerMessage.recognise(json.loads(body))
        message = TimerMessage.from_json(body)
        assert message.key is None
        assert message.due_at == T0 + timedelta(days=1)

    def test_round_trip(self):
        message = TimerMessage(run_id="r", key=None, due_at=T0 + timedelta(seconds=1.5))
        assert TimerMessage.from_json(message.to_json()) == message


class TestStepResult:
    envelope = StepEnvelope.from_dict(load("stepEnvelope.json"))

    def test_success_becomes_step_succeeded_with_usage(self):
        result = StepResult.succeeded(self.envelope, {"ok": True}, Usage(0.25, 10, 20))
        again = StepResult.from_json(result.to_json())
        event = again.to_event()
        assert event == StepSucceeded("charge", 1, {"ok": True}, Usage(0.25, 10, 20))

    def test_failure_becomes_step_failed(self):
        result = StepResult.failed(self.envelope, "CardDeclined", "no", retryable=False)
        assert result.to_event() == StepFailed("charge", 1, "CardDeclined", "no", None, False)

    def test_from_exception_takes_the_type_name_and_the_retryable_flag(self):
        class BudgetExceeded(Exception):
            retryable = False

            def __init__(self, message: str) -> None:
                super().__init__(message)
                self.usage = Usage(1.0, 2, 3)

        result = StepResult.from_exception(self.envelope, BudgetExceeded("too dear"))
        assert (result.error_type, result.message, result.retryable) == (
            "BudgetExceeded",
            "too dear",
            False,
        )
        assert result.usage is not None
        assert result.usage.to_usage() == Usage(1.0, 2, 3)
        assert StepResult.from_exception(self.envelope, KeyError("x")).retryable

    def test_an_exception_s_request_id_and_frames_from_the_function_down(self):
        def charge() -> None:
            raise ValueError("declined")

        def stepwell_calls(function):  # the wrapper's frame, which Lambda's trace leaves out
            try:
                function()
            except ValueError as exc:
                return StepResult.from_exception(self.envelope, exc, request_id="req-1")

        result = stepwell_calls(charge)
        assert result.trace is not None
        assert result.trace["requestId"] == "req-1"
        [frame] = result.trace["stackTrace"]
        assert frame.startswith('  File "') and ", in charge\n" in frame
        assert 'raise ValueError("declined")' in frame

    def test_lambda_destination_success(self):
        result = StepResult.from_lambda_destination(load("lambdaDestinationSuccessEvent.json"))
        assert result.status == "succeeded"
        assert result.output == {"charge_id": "ch_3Pq", "status": "captured"}
        assert (result.run_id, result.key, result.attempt) == ("run-7f3a9c2e", "charge", 1)
        assert result.token == self.envelope.token

    def test_lambda_destination_failure(self):
        event = load("lambdaDestinationFailureEvent.json")
        result = StepResult.from_lambda_destination(event["detail"])
        payload = event["detail"]["responsePayload"]
        # The error's requestId and stackTrace go with it, for a machine's Catch to read.
        assert result.to_event() == StepFailed(
            "charge",
            1,
            "CardDeclined",
            "card ending 4242 was declined",
            trace={"requestId": payload["requestId"], "stackTrace": payload["stackTrace"]},
        )

    def test_lambda_destination_without_a_payload(self):
        record = load("lambdaDestinationFailureEvent.json")["detail"]
        record["requestContext"]["condition"] = "EventAgeExceeded"
        del record["responsePayload"]
        del record["responseContext"]["functionError"]
        result = StepResult.from_lambda_destination(record)
        assert (result.status, result.error_type) == ("failed", "LambdaEventAgeExceeded")
        assert not result.started  # Lambda dropped the event: the step's code never began

    def test_a_function_that_could_not_start_did_not_start_the_step(self):
        record = load("lambdaDestinationFailureEvent.json")["detail"]
        record["responsePayload"] = {
            "errorType": "Runtime.ImportModuleError",
            "errorMessage": "Unable to import module 'app': No module named 'stripe'",
        }
        failed = StepResult.from_lambda_destination(record).to_event()
        assert isinstance(failed, StepFailed) and not failed.started
        # Dying while the code ran (out of memory, a timeout) is a failed attempt.
        record["responsePayload"] = {
            "errorType": "Runtime.ExitError",
            "errorMessage": "Runtime exited with error: signal: killed",
        }
        assert StepResult.from_lambda_destination(record).to_event().started

    def test_a_handler_that_returns_a_step_result_is_taken_as_it_is(self):
        event = load("lambdaDestinationSuccessEvent.json")
        own = StepResult.failed(self.envelope, "Refused", "by the handler", retryable=False)
        event["detail"]["responsePayload"] = own.to_dict()
        assert StepResult.from_lambda_destination(event) == own
