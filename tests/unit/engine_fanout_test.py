"""for_each: bounded fan-out, gathering in item order, failures, and large lists."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from helpers import EngineDriver, counters_of, task, workflow
from stepwell.engine.attempts import DEFAULT_LEASE
from stepwell.engine.commands import CountItem, FollowUp
from stepwell.engine.decision import MAX_STEP_WRITES
from stepwell.engine.events import Continue, ItemReady, TimerFired


def fanout(items_expr="${input}", **fields):
    return {"each": task(for_each=items_expr, **fields), "after": task("each")}


def running_children(run):
    return sorted(k for k in run.running() if k.startswith("each["))


def test_children_are_bounded_by_max_parallel_and_gathered_in_item_order():
    items = list(range(7))
    run = EngineDriver(fanout(max_parallel=3, input={"n": "${item}", "i": "${index}"}), items)
    seen_max = 0
    # Always finish the most recently started child first: the reverse of item order.
    while run.status("each") == "running":
        children = running_children(run)
        seen_max = max(seen_max, len(children))
        assert len(children) <= 3
        newest = max(children, key=lambda k: int(k[5:-1]))
        run.succeed(newest, {"out": run.step(newest).input["n"] * 10})
    assert seen_max == 3
    assert run.status("each") == "succeeded"
    assert run.step("each").output == [{"out": n * 10} for n in items]
    assert [d.input for d in run.dispatches() if d.key.startswith("each[")][:3] == [
        {"n": 0, "i": 0},
        {"n": 1, "i": 1},
        {"n": 2, "i": 2},
    ]
    assert run.status("after") == "running"
    assert run.dispatches("after")[0].input == items  # the run input


def test_child_input_defaults_to_its_item():
    run = EngineDriver(fanout(), [{"sku": "A"}, {"sku": "B"}])
    assert [d.input for d in run.dispatches()] == [{"sku": "A"}, {"sku": "B"}]
    assert [d.step_id for d in run.dispatches()] == ["each", "each"]


def test_a_freed_slot_starts_the_next_item():
    run = EngineDriver(fanout(max_parallel=2), ["a", "b", "c", "d"])
    assert running_children(run) == ["each[0]", "each[1]"]
    run.succeed("each[1]")
    assert running_children(run) == ["each[0]", "each[2]"]
    run.fail("each[0]", "Boom")
    assert run.run.status == "failed"


def test_a_child_failure_fails_the_parent_and_cancels_running_siblings():
    run = EngineDriver(fanout(max_parallel=3), [1, 2, 3, 4])
    run.fail("each[1]", "Broken", message="item 1 is bad")
    assert run.status("each") == "failed"
    error = run.step("each").error
    assert error["type"] == "ForEachFailed"
    assert "item 1 failed (Broken: item 1 is bad)" in error["message"]
    assert run.run.status == "failed"
    assert run.status("each[0]") == "cancelled"
    assert run.status("each[2]") == "cancelled"
    assert run.status("each[3]") is None  # never started: it has no record
    assert run.status("after") is None
    assert len(run.dispatches()) == 3


def test_tolerated_failures_give_null_for_the_failed_items():
    run = EngineDriver(fanout(tolerated_failures=1), ["a", "b", "c"])
    run.succeed("each[2]", "C")
    run.fail("each[0]", "Boom")
    assert run.status("each") == "running"
    run.succeed("each[1]", "B")
    assert run.status("each") == "succeeded"
    assert run.step("each").output == [None, "B", "C"]
    assert run.step("each").error is None
    (failed,) = run.step("each").failed_items
    assert (failed["index"], failed["type"]) == (0, "Boom")


def test_one_failure_more_than_tolerated_fails_the_parent():
    run = EngineDriver(fanout(tolerated_failures=1), ["a", "b", "c"])
    run.fail("each[0]", "Boom")
    run.fail("each[2]", "Boom")
    assert run.status("each") == "failed"
    assert "2 failed, 1 tolerated" in run.step("each").error["message"]


def test_an_empty_list_succeeds_with_an_empty_list():
    run = EngineDriver(fanout(), [])
    assert run.status("each") == "succeeded"
    assert run.step("each").output == []
    assert run.status("after") == "running"
    assert [d.key for d in run.dispatches()] == ["after"]


@pytest.mark.parametrize("value", [{"a": 1}, "abc", 3, None])
def test_for_each_on_a_non_list_fails_with_ForEachNotAList(value):
    run = EngineDriver(fanout(), value)
    assert run.status("each") == "failed"
    assert run.step("each").error["type"] == "ForEachNotAList"
    assert run.run.status == "failed"
    assert counters_of(run.steps.values())[0] == 0


def test_when_false_skips_the_fanout_without_children():
    run = EngineDriver(fanout(when=False), [1, 2])
    assert run.status("each") == "skipped"
    assert not any(k.startswith("each[") for k in run.steps)


def test_children_retry_on_their_own():
    run = EngineDriver(
        fanout(retry={"max_attempts": 2, "interval": "1s", "jitter": "none"}), ["x", "y"]
    )
    run.fail("each[0]", "Flaky")
    assert run.status("each[0]") == "retrying"
    run.succeed("each[1]", "Y")
    assert run.status("each") == "running"
    run.fire("each[0]")
    assert run.step("each[0]").attempt == 2
    run.succeed("each[0]", "X")
    assert run.step("each").output == ["X", "Y"]


def test_a_wide_fan_out_starts_and_ends_each_item_in_a_write_of_its_own():
    n = MAX_STEP_WRITES * 2 + 5
    run = EngineDriver(fanout(max_parallel=1000), list(range(n)))
    # The fan-out's start writes the parent alone; every child is written when it starts, by
    # a decision that writes that child alone.
    first = next(d for d in run.decisions if "each" in d.steps)
    assert set(first.steps) == {"each"}
    starts = [c.event for c in first.commands if isinstance(c, FollowUp)]
    assert starts == [ItemReady(f"each[{i}]") for i in range(n)]
    later = run.decisions[run.decisions.index(first) + 1 :]
    assert all(d.single_step is not None for d in later)
    keys = [d.key for d in run.dispatches()]
    assert sorted(keys) == sorted(f"each[{i}]" for i in range(n))
    assert len(keys) == len(set(keys))
    for i in reversed(range(n)):
        decision = run.succeed(f"each[{i}]", i)
        # A child's end writes the child alone and asks for it to be counted on the parent.
        assert decision.single_step == f"each[{i}]"
        assert [type(c) for c in decision.commands] == [CountItem]
    assert run.step("each").output == list(range(n))
    assert run.status("after") == "running"


def test_a_continue_for_a_finished_fanout_changes_nothing():
    run = EngineDriver(fanout(), [1])
    run.succeed("each[0]")
    before = run.step("each")
    decision = run.send(Continue("each"))
    assert not decision.commands
    assert not decision.timeline
    assert run.step("each") == before


# -- the fan-out's watch: what a dead invocation left undone ---------------------------------


def watched(items=4, max_parallel=2):
    """A fan-out whose children ended without being counted, as when their invocations died
    between the child's write and the count: the driver drops the counts."""
    run = EngineDriver(fanout(max_parallel=max_parallel), list(range(items)))
    return run


def test_a_count_lost_with_its_invocation_is_recounted_once_counts_are_quiet():
    run = watched()
    real_follow = run._follow
    run._follow = lambda decision: None  # the invocation dies after the child's write
    run.succeed("each[0]", "A")
    run._follow = real_follow
    parent = run.step("each")
    assert (parent.children_succeeded, parent.next_child) == (0, 2)  # the count was lost
    # The watch at the parent's due time: no count came in for SETTLE, so the counters are set
    # to what the children say and the lost slot goes to the next child.
    run.fire("each")
    parent = run.step("each")
    assert (parent.children_succeeded, parent.next_child) == (1, 3)
    assert "fanout_recounted" in run.types("each")
    assert run.status("each[2]") == "running"
    for key in ("each[1]", "each[2]"):
        run.succeed(key, key)
    run.succeed("each[3]", "D")
    assert run.step("each").output == ["A", "each[1]", "each[2]", "D"]


def test_a_start_lost_with_its_invocation_is_made_by_the_watch():
    run = watched()
    real_send = run.send
    dropped = []

    def send(event, at=None):
        if isinstance(event, ItemReady) and event.key == "each[2]" and not dropped:
            dropped.append(event)  # the count claimed slot 2, then its invocation died
            return None
        return real_send(event, at)

    run.send = send
    run.succeed("each[0]", "A")
    assert run.status("each[2]") is None and run.step("each").next_child == 3
    run.fire("each")
    assert run.status("each[2]") == "running"
    assert "fanout_restarted" in run.types("each")


def test_a_busy_fan_out_is_not_recounted():
    run = watched()
    due = run.step("each").due_at
    run.advance(timedelta(minutes=4))
    run.succeed("each[0]", "A")  # a count a minute before the watch
    decision = run.fire("each")
    assert "fanout_recounted" not in [e.type for e in decision.timeline]
    assert set(decision.steps) == {"each"}  # the watch only re-armed itself
    assert run.step("each").due_at > due


def test_a_child_whose_lease_ran_out_is_found_by_the_watch():
    run = watched()
    later = run.step("each[0]").attempt_started_at + DEFAULT_LEASE + timedelta(minutes=1)
    run.send(TimerFired("each", run.step("each").due_at), at=later)
    assert [d.attempt for d in run.dispatches("each[0]")] == [1, 2]
    assert "attempt_lost" in run.types("each[0]")


def test_a_share_of_failures_is_tolerated():
    run = EngineDriver(fanout(tolerated_failures="25%", max_parallel=8), list(range(8)))
    run.fail("each[0]", "Boom")
    run.fail("each[1]", "Boom")  # 2 of 8: 25% tolerated
    for i in range(2, 8):
        run.succeed(f"each[{i}]", i)
    assert run.status("each") == "succeeded"
    other = EngineDriver(fanout(tolerated_failures="25%", max_parallel=8), list(range(8)))
    for i in range(3):
        other.fail(f"each[{i}]", "Boom")
    assert other.status("each") == "failed"
    assert "3 failed, 2 tolerated" in other.step("each").error["message"]


def test_min_successful_succeeds_early_and_skips_the_children_still_running() -> None:
    run = EngineDriver(fanout(min_successful=2, max_parallel=3), ["a", "b", "c", "d"])
    run.succeed("each[0]", "A")
    run.fail("each[1]", "Boom")  # tolerated: 2 successes of 4 are still possible
    assert run.status("each") == "running"
    run.succeed("each[3]", "D")  # each[3] took each[1]'s slot
    assert run.status("each") == "succeeded"
    assert run.step("each").output == ["A", None, None, "D"]
    assert run.status("each[2]") == "skipped"  # still running when it was decided
    assert run.status("after") == "running"
    assert run.entries("fanout_decided")


def test_min_successful_fails_as_soon_as_it_cannot_be_reached() -> None:
    run = EngineDriver(fanout(min_successful="50%", max_parallel=4), ["a", "b", "c", "d"])
    run.fail("each[0]", "Boom")
    run.fail("each[1]", "Boom")
    assert run.status("each") == "running"  # 2 of 4 may still succeed
    run.fail("each[2]", "Boom")
    assert run.status("each") == "failed" and run.run.status == "failed"


@pytest.mark.parametrize("value", [-1, "110%", "lots", True])
def test_a_bad_share_says_how_to_write_one(value: Any) -> None:
    from pydantic import ValidationError

    with pytest.raises(ValidationError) as raised:
        workflow(fanout(tolerated_failures=value))
    assert "share of the items" in str(raised.value) or "count" in str(raised.value)
