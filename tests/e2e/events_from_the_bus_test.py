"""Event waits through the local stack: an event put on the engine's bus with boto3 reaches
the scheduler function through the engine's rule and completes the run waiting for it; one
put before the wait opened is kept for it (its lookback)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator

import boto3
import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import finished, steps_of, timeline_types

from stepwell.cli import main as cli
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.local.template import STACK

BUS = f"{STACK}-Stepwell-bus"


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    # Held: the clock never jumps over an open event wait (someone else sends the event).
    with local_stack(workflows_folder(tmp_path_factory.mktemp("wf")), hold_waits=True) as started:
        yield started


def settle(order_id: str, amount: float = 10.0) -> None:
    answer = boto3.client("events").put_events(
        Entries=[
            {
                "EventBusName": BUS,
                "Source": "payments",
                "DetailType": "payment.settled",
                "Detail": json.dumps({"order_id": order_id, "amount": amount}),
            }
        ]
    )
    assert answer["FailedEntryCount"] == 0


def waiting(api: Client, run_id: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if steps_of(api.run(run_id)).get("settled", {}).get("status") == "waiting":
            return
        time.sleep(0.05)
    raise AssertionError(f"run {run_id} did not wait within {timeout}s")


def test_an_event_on_the_bus_completes_the_wait_of_its_order(stack: LocalStack) -> None:
    api = Client(stack.url)
    mine = api.start_run("await-payment", {"order_id": "o-1"}).body["run_id"]
    other = api.start_run("await-payment", {"order_id": "o-2"}).body["run_id"]
    waiting(api, mine)
    waiting(api, other)
    settle("o-1", 12.5)
    detail = finished(stack, api, mine)
    assert detail["run"]["status"] == "succeeded"
    output = steps_of(detail)["settled"]["output"]
    assert output["detail"] == {"order_id": "o-1", "amount": 12.5}
    assert (output["source"], output["detail_type"]) == ("payments", "payment.settled")
    assert steps_of(api.run(other))["settled"]["status"] == "waiting"
    api.post(f"/runs/{other}/cancel")


def test_an_event_sent_before_the_wait_opened_is_kept_for_it(stack: LocalStack) -> None:
    api = Client(stack.url)
    settle("o-early")
    assert stack.wait_idle(30)
    run_id = api.start_run("await-payment", {"order_id": "o-early"}).body["run_id"]
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert steps_of(detail)["settled"]["output"]["detail"]["order_id"] == "o-early"


def test_stepwell_send_event_completes_the_wait_through_post_events(
    stack: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Client(stack.url)
    run_id = api.start_run("await-payment", {"order_id": "o-cli"}).body["run_id"]
    waiting(api, run_id)
    detail = json.dumps({"order_id": "o-cli", "amount": 3})
    args = ["send-event", "payments", "payment.settled", "--detail", detail, "--api", stack.url]
    assert cli.main(args) == 0
    assert "sent payments payment.settled" in capsys.readouterr().out
    finished_run = finished(stack, api, run_id)
    assert steps_of(finished_run)["settled"]["output"]["detail"]["amount"] == 3


def test_post_events_refuses_a_reserved_source_and_a_detail_that_is_not_an_object(
    stack: LocalStack,
) -> None:
    api = Client(stack.url)
    reserved = {"source": "stepwell", "detail_type": "run.completed", "detail": {}}
    answer = api.request("POST", "/events", json_body=reserved)
    assert answer.status == 422 and "reserved" in json.dumps(answer.body)
    listed = {"source": "payments", "detail_type": "payment.settled", "detail": [1]}
    assert api.request("POST", "/events", json_body=listed).status == 422


def test_an_event_sent_again_with_its_id_is_the_same_event(stack: LocalStack) -> None:
    """POST /events twice with one id (a client retrying): the waits it completed note the
    second as a duplicate, and a wait that looks back finds one event, the first."""
    api = Client(stack.url)
    first = api.start_run("await-payment", {"order_id": "o-again"}).body["run_id"]
    waiting(api, first)
    body = {
        "id": "pay-77",
        "source": "payments",
        "detail_type": "payment.settled",
        "detail": {"order_id": "o-again", "amount": 7},
    }
    sent = api.request("POST", "/events", json_body=body)
    assert sent.status == 202 and sent.body["id"] == "pay-77"
    detail = finished(stack, api, first)
    output = steps_of(detail)["settled"]["output"]
    assert output["id"] == "pay-77"
    assert api.request("POST", "/events", json_body=body).status == 202
    assert stack.wait_idle(30)
    later = api.start_run("await-payment", {"order_id": "o-again"}).body["run_id"]
    assert steps_of(finished(stack, api, later))["settled"]["output"] == output
    assert timeline_types(api, first).count("event_duplicate") == 1


def test_an_order_cancelled_on_the_bus_cancels_its_run(stack: LocalStack) -> None:
    api = Client(stack.url)
    run_id = api.start_run("await-payment", {"order_id": "o-gone"}).body["run_id"]
    waiting(api, run_id)
    body = {"source": "orders", "detail_type": "order.cancelled", "detail": {"order_id": "o-gone"}}
    assert api.request("POST", "/events", json_body=body).status == 202
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "cancelled"
    assert steps_of(detail)["settled"]["status"] == "cancelled"
    assert "order.cancelled" in detail["run"]["error"]["message"]


def test_an_order_cancelled_on_the_bus_cancels_its_code_first_run(stack: LocalStack) -> None:
    api = Client(stack.url)
    gone = api.start_run("await-payment-code", {"order_id": "o-code-gone"}).body["run_id"]
    kept = api.start_run("await-payment-code", {"order_id": "o-code-kept"}).body["run_id"]
    for run_id in (gone, kept):
        waiting(api, run_id)
    body = {
        "source": "orders",
        "detail_type": "order.cancelled",
        "detail": {"order_id": "o-code-gone"},
    }
    assert api.request("POST", "/events", json_body=body).status == 202
    detail = finished(stack, api, gone)
    assert detail["run"]["status"] == "cancelled"
    assert steps_of(detail)["settled"]["status"] == "cancelled"
    assert "order.cancelled" in detail["run"]["error"]["message"]
    settle("o-code-kept")  # the other order's run goes on
    assert finished(stack, api, kept)["run"]["status"] == "succeeded"
