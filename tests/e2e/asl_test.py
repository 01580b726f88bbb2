"""A Step Functions state machine (statemachines/order-machine.asl.json) run as it is through
the local stack: a Map over the lines, a Choice, a task token, a Wait, a Task with Retry and
Catch, and a Choice loop that tracks the parcel until it is delivered."""

from __future__ import annotations

import pytest
from e2e_helpers import ORDER, SMALL_ORDER, finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def review_token(stack: LocalStack, run_id: str) -> str:
    """The task token finance gets on the bus, and the callback URL of the same wait."""
    asked = stack.wait_for_event(
        lambda e: (
            e["detail-type"] == "order.review_requested" and e["detail"]["order_id"] == "o-asl"
        )
    )
    opened = stack.wait_for_event(
        lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id
    )
    assert asked is not None and opened is not None
    assert asked["detail"]["token"] == opened["detail"]["token"]  # $$.Task.Token is the link's
    url: str = opened["detail"]["url"]
    return url


def test_a_large_order_is_reviewed_by_task_token_held_and_charged_after_a_retry(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():
        run_id = api.start_run("order-machine", {**ORDER, "order_id": "o-asl"}).body["run_id"]
        url = review_token(stack, run_id)
        answer = api.post(url, {"status": "success", "output": {"approved": True}})
        assert answer.status in (200, 202), answer.text
    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["amount"] == 1255.0  # Done's Parameters
    # The tracking loop: every visit of a state is a record of its own.
    assert steps["Track parcel"]["status"] == steps["Track parcel~2"]["status"] == "succeeded"
    assert "Track parcel~3" not in steps  # delivered on the second check
    assert steps["Wait for carrier"]["status"] == "succeeded"
    assert run["output"]["tracking_checks"] == 2
    assert steps["Charge"]["attempt"] == 2  # its Retry: declined for now, then charged
    assert steps["Cool off"]["status"] == "succeeded"  # approved: on to the Wait
    assert steps["Ask finance"]["status"] == "succeeded"  # the event went on the bus
    reserved = [k for k in steps if k.startswith("Reserve.")]
    assert len(reserved) == 3


def test_a_small_order_skips_the_wait_and_a_broken_card_ends_in_the_fail_state(
    stack: LocalStack, api: Client
) -> None:
    small = finished(stack, api, api.start_run("order-machine", SMALL_ORDER).body["run_id"])
    assert small["run"]["status"] == "succeeded"
    assert "Cool off" not in steps_of(small)
    listed = {w["name"]: w for w in api.get("/workflows").body["workflows"]}
    assert "order-machine" in listed


def test_the_task_token_is_answered_by_send_task_success_as_the_aws_cli_sends_it(
    stack: LocalStack, api: Client
) -> None:
    import boto3

    with stack.hold():
        run_id = api.start_run("order-machine", {**ORDER, "order_id": "o-asl-sdk"}).body["run_id"]
        opened = stack.wait_for_event(
            lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id
        )
        assert opened is not None
        sfn = boto3.client("stepfunctions", endpoint_url=stack.url, region_name="us-east-1")
        sfn.send_task_success(taskToken=opened["detail"]["token"], output='{"approved": true}')
        with pytest.raises(sfn.exceptions.TaskDoesNotExist):
            sfn.send_task_success(taskToken=opened["detail"]["token"], output="{}")
    assert finished(stack, api, run_id)["run"]["status"] == "succeeded"
