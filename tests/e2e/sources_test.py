"""The AWS calls the stack answers, as the unchanged boto3 clients see them."""

from __future__ import annotations

import json

import boto3
import pytest
from botocore.exceptions import ClientError

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def test_invoke_request_response_returns_the_function_s_error(stack: LocalStack) -> None:
    client = boto3.client("lambda")
    response = client.invoke(
        FunctionName="stepwell-local-ValidateOrderFunction",
        InvocationType="RequestResponse",
        Payload=json.dumps({"not": "an envelope"}),
    )
    assert response["StatusCode"] == 200
    assert response["FunctionError"] == "Unhandled"
    error = json.loads(response["Payload"].read())
    assert error["errorType"] == "NotAStepEnvelope"
    assert error["requestId"]
    queued = client.invoke(
        FunctionName="arn:aws:lambda:us-east-1:123456789012:function:stepwell-local-ValidateOrderFunction",
        InvocationType="Event",
        Payload=b"{}",
    )
    assert queued["StatusCode"] == 202


def test_invoke_of_an_unknown_function_is_resource_not_found(stack: LocalStack) -> None:
    with pytest.raises(ClientError) as refused:
        boto3.client("lambda").invoke(FunctionName="nope", Payload=b"{}")
    assert refused.value.response["Error"]["Code"] == "ResourceNotFoundException"
    assert refused.value.response["ResponseMetadata"]["HTTPStatusCode"] == 404


def test_an_unknown_route_is_api_gateway_s_404(api: Client) -> None:
    reply = api.get("/no/such/route")
    assert reply.status == 404
    assert reply.body == {"message": "Not Found"}


def test_scheduler_schedules_are_answered_by_the_stack(stack: LocalStack) -> None:
    scheduler = boto3.client("scheduler")
    queue_arn = "arn:aws:sqs:us-east-1:123456789012:stepwell-local-StepwellTimerQueue"
    request = {
        "Name": "e2e-once",
        "GroupName": "stepwell-local-Stepwell-timers",
        "ScheduleExpression": "at(2099-01-01T00:00:00)",
        "FlexibleTimeWindow": {"Mode": "OFF"},
        "Target": {"Arn": queue_arn, "RoleArn": "arn:aws:iam::123456789012:role/x", "Input": "{}"},
    }
    created = scheduler.create_schedule(**request)
    assert created["ScheduleArn"].endswith(":schedule/stepwell-local-Stepwell-timers/e2e-once")
    with pytest.raises(scheduler.exceptions.ConflictException):
        scheduler.create_schedule(**request)
    found = scheduler.get_schedule(Name="e2e-once", GroupName="stepwell-local-Stepwell-timers")
    assert found["ScheduleExpression"] == "at(2099-01-01T00:00:00)"
    scheduler.delete_schedule(Name="e2e-once", GroupName="stepwell-local-Stepwell-timers")
    with pytest.raises(scheduler.exceptions.ResourceNotFoundException):
        scheduler.get_schedule(Name="e2e-once", GroupName="stepwell-local-Stepwell-timers")


def test_events_can_be_put_over_http_with_an_endpoint_url(stack: LocalStack, api: Client) -> None:
    """What ``aws events put-events --endpoint-url`` sends (AWS JSON protocol)."""
    entry = {
        "EventBusName": "stepwell-local-Stepwell-bus",
        "Source": "e2e",
        "DetailType": "over.http",
        "Detail": json.dumps({"n": 1}),
    }
    headers = {"x-amz-target": "AWSEvents.PutEvents", "content-type": "application/x-amz-json-1.1"}
    reply = api.request("POST", "/", json_body={"Entries": [entry]}, headers=headers)
    assert reply.status == 200
    assert reply.body["FailedEntryCount"] == 0
    event_id = reply.body["Entries"][0]["EventId"]
    assert [e["id"] for e in stack.events("over.http")] == [event_id]
    other = api.request(
        "POST", "/", json_body={}, headers={**headers, "x-amz-target": "AmazonSQS.SendMessage"}
    )
    assert other.status == 400 and other.body["__type"] == "UnknownOperationException"
