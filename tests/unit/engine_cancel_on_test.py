"""A workflow's cancel_on decided without a bus: what a run asks the edge to index as it
begins, which events cancel it, and what its end takes out of the index."""

from __future__ import annotations

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine.commands import UnwatchEvent, WatchEvent
from stepwell.engine.events import CANCEL_ON_KEY, CancelOnEvent, CancelRequested, TimerFired

CANCELLED = {
    "source": "orders",
    "detail_type": "order.cancelled",
    "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
    "where": "${event.detail.reason != context.keep}",
}


def order_run(**more):
    steps = {
        "charge": task(),
        "settled": {
            "type": "event",
            "depends_on": "charge",
            "event": {
                "source": "payments",
                "detail_type": "payment.settled",
                "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
            },
        },
    }
    flow = workflow(steps, cancel_on=[CANCELLED], context={"keep": "test"}, **more)
    return EngineDriver(flow, {"order_id": "o-1"})


def cancelled(order_id="o-1", id="c-1", reason="customer"):
    return {
        "id": id,
        "source": "orders",
        "detail_type": "order.cancelled",
        "time": T0.isoformat(),
        "detail": {"order_id": order_id, "reason": reason},
    }


def cancel_watches(run, type_=WatchEvent):
    return [
        (c.source, c.detail_type, c.path, c.value)
        for c in run.commands
        if isinstance(c, type_) and c.key == CANCEL_ON_KEY
    ]


def test_a_run_indexes_its_cancel_on_as_it_begins():
    run = order_run()
    assert cancel_watches(run) == [("orders", "order.cancelled", "detail.order_id", "o-1")]


def test_a_matching_event_cancels_the_run_and_its_open_steps_as_a_cancel_does():
    run = order_run()
    run.succeed("charge")
    assert run.status("settled") == "waiting"
    run.send(CancelOnEvent((cancelled(),)))
    assert run.run.status == "cancelled"
    assert run.status("settled") == "cancelled"
    assert (
        "cancel_on: event c-1 (orders order.cancelled)"
        in run.entries("cancel_requested")[0].message
    )
    # The run's end takes both its cancel_on and its step's wait out of the index.
    assert cancel_watches(run, UnwatchEvent) == [
        ("orders", "order.cancelled", "detail.order_id", "o-1")
    ]
    assert [c.key for c in run.commands if isinstance(c, UnwatchEvent)] == [
        "settled",
        CANCEL_ON_KEY,
    ]


def test_an_event_of_another_order_or_that_fails_where_cancels_nothing():
    run = order_run()
    run.send(CancelOnEvent((cancelled(order_id="o-2"), cancelled(id="c-2", reason="test"))))
    assert run.run.status == "running"
    messages = [entry.message for entry in run.entries("event_not_matching")]
    assert "detail.order_id is o-2, not o-1" in messages[0]
    assert "where is false" in messages[1]


def test_an_ended_run_is_left_alone():
    run = order_run()
    run.send(CancelRequested("by hand"))
    assert run.run.status == "cancelled"
    assert cancel_watches(run, UnwatchEvent) == [
        ("orders", "order.cancelled", "detail.order_id", "o-1")
    ]
    assert run.send(CancelOnEvent((cancelled(),))).empty


def test_a_run_that_ends_any_other_way_leaves_the_index_too():
    run = order_run()
    run.succeed("charge")
    run.fire("settled")  # its recheck
    run.fire("settled")  # its timeout: the step fails, and the run
    assert run.run.status == "failed"
    assert len(cancel_watches(run, UnwatchEvent)) == 1


def test_the_first_watch_looks_at_the_kept_events_again():
    run = order_run()
    run.succeed("charge")
    watch_at = run.run.watch_at
    run.send(TimerFired(None, watch_at), at=watch_at)
    assert len(cancel_watches(run)) == 2


def test_a_run_that_ends_as_it_begins_leaves_no_watch_behind():
    steps = {"check": {"type": "condition", "condition": "${$error('no such order')}"}}
    run = EngineDriver(workflow(steps, cancel_on=[CANCELLED]), {"order_id": "o-1"})
    assert run.run.status == "failed"
    assert cancel_watches(run) == cancel_watches(run, UnwatchEvent) != []
