"""Event waits decided without a bus: what a wait asks the edge to index, and which events
complete it."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine.commands import UnwatchEvent, WatchEvent
from stepwell.engine.events import CancelRequested, EventReceived, SkipRequested


def settled(**fields):
    event = {
        "source": "payments",
        "detail_type": "payment.settled",
        "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
        **fields.pop("event", {}),
    }
    return {
        "charge": task(),
        "settled": {"type": "event", "depends_on": "charge", "event": event, **fields},
        "ship": task("settled"),
    }


def event(order_id="o-1", id="e-1", source="payments", amount=10, **more):
    return {
        "id": id,
        "source": source,
        "detail_type": "payment.settled",
        "time": T0.isoformat(),
        "detail": {"order_id": order_id, "amount": amount, **more},
    }


def waiting(fields=None, input=None):
    run = EngineDriver(settled(**(fields or {})), input or {"order_id": "o-1"})
    run.succeed("charge", {"amount": 10})
    return run


def test_a_wait_opens_and_asks_to_be_indexed_by_its_correlation_value():
    run = waiting({"lookback": "10s", "timeout": "2d"})
    step = run.step("settled")
    assert (step.status, step.waiting_for) == ("waiting", "event")
    assert step.awaits == [
        {
            "source": "payments",
            "detail_type": "payment.settled",
            "event": "detail.order_id",
            "equals": "o-1",
        }
    ]
    [watch] = [c for c in run.commands if isinstance(c, WatchEvent)]
    assert (watch.source, watch.detail_type, watch.path, watch.value) == (
        "payments",
        "payment.settled",
        "detail.order_id",
        "o-1",
    )
    assert watch.since == run.now - timedelta(seconds=10)
    assert watch.expires_at == run.now + timedelta(days=2)
    assert step.due_at == run.now + timedelta(minutes=1)


def test_a_wait_looks_at_the_kept_events_once_more_a_minute_after_it_opened():
    run = waiting({"lookback": "10s", "timeout": "2d"})
    opened = run.now
    run.fire("settled")
    first, again = [c for c in run.commands if isinstance(c, WatchEvent)]
    assert again == first
    assert run.status("settled") == "waiting"
    assert run.step("settled").due_at == opened + timedelta(days=2)


def test_the_matching_event_is_the_output_and_the_run_goes_on():
    run = waiting()
    run.send(EventReceived("settled", 1, (event(),)))
    assert run.status("settled") == "succeeded"
    assert run.step("settled").output == event()
    assert run.status("ship") == "running"


def test_an_event_of_another_order_or_source_does_not_count():
    run = waiting()
    run.send(EventReceived("settled", 1, (event(order_id="o-2"), event(source="other"))))
    assert run.status("settled") == "waiting"
    assert len(run.entries("event_not_matching")) == 2


def test_the_first_event_that_passes_where_and_schema_completes_it():
    run = waiting(
        {
            "event": {
                "where": "${event.detail.amount >= steps.charge.output.amount}",
                "schema": {"type": "object", "required": ["order_id", "amount", "currency"]},
            }
        }
    )
    too_little = event(id="e-1", amount=5, currency="EUR")
    no_currency = event(id="e-2", amount=20)
    enough = event(id="e-3", amount=20, currency="EUR")
    run.send(EventReceived("settled", 1, (too_little, no_currency, enough)))
    assert run.step("settled").output == enough
    messages = [entry.message for entry in run.entries("event_not_matching")]
    assert "where is false" in messages[0]
    assert "schema" in messages[1]


def test_a_second_delivery_of_the_same_event_is_noted_and_changes_nothing():
    run = waiting()
    run.send(EventReceived("settled", 1, (event(),)))
    before = run.step("settled")
    run.send(EventReceived("settled", 1, (event(),)))
    assert run.step("settled").output == before.output
    assert run.step("settled").ended_at == before.ended_at
    assert len(run.entries("event_duplicate")) == 1
    assert len(run.entries("step_completed")) == 2  # charge, settled


def test_another_event_after_the_wait_ended_is_not_written_anywhere():
    run = waiting()
    run.send(EventReceived("settled", 1, (event(),)))
    decision = run.send(EventReceived("settled", 1, (event(id="e-9"),)))
    assert decision.empty


def test_a_timeout_fails_the_step_or_goes_on_without_an_event():
    failing = waiting({"timeout": "1h"})
    failing.fire("settled")
    failing.fire("settled")
    assert failing.step("settled").error["type"] == "EventTimedOut"
    assert failing.run.status == "failed"
    going_on = waiting({"timeout": "1h", "on_timeout": "continue"})
    going_on.fire("settled")
    going_on.fire("settled")
    assert going_on.status("settled") == "succeeded"
    assert going_on.step("settled").output is None
    assert going_on.status("ship") == "running"


def test_a_late_delivery_to_a_timed_out_wait_changes_nothing():
    run = waiting({"timeout": "1h"})
    run.fire("settled")
    run.fire("settled")
    assert run.send(EventReceived("settled", 1, (event(),))).empty
    assert run.status("settled") == "failed"


def test_a_correlation_with_no_value_fails_the_step_with_the_fix():
    run = waiting(input={"other": 1})
    error = run.step("settled").error
    assert error["type"] == "InvalidCorrelation"
    assert "event.correlate.equals" in error["message"]


def test_non_text_values_correlate_as_json():
    run = waiting(input={"order_id": 42})
    assert run.step("settled").awaits[0]["equals"] == "42"
    run.send(EventReceived("settled", 1, (event(order_id=42),)))
    assert run.status("settled") == "succeeded"


# -- the first of several ---------------------------------------------------------------------


def either():
    return {
        "charge": task(),
        "settled": {
            "type": "event",
            "depends_on": "charge",
            "events": [
                {
                    "source": "payments",
                    "detail_type": "payment.settled",
                    "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
                },
                {
                    "source": "orders",
                    "detail_type": "order.cancelled",
                    "correlate": {"event": "detail.id", "equals": "${input.order_id}"},
                },
            ],
        },
    }


def test_the_first_of_several_says_which_matched_and_the_others_stop_waiting():
    run = EngineDriver(either(), {"order_id": "o-1"})
    run.succeed("charge")
    watched = [c for c in run.commands if isinstance(c, WatchEvent)]
    assert [(w.source, w.path, w.value) for w in watched] == [
        ("payments", "detail.order_id", "o-1"),
        ("orders", "detail.id", "o-1"),
    ]
    cancelled = {
        "id": "e-7",
        "source": "orders",
        "detail_type": "order.cancelled",
        "time": T0.isoformat(),
        "detail": {"id": "o-1"},
    }
    run.send(EventReceived("settled", 1, (event(), cancelled)[1:]))
    assert run.step("settled").output == {**cancelled, "matched": 1}
    [unwatched] = [c for c in run.commands if isinstance(c, UnwatchEvent)]
    assert (unwatched.source, unwatched.path, unwatched.value) == (
        "payments",
        "detail.order_id",
        "o-1",
    )


def test_a_timed_out_wait_stops_waiting_for_every_kind():
    run = EngineDriver(either(), {"order_id": "o-1"})
    run.succeed("charge")
    run.fire("settled")
    run.fire("settled")
    assert run.step("settled").error["type"] == "EventTimedOut"
    assert len([c for c in run.commands if isinstance(c, UnwatchEvent)]) == 2


def ends_of_a_wait():
    """Every way a waiting event step can end besides its event and its timeout."""

    def cancelled(run):
        run.send(CancelRequested("the order was withdrawn"))

    def skipped(run):
        run.send(SkipRequested("settled"))

    def skipped_with_an_output(run):
        run.send(SkipRequested("settled", output={"paid": True}))

    def failed_beside_it(run):
        run.fail("audit", "Boom")

    def timed_out_run(run):
        run.fire(None)

    return [cancelled, skipped, skipped_with_an_output, failed_beside_it, timed_out_run]


@pytest.mark.parametrize("end", ends_of_a_wait(), ids=lambda end: end.__name__)
def test_every_end_of_a_wait_takes_it_out_of_the_index_in_the_same_decision(end):
    steps = {**settled(), "audit": task()}
    run = EngineDriver(workflow(steps, timeout="1h"), {"order_id": "o-1"})
    run.succeed("charge")
    assert run.status("settled") == "waiting"
    before = len(run.commands)
    end(run)
    assert run.status("settled") in ("cancelled", "skipped", "succeeded")
    unwatched = [c for c in run.commands[before:] if isinstance(c, UnwatchEvent)]
    assert [(u.run_id, u.key, u.source, u.path, u.value) for u in unwatched] == [
        ("run-1", "settled", "payments", "detail.order_id", "o-1")
    ]
