"""Runs of a workflow with ``concurrency``: queued for a slot of their key, started when offered
one, and every end gives the slot back (or leaves the queue) in the run's own commit."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine.commands import OfferSlot
from stepwell.engine.events import CancelRequested, SlotOffered, TimerFired
from stepwell.engine.slots import PRIORITY_BOUND


def limited(**fields):
    return workflow(
        {"a": task(timeout="1m")},
        concurrency={"key": "${input.customer}", "limit": 2},
        priority="${input.priority}",
        **fields,
    )


def offers(decision):
    return [c.key for c in decision.commands if isinstance(c, OfferSlot)]


def test_a_run_is_queued_under_its_key_by_priority_and_asks_for_a_slot():
    run = EngineDriver(limited(), {"customer": "acme", "priority": 5})
    [created] = run.decisions[:1]
    assert run.run.status == "queued" and not run.dispatches()
    assert run.run.slot["key"] == "test-flow#acme" and run.run.slot["priority"] == 5
    assert created.slot.op == "queue" and created.slot.limit == 2
    assert created.slot.place.startswith(f"{PRIORITY_BOUND - 5:010d}#")
    assert offers(created) == ["test-flow#acme"]
    [why] = run.entries("run_queued")
    assert why.message == "queued for a slot of key acme (at most 2 at once, priority 5)"


def test_a_start_request_s_priority_wins_and_a_bad_one_is_0_with_a_note():
    assert (
        EngineDriver(limited(), {"customer": "a", "priority": 5}, priority=9).run.slot["priority"]
        == 9
    )
    run = EngineDriver(limited(), {"customer": "a", "priority": "high"})
    assert run.run.slot["priority"] == 0
    assert (
        "priority 'high' is not an integer: 0 used"
        in run.entries("flow_control_default")[0].message
    )


def test_offered_a_slot_it_takes_it_as_it_starts_and_its_end_releases_it():
    run = EngineDriver(limited(), {"customer": "acme"})
    taken = run.send(SlotOffered(0))
    assert taken.slot.op == "take" and run.run.status == "running"
    assert [d.key for d in run.dispatches()] == ["a"]
    assert run.run.started_at == T0
    again = run.send(SlotOffered(0))
    assert again.slot is None  # no longer queued: the offer passes on
    ended = run.succeed("a")
    assert run.run.status == "succeeded"
    assert ended.slot.op == "release" and offers(ended) == ["test-flow#acme"]


def test_every_end_of_a_started_run_releases_its_slot():
    failed = EngineDriver(limited(), {"customer": "acme"})
    failed.send(SlotOffered(0))
    assert failed.fail("a", "Boom").slot.op == "release"
    cancelled = EngineDriver(limited(), {"customer": "acme"})
    cancelled.send(SlotOffered(0))
    assert cancelled.send(CancelRequested("stop")).slot.op == "release"
    run_timeout = EngineDriver(limited(timeout="1h"), {"customer": "acme"})
    run_timeout.send(SlotOffered(0))
    ended = run_timeout.send(TimerFired(None, T0 + timedelta(hours=1)), at=T0 + timedelta(hours=1))
    assert run_timeout.run.status == "timed_out" and ended.slot.op == "release"


def test_a_queued_run_cancelled_leaves_the_queue_and_never_starts():
    run = EngineDriver(limited(), {"customer": "acme"})
    left = run.send(CancelRequested("not needed"))
    assert run.run.status == "cancelled" and left.slot.op == "leave"
    late = run.send(SlotOffered(0))
    assert late.slot is None and not run.dispatches()


def test_a_scheduled_run_joins_the_queue_at_its_time():
    later = T0 + timedelta(days=2)
    run = EngineDriver(limited(), {"customer": "acme"}, start_at=later)
    assert run.run.status == "scheduled" and run.decisions[0].slot is None
    queued = run.fire(None)
    assert run.run.status == "queued" and queued.slot.op == "queue"
    assert queued.slot.place.split("#")[1] == later.isoformat()


def test_a_scheduled_run_queued_at_its_time_waits_for_a_slot_not_for_a_timeout():
    """It joins the queue with no due time left: the sweep neither times it out nor polls it."""
    later = T0 + timedelta(days=2)
    run = EngineDriver(limited(), {"customer": "acme"}, start_at=later)
    run.fire(None)
    assert run.run.status == "queued" and run.run.next_due is None
    swept_at = later + timedelta(minutes=5)
    swept = run.send(TimerFired(None, swept_at), at=swept_at)
    assert run.run.status == "queued" and swept.slot is None
