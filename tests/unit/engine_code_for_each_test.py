"""The engine's side of ``ctx.for_each``: one issued step fanned out as a YAML for_each task.

The replay's answers are written by hand (as in engine_code_test.py): these tests pin what the
engine does with a ``for_each`` Issue, without the Context.
"""

from __future__ import annotations

from typing import Any

from helpers import EngineDriver
from stepwell.code.protocol import FOR_EACH, FOR_EACH_ITEMS, WORKFLOW_KEY, Issue, Yield
from stepwell.definition.models import Workflow
from stepwell.engine import core
from stepwell.engine.events import ItemReady, StepSucceeded
from stepwell.runtime.replays import recorded

W = WORKFLOW_KEY
CODE = Workflow(name="code-flow", steps={}, code="flow.py:flow", code_version="1")


def driver(**kw: Any) -> EngineDriver:
    return EngineDriver(CODE, {"n": 1}, **kw)


def for_each(items: Any, key: str = "resize", **spec: Any) -> dict[str, Any]:
    fields = {"function": "ResizeFunction", "for_each": FOR_EACH_ITEMS, "max_parallel": 3}
    issue = Issue(key, key, FOR_EACH, 0, items, {**fields, **spec})
    return Yield("suspended", issued=[issue]).to_dict()


def children(run: EngineDriver, key: str = "resize") -> list[str]:
    return sorted(k for k in run.steps if k.startswith(f"{key}["))


def finish_all(run: EngineDriver, answer: Any = None) -> None:
    """End every child still running, oldest first, until none runs."""
    while True:
        running = sorted(
            (k for k in run.running() if k.startswith("resize[")), key=lambda k: int(k[7:-1])
        )
        if not running:
            return
        key = running[0]
        run.succeed(key, answer(run.step(key)) if callable(answer) else answer)


def test_a_for_each_issue_is_one_record_whose_children_the_engine_starts_bounded() -> None:
    run = driver()
    run.succeed(W, for_each([{"n": i} for i in range(7)]))
    parent = run.step("resize")
    assert parent.items_total == 7 and parent.status == "running"
    assert parent.spec == {
        "function": "ResizeFunction",
        "for_each": FOR_EACH_ITEMS,
        "max_parallel": 3,
        "type": "task",
    }
    assert parent.input == [{"n": i} for i in range(7)]  # the items travel as its input
    assert children(run) == ["resize[0]", "resize[1]", "resize[2]"]
    sent = [d for d in run.dispatches() if d.key != W]
    assert [(d.function, d.input, d.step_id) for d in sent] == [
        ("ResizeFunction", {"n": i}, "resize") for i in range(3)
    ]
    # A child's definition is on its record: the task, without the fan-out's fields.
    assert run.step("resize[0]").spec == {"function": "ResizeFunction", "type": "task"}
    assert run.types("resize")[:1] == ["fanout_started"]


def test_the_children_are_gathered_in_item_order_and_wake_the_replay_once() -> None:
    run = driver()
    run.succeed(W, for_each(list(range(20)), max_parallel=4))
    finish_all(run, lambda child: child.item * 10)
    parent = run.step("resize")
    assert parent.status == "succeeded" and parent.output == [i * 10 for i in range(20)]
    # One replay started the fan-out, one more follows its end: not one per item.
    assert [d.attempt for d in run.dispatches(W)] == [1, 2]
    assert recorded(parent).kind == FOR_EACH and recorded(parent).output == parent.output
    assert len(run.extra_loads) <= 2  # the gather reads the children in one batch


def test_a_childs_decisions_read_the_child_alone_and_its_start_its_parent() -> None:
    assert core.reads_for(CODE, StepSucceeded("resize[3]", 1)) == {"resize[3]"}
    assert core.reads_for(CODE, ItemReady("resize[3]")) == {"resize[3]", "resize"}
    assert core.reads_for(CODE, StepSucceeded("resize", 1)) == {"resize", W}


def test_a_tolerated_failure_leaves_none_at_its_place() -> None:
    run = driver()
    run.succeed(W, for_each(["a", "b", "c"], tolerated_failures=1))
    run.fail("resize[1]", "Corrupt")
    finish_all(run, lambda child: child.item.upper())
    assert run.step("resize").status == "succeeded"
    assert run.step("resize").output == ["A", None, "C"]
    assert run.run.status == "running"  # the code decides what comes next


def test_a_failure_past_the_tolerance_records_the_outputs_and_errors_by_index() -> None:
    run = driver()
    run.succeed(W, for_each(list(range(6)), tolerated_failures="20%"))  # 1 of 6
    run.succeed("resize[0]", "zero")
    run.fail("resize[1]", "Corrupt", message="bad header")
    run.fail("resize[2]", "Corrupt", message="truncated")
    parent = run.step("resize")
    assert parent.status == "failed" and parent.error is not None
    assert parent.error["type"] == "ForEachFailed"
    assert parent.error["errors"] == [
        {"index": 1, "type": "Corrupt", "message": "bad header"},
        {"index": 2, "type": "Corrupt", "message": "truncated"},
    ]
    assert parent.output == ["zero", None, None, None, None, None]
    assert run.run.status == "running" and len(run.dispatches(W)) == 2  # woken with it
    # The failure is the code's to handle: the children still running are skipped.
    assert {run.status(k) for k in children(run)} <= {"succeeded", "failed", "skipped"}
    assert run.status("resize[3]") == "skipped"
    (event,) = [
        c.detail
        for c in run.commands
        if getattr(c, "detail_type", "") == "step.failed" and c.detail["step"] == "resize"
    ]
    # The bus hears of the failure; the errors by index stay on the record.
    assert event["error"] == {"type": "ForEachFailed", "message": parent.error["message"]}


def test_retry_timeout_and_heartbeat_apply_to_each_child() -> None:
    retry = {"max_attempts": 2, "interval": "1s", "jitter": "none"}
    run = driver()
    run.succeed(W, for_each(["a"], retry=retry, timeout="30s", heartbeat="10s"))
    child = run.step("resize[0]")
    assert child.heartbeat_due is not None and child.due_at is not None
    run.fail("resize[0]", "Flaky")
    assert run.status("resize[0]") == "retrying"
    run.fire("resize[0]")
    assert run.step("resize[0]").attempt == 2
    run.succeed("resize[0]", "done")
    assert run.step("resize").output == ["done"]


def test_an_empty_list_ends_at_once_with_an_empty_output() -> None:
    run = driver()
    run.succeed(W, for_each([]))
    assert run.step("resize").status == "succeeded" and run.step("resize").output == []
    assert len(run.dispatches(W)) == 2


def test_for_each_is_issued_by_ctx_for_each_alone() -> None:
    run = driver()
    crafted = Issue("t", "t", "task", 0, [1], {"function": "F", "for_each": FOR_EACH_ITEMS})
    missing = Issue("f", "f", FOR_EACH, 1, [1], {"function": "F"})
    run.succeed(W, Yield("suspended", issued=[crafted, missing]).to_dict())
    for key in ("t", "f"):
        error = run.step(key).error or {}
        assert run.status(key) == "failed" and error["type"] == "InvalidStep"
        assert "for_each is ctx.for_each's alone" in error["message"]
    assert not [d for d in run.dispatches() if d.key != W]


def test_items_that_are_not_a_list_fail_the_step() -> None:
    run = driver()
    run.succeed(W, for_each({"not": "a list"}))
    assert run.step("resize").error is not None
    assert run.step("resize").error["type"] == "ForEachNotAList"


def test_a_cancelled_run_cancels_the_running_children() -> None:
    from stepwell.engine.events import CancelRequested

    run = driver()
    run.succeed(W, for_each(list(range(5))))
    run.send(CancelRequested("stop"))
    assert run.status("resize") == "cancelled"
    assert [run.status(k) for k in children(run)] == ["cancelled"] * 3
