"""The AWS adapters against moto (SQS, Scheduler, EventBridge, Secrets Manager) and, for Lambda,
which moto cannot run without Docker, botocore's Stubber."""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.stub import Stubber
from moto.core import DEFAULT_ACCOUNT_ID
from moto.sqs.models import sqs_backends

from stepwell.engine.commands import DispatchAttempt, EmitEvent, ScheduleTimer
from stepwell.runtime.aws import (
    AwsTimers,
    EventBridgeBus,
    EventPublishError,
    FunctionResolver,
    LambdaDispatchError,
    LambdaInvoker,
    SecretsReader,
    signing_keys,
)
from stepwell.runtime.aws.secrets import SecretNotString
from stepwell.runtime.aws.timers import at_expression, schedule_name
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.envelope import StepEnvelope, TimerMessage
from stepwell.runtime.events_in import from_bus
from stepwell.runtime.step_context import StepContext

REGION = "us-east-1"
T0 = datetime(2026, 1, 1, 12, tzinfo=UTC)
ROLE = f"arn:aws:iam::{DEFAULT_ACCOUNT_ID}:role/stepwell-scheduler"


@pytest.fixture
def timers(aws):
    sqs = boto3.client("sqs", region_name=REGION)
    scheduler = boto3.client("scheduler", region_name=REGION)
    url = sqs.create_queue(QueueName="stepwell-timers")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    adapter = AwsTimers(
        sqs,
        scheduler,
        queue_url=url,
        scheduler_target_arn=arn,
        scheduler_role_arn=ROLE,
        clock=FakeClock(T0),
    )
    return adapter, sqs, scheduler, url, arn


def queued(url: str) -> list:
    """The messages in the moto queue, delayed ones included (moto's own records)."""
    queue = sqs_backends[DEFAULT_ACCOUNT_ID][REGION].queues[url.rsplit("/", 1)[-1]]
    return list(queue._messages)


class TestTimers:
    def test_a_due_timer_lands_on_the_queue_at_once(self, timers):
        adapter, sqs, _, url, _ = timers
        adapter.schedule(ScheduleTimer("run-1", "charge", T0 - timedelta(seconds=5)))
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10)["Messages"]
        assert len(messages) == 1
        body = json.loads(messages[0]["Body"])
        assert body == {
            "stepwell": "timer/1",
            "run_id": "run-1",
            "key": "charge",
            "due_at": "2026-01-01T11:59:55Z",
        }
        assert TimerMessage.from_json(messages[0]["Body"]).due_at == T0 - timedelta(seconds=5)

    @pytest.mark.parametrize(
        ("due_in", "delay"),
        [(timedelta(minutes=5), 300), (timedelta(seconds=90.2), 91), (timedelta(seconds=900), 900)],
    )
    def test_short_timers_are_delayed_messages(self, timers, due_in, delay):
        adapter, sqs, scheduler, url, _ = timers
        sent: list[int] = []
        sqs.meta.events.register(
            "provide-client-params.sqs.SendMessage",
            lambda params, **_: sent.append(params["DelaySeconds"]),
        )
        adapter.schedule(ScheduleTimer("run-1", None, T0 + due_in))
        assert sent == [delay]
        attributes = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["All"])["Attributes"]
        assert attributes["ApproximateNumberOfMessagesDelayed"] == "1"
        (message,) = queued(url)
        assert json.loads(message.body)["key"] is None
        assert scheduler.list_schedules()["Schedules"] == []

    def test_long_timers_are_one_time_schedules(self, timers):
        adapter, _, scheduler, url, arn = timers
        command = ScheduleTimer("run-1", "approve", T0 + timedelta(hours=2, microseconds=1))
        adapter.schedule(command)
        assert queued(url) == []
        schedule = scheduler.get_schedule(Name=schedule_name(command), GroupName="default")
        assert schedule["ScheduleExpression"] == "at(2026-01-01T14:00:01)"
        assert schedule["ScheduleExpressionTimezone"] == "UTC"
        assert schedule["FlexibleTimeWindow"] == {"Mode": "OFF"}
        assert schedule["ActionAfterCompletion"] == "DELETE"
        assert schedule["Target"]["Arn"] == arn
        assert schedule["Target"]["RoleArn"] == ROLE
        message = TimerMessage.from_json(schedule["Target"]["Input"])
        assert (message.run_id, message.key, message.due_at) == ("run-1", "approve", command.due_at)

    def test_scheduling_the_same_timer_twice_makes_one_schedule(self, timers):
        adapter, _, scheduler, _, _ = timers
        command = ScheduleTimer("run-1", "approve", T0 + timedelta(days=3))
        adapter.schedule(command)
        adapter.schedule(command)
        adapter.schedule(ScheduleTimer("run-1", "approve", T0 + timedelta(days=4)))
        names = [s["Name"] for s in scheduler.list_schedules()["Schedules"]]
        assert len(names) == 2
        assert schedule_name(command) in names

    def test_other_scheduler_errors_are_raised(self):
        # Stubbed: moto answers a missing schedule group with a KeyError, not the service error.
        scheduler = boto3.client(
            "scheduler",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        adapter = AwsTimers(
            boto3.client("sqs", region_name=REGION),
            scheduler,
            queue_url="https://sqs.us-east-1.amazonaws.com/123456789012/stepwell-timers",
            scheduler_target_arn="arn:aws:sqs:us-east-1:123456789012:stepwell-timers",
            scheduler_role_arn=ROLE,
            clock=FakeClock(T0),
        )
        with Stubber(scheduler) as stub:
            stub.add_client_error("create_schedule", "ConflictException", "exists", 409)
            stub.add_client_error("create_schedule", "AccessDeniedException", "no", 403)
            adapter.schedule(ScheduleTimer("run-1", None, T0 + timedelta(days=1)))
            with pytest.raises(scheduler.exceptions.ClientError, match="AccessDenied"):
                adapter.schedule(ScheduleTimer("run-1", None, T0 + timedelta(days=1)))

    def test_schedule_names_are_short_valid_and_deterministic(self):
        command = ScheduleTimer("r" * 200, "k[12]" * 50, T0)
        name = schedule_name(command)
        assert len(name) <= 64
        assert name.replace("-", "").isalnum()
        assert name == schedule_name(ScheduleTimer("r" * 200, "k[12]" * 50, T0))
        assert name != schedule_name(ScheduleTimer("r" * 200, "k[12]" * 50, T0 + timedelta(1)))
        assert schedule_name(ScheduleTimer("a", "bc", T0)) != schedule_name(
            ScheduleTimer("ab", "c", T0)
        )

    def test_at_expressions_are_utc_and_never_early(self):
        from zoneinfo import ZoneInfo

        berlin = datetime(2026, 6, 1, 14, 0, 0, 250_000, tzinfo=ZoneInfo("Europe/Berlin"))
        assert at_expression(berlin) == "at(2026-06-01T12:00:01)"


@pytest.fixture
def bus(aws):
    events = boto3.client("events", region_name=REGION)
    sqs = boto3.client("sqs", region_name=REGION)
    events.create_event_bus(Name="stepwell")
    url = sqs.create_queue(QueueName="bus-tap")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"][
        "QueueArn"
    ]
    events.put_rule(
        Name="tap",
        EventBusName="stepwell",
        EventPattern=json.dumps({"source": ["stepwell", "shop.orders"]}),
    )
    events.put_targets(Rule="tap", EventBusName="stepwell", Targets=[{"Id": "q", "Arn": arn}])

    def delivered() -> list[dict]:
        messages = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
        return [json.loads(m["Body"]) for m in messages]

    return EventBridgeBus(events, "stepwell"), delivered


class TestEventBridgeBus:
    def test_emitted_events_land_on_the_bus(self, bus):
        adapter, delivered = bus
        adapter.emit(EmitEvent("run.completed", {"run_id": "run-1", "ended_at": T0}))
        (event,) = delivered()
        assert event["source"] == "stepwell"
        assert event["detail-type"] == "run.completed"
        assert event["detail"] == {"run_id": "run-1", "ended_at": "2026-01-01T12:00:00Z"}

    def test_a_sent_event_carries_its_senders_id_and_first_time(self, bus):
        adapter, delivered = bus
        sent = EmitEvent("pay", {"n": 1}, source="shop.orders", event_id="p-1", time=T0)
        adapter.emit(sent)
        (event,) = delivered()
        assert event["resources"] == ["stepwell:event/p-1"]
        assert from_bus(event)["id"] == "p-1"
        assert event["time"] == "2026-01-01T12:00:00Z"

    def test_notify_steps_publish_with_their_own_source(self, bus):
        adapter, delivered = bus
        ctx = StepContext("run-1", "announce", "announce", 1, "run-1:announce:1")
        params = {"detail_type": "order.shipped", "detail": {"id": 7}, "source": "shop.orders"}
        result = run_builtin("notify", params, ctx, BuiltinDeps(publisher=adapter))
        (event,) = delivered()
        assert (event["source"], event["detail-type"]) == ("shop.orders", "order.shipped")
        assert event["detail"] == {"id": 7}
        assert result.output["event_id"] == event["id"]

    def test_a_refused_entry_is_raised(self, bus):
        adapter, _ = bus
        with pytest.raises(EventPublishError, match="DetailType is a required argument"):
            adapter.publish("", {"x": 1})

    def test_a_failed_entry_count_is_raised(self):
        client = boto3.client(
            "events",
            region_name=REGION,
            aws_access_key_id="testing",
            aws_secret_access_key="testing",
        )
        with Stubber(client) as stub:
            stub.add_response(
                "put_events",
                {
                    "FailedEntryCount": 1,
                    "Entries": [{"ErrorCode": "ThrottlingException", "ErrorMessage": "slow down"}],
                },
            )
            with pytest.raises(EventPublishError, match="ThrottlingException slow down"):
                EventBridgeBus(client, "stepwell").emit(EmitEvent("run.started", {}))


class TestSecrets:
    def test_reads_and_caches_secrets(self, aws):
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(Name="prod/psp/api-key", SecretString="sk-live-1")
        reader = SecretsReader(client, max_age=300)
        assert reader("prod/psp/api-key") == "sk-live-1"
        client.put_secret_value(SecretId="prod/psp/api-key", SecretString="sk-live-2")
        assert reader.get("prod/psp/api-key") == "sk-live-1"  # cached
        assert SecretsReader(client, max_age=0)("prod/psp/api-key") == "sk-live-2"

    def test_binary_secrets_are_refused(self, aws):
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(Name="blob", SecretBinary=b"\x00\x01")
        with pytest.raises(SecretNotString, match="binary"):
            SecretsReader(client)("blob")

    def test_a_missing_secret_keeps_the_service_error(self, aws):
        client = boto3.client("secretsmanager", region_name=REGION)
        with pytest.raises(Exception, match="ResourceNotFoundException"):
            SecretsReader(client)("nope")

    def test_signing_keys_from_the_signing_secret(self, aws):
        client = boto3.client("secretsmanager", region_name=REGION)
        client.create_secret(Name="signing", SecretString=json.dumps({"keys": ["new", "old"]}))
        assert signing_keys(SecretsReader(client)("signing")) == [b"new", b"old"]

    @pytest.mark.parametrize(
        ("value", "keys"),
        [
            ('["k2", "k1"]', [b"k2", b"k1"]),
            ('{"keys": ["k2"]}', [b"k2"]),
            ("plain-key", [b"plain-key"]),
            ('"quoted"', [b"quoted"]),
            ("12345678901234567890", [b"12345678901234567890"]),
        ],
    )
    def test_signing_key_formats(self, value, keys):
        assert signing_keys(value) == keys

    @pytest.mark.parametrize("value", ["[]", '{"keys": []}', '{"other": 1}', '[""]', "[1]"])
    def test_signing_secrets_without_keys_are_refused(self, value):
        with pytest.raises(ValueError, match="at least one non-empty key"):
            signing_keys(value)


def dispatch(step_type: str = "task", function: str | None = "ChargeCardFunction"):
    return DispatchAttempt(
        run_id="run-1",
        key="charge",
        step_id="charge",
        step_type=step_type,
        attempt=2,
        token="tok",
        input={"amount": 42},
        function=function,
        deadline=T0,
    )


@pytest.fixture
def lambda_client():
    client = boto3.client(
        "lambda",
        region_name=REGION,
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


RESOLVER = FunctionResolver(runner="stepwell-runner")
CHARGE_ARN = "arn:aws:lambda:us-east-1:123456789012:function:charge-card"


class TestLambdaInvoker:
    def test_task_steps_invoke_their_bound_function_with_the_envelope(self, lambda_client):
        client, stub = lambda_client
        command = dataclasses.replace(dispatch(), target=CHARGE_ARN)
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": CHARGE_ARN,
                "InvocationType": "Event",
                "Payload": StepEnvelope.from_dispatch(command).to_json().encode(),
            },
        )
        LambdaInvoker(client, RESOLVER).dispatch(command)

    def test_the_payload_is_a_step_envelope(self, lambda_client):
        client, stub = lambda_client
        sent: list[bytes] = []
        client.meta.events.register(
            "provide-client-params.lambda.Invoke",
            lambda params, **_: sent.append(params["Payload"]),
        )
        stub.add_response("invoke", {"StatusCode": 202})
        LambdaInvoker(client, RESOLVER).dispatch(dispatch())
        envelope = json.loads(sent[0])
        assert envelope["stepwell"] == "step/1"
        assert envelope["idempotency_key"] == "run-1:charge:2"
        assert envelope["deadline"] == "2026-01-01T12:00:00Z"

    @pytest.mark.parametrize("kind", ["http", "notify", "agent"])
    def test_built_in_kinds_go_to_the_runner(self, lambda_client, kind):
        client, stub = lambda_client
        stub.add_response(
            "invoke",
            {"StatusCode": 202},
            {
                "FunctionName": "stepwell-runner",
                "InvocationType": "Event",
                "Payload": StepEnvelope.from_dispatch(dispatch(kind, None)).to_json().encode(),
            },
        )
        LambdaInvoker(client, RESOLVER).dispatch(dispatch(kind, None))

    def test_names_not_in_the_map_pass_through(self):
        arn = "arn:aws:lambda:eu-west-1:123456789012:function:other"
        assert RESOLVER(arn, "task") == arn
        assert RESOLVER("plain-name", "task") == "plain-name"

    def test_a_missing_function_names_the_fix(self, lambda_client):
        client, stub = lambda_client
        stub.add_client_error("invoke", "ResourceNotFoundException", "Function not found", 404)
        with pytest.raises(LambdaDispatchError, match="publish the workflow again"):
            LambdaInvoker(client, RESOLVER).dispatch(dispatch(function="TypoFunction"))

    def test_other_lambda_errors_are_raised(self, lambda_client):
        client, stub = lambda_client
        stub.add_client_error("invoke", "TooManyRequestsException", "Rate exceeded", 429)
        with pytest.raises(client.exceptions.TooManyRequestsException):
            LambdaInvoker(client, RESOLVER).dispatch(dispatch())

    def test_resolver_from_the_environment(self):
        resolver = FunctionResolver.from_env({"STEPWELL_RUNNER_FUNCTION": "runner-prod"})
        assert resolver(None, "agent") == "runner-prod"
        assert resolver("ChargeCardFunction", "task") == "ChargeCardFunction"

    def test_built_in_kinds_without_a_runner_are_refused(self):
        with pytest.raises(LookupError, match="STEPWELL_RUNNER_FUNCTION"):
            FunctionResolver.from_env({})(None, "http")

    def test_a_task_without_a_function_is_refused(self):
        with pytest.raises(LookupError, match="without a function"):
            RESOLVER(None, "task")
