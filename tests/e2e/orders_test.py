"""The order example through the local stack, by HTTP and events only."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

import boto3
from e2e_helpers import (
    ORDER,
    SMALL_ORDER,
    approval_requested,
    completed,
    finished,
    steps_of,
    timeline_types,
)

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def test_an_order_is_approved_through_its_signed_link(stack: LocalStack, api: Client) -> None:
    # Time stands still until the approval is decided, as it would while finance reads the mail.
    with stack.hold():
        started = api.start_run("order-fulfilment", ORDER)
        assert started.status == 201, started.text
        run_id = started.body["run_id"]
        assert started.headers["location"] == f"/runs/{run_id}"
        approval = approval_requested(stack, run_id)
        (link,) = approval["links"]
        assert link["approver"] == "finance@example.com"
        assert link["approve_url"].startswith(f"{stack.url}/approvals/")
        assert approval["message"] == "Order o-1001 totals 1255; please approve the charge."

        page = api.request("GET", link["approve_url"], headers={"accept": "text/html"})
        assert page.status == 200 and "text/html" in page.headers["content-type"]
        assert "o-1001" in page.text  # GET shows the approval and decides nothing
        assert steps_of(api.run(run_id))["approve"]["status"] == "waiting"

        decided = api.decide(link["approve_url"], "approve", "within budget")
        assert decided.status == 200, decided.text
        assert decided.body["decision"] == "approve"
        again = api.decide(link["approve_url"], "approve")
        assert again.status == 409  # a link decides once

    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["total"] == 1255.0
    assert len(run["output"]["reservations"]) == 3
    assert steps["reserve"]["items_total"] == 3 and steps["reserve"]["children_succeeded"] == 3
    assert steps["approve"]["decisions"][0]["approver"] == "finance@example.com"
    assert steps["charge"]["attempt"] == 2  # declined once, retried with backoff
    types = timeline_types(api, run_id)
    for expected in ("fanout_started", "step_approved", "step_retrying", "step_delay_started"):
        assert expected in types
    announced = stack.events("order.fulfilled")
    assert any(e["detail"]["order_id"] == "o-1001" for e in announced)


def test_a_rejected_order_fails_without_charging(stack: LocalStack, api: Client) -> None:
    with stack.hold():
        run_id = api.start_run("order-fulfilment", {**ORDER, "order_id": "o-1002"}).body["run_id"]
        (link,) = approval_requested(stack, run_id)["links"]
        assert api.decide(link["reject_url"], "reject", "over budget").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "failed"
    assert detail["run"]["error"]["type"] == "ApprovalRejected"
    assert "charge" not in steps_of(detail) or steps_of(detail)["charge"]["status"] != "succeeded"


def test_an_order_placed_event_starts_a_run(stack: LocalStack, api: Client) -> None:
    before = {event["id"] for event in stack.events()}
    events = boto3.client("events")
    response = events.put_events(
        Entries=[
            {
                "EventBusName": "stepwell-local-Stepwell-bus",
                "Source": "shop",
                "DetailType": "order.placed",
                "Detail": json.dumps(SMALL_ORDER),
            }
        ]
    )
    assert response["FailedEntryCount"] == 0
    started = stack.wait_for_event(
        lambda e: (
            e["detail-type"] == "run.started"
            and e["detail"]["workflow"] == "order-fulfilment"
            and e["id"] not in before
        )
    )
    assert started is not None
    run_id = started["detail"]["run_id"]
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert detail["run"]["input"] == SMALL_ORDER  # the trigger's input: ${detail}
    assert detail["run"]["labels"] == {"trigger": "event"}
    assert steps_of(detail)["approve"]["status"] == "skipped"  # 50 is below the threshold


def test_a_two_day_approval_timeout_and_hour_long_delays_take_no_time(
    stack: LocalStack, api: Client
) -> None:
    # The waits are jumped over, not waited for: the clock skips them (how fast that is on
    # this machine is for `make bench`, W3, not for a test).
    for attempt in range(2):
        skipped = stack.clock.jumped
        order = {**SMALL_ORDER, "order_id": f"o-300{attempt}"}
        run_id = api.start_run("patient-order", order).body["run_id"]
        completed(stack, run_id)
        run = api.run(run_id)["run"]
        assert run["status"] == "succeeded", run
        assert run["output"]["approved_by_timeout"] is True
        span = datetime.fromisoformat(run["ended_at"]) - datetime.fromisoformat(run["started_at"])
        assert span >= timedelta(days=2, hours=2)  # two days and two hours of run time
        assert stack.clock.jumped - skipped >= timedelta(days=2)


def test_an_input_over_the_async_invoke_limit_reaches_its_step_through_the_bucket(
    stack: LocalStack, api: Client
) -> None:
    # 5 x 220 KB of notes: the validate step's envelope is over Lambda's 1 MB Event limit, so
    # its input travels as a pointer to the payload bucket and the step function gets it whole.
    order = {**SMALL_ORDER, "order_id": "o-big", "notes": "n" * 220_000}
    run_id = api.start_run("annotated-order", order).body["run_id"]
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    assert steps_of(detail)["validate"]["output"]["order_id"] == "o-big"
    assert steps_of(detail)["validate"]["attempt"] == 1
    # The run's view leaves the 220 KB input out (its size and URL instead)...
    assert detail["run"]["input"] is None and detail["run"]["input_bytes"] > 220_000
    # ...and a client that asks for payloads gets it from there.
    whole = api.run(run_id, payloads=True)
    assert whole["run"]["input"]["notes"] == "n" * 220_000


def test_runs_and_steps_are_counted_as_cloudwatch_metrics(stack: LocalStack, api: Client) -> None:
    before = dict(stack.metrics.counts)
    run_id = api.start_run("order-fulfilment", {**SMALL_ORDER, "order_id": "o-metrics"}).body[
        "run_id"
    ]
    assert finished(stack, api, run_id)["run"]["status"] == "succeeded"
    counts = stack.metrics.counts

    def grew(name: str) -> int:
        return counts[name] - before.get(name, 0)

    # Other tests of this module may run at the same time on the stack: at least these.
    assert grew("RunsStarted") >= 1 and grew("RunsCompleted") >= 1
    assert grew("StepsDispatched") >= 4  # validate, 1 reservation, charge twice
    assert grew("StepsRetried") >= 1  # the first charge is declined
    assert grew("StepsSucceeded") >= 5
    assert grew("DispatchLatency") >= 4 and grew("StepDuration") >= 4
    assert all(value >= 0 for value in stack.metrics.values["DispatchLatency"])
