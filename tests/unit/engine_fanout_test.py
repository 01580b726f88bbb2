"""for_each: bounded fan-out, gathering in item order, failures, and large lists."""

from __future__ import annotations

import pytest

from helpers import EngineDriver, counters_of, task
from stepwell.engine.commands import CountItem, FollowUp
from stepwell.engine.decision import MAX_STEP_WRITES
from stepwell.engine.events import Continue, ItemReady


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
