"""ctx.for_each through the local stack: one fan-out the engine counts, whose children are
ReserveItemFunction invocations; the code is replayed twice whatever the number of items."""

from __future__ import annotations

from typing import Any

from e2e_helpers import finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def lines(order_id: str, count: int, bad: tuple[int, ...] = (), pad: int = 0) -> list[Any]:
    """Order lines for ReserveItemFunction; a bad one lacks its order_id (a KeyError)."""
    out: list[Any] = []
    for i in range(count):
        line = {"order_id": order_id, "sku": f"SKU-{i:03d}{'-' * pad}", "qty": i % 7 + 1}
        if i in bad:
            del line["order_id"]
        out.append(line)
    return out


def replays(stack: LocalStack) -> int:
    """Replays so far (a code-first run's replays run in the workflows function that holds its
    code)."""
    assert stack.emulator is not None
    workflows = stack.emulator.find(LocalStack.FOLDER_FUNCTION).name
    return sum(1 for r in list(stack.emulator.history) if r.function == workflows)


def reserve(stack: LocalStack, api: Client, order: dict[str, Any]) -> tuple[dict[str, Any], int]:
    """Run wide-reserve to its end: its detail and the runner invocations it took."""
    before = replays(stack)
    started = api.start_run("wide-reserve", order)
    assert started.status == 201, started.text
    detail = finished(stack, api, started.body["run_id"], timeout=60)
    # The run ends inside its last replay: that invocation is counted once it has returned.
    assert stack.wait_idle(60)
    return detail, replays(stack) - before


def test_fifty_lines_are_reserved_in_item_order_by_one_step_the_engine_counts(
    stack: LocalStack, api: Client
) -> None:
    # About 40 KB of lines: the step's input goes to the payload bucket.
    order = {"order_id": "o-wide-1", "lines": lines("o-wide-1", 50, pad=700), "max_concurrency": 8}
    detail, runner_calls = reserve(stack, api, order)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    output = run["output"]
    assert output["reserved"] is True
    assert [r["sku"] for r in output["reservations"]] == [line["sku"] for line in order["lines"]]
    assert [r["qty"] for r in output["reservations"]] == [line["qty"] for line in order["lines"]]
    assert len({r["reservation_id"] for r in output["reservations"]}) == 50
    # One record for the fan-out, its children counted on it: none issued by the replay.
    assert set(steps) == {"$workflow", "reserve"}
    fan = steps["reserve"]
    assert fan["kind"] == "for_each" and fan["status"] == "succeeded"
    assert (fan["items_total"], fan["children_succeeded"], fan["children_failed"]) == (50, 50, 0)
    # The children are the operator API's to page through, as a YAML for_each's are.
    page = api.get(f"/runs/{run['id']}/steps/reserve/children?limit=20").body
    assert [c["key"] for c in page["children"]] == [f"reserve[{i}]" for i in range(20)]
    assert page["children"][3]["output"]["sku"] == order["lines"][3]["sku"]
    assert page["cursor"] == "20"
    assert api.get(f"/runs/{run['id']}/steps/nope/children").status == 404
    # The first replay issues the fan-out, the one after its end returns: not one per item.
    few, few_calls = reserve(stack, api, {"order_id": "o-wide-2", "lines": lines("o-wide-2", 5)})
    assert few["run"]["status"] == "succeeded"
    assert runner_calls == few_calls == 2


def test_a_tolerated_failure_leaves_none_at_its_place(stack: LocalStack, api: Client) -> None:
    order = {"order_id": "o-wide-3", "lines": lines("o-wide-3", 12, bad=(4,)), "tolerated": 1}
    detail, _ = reserve(stack, api, order)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    reservations = run["output"]["reservations"]
    assert reservations[4] is None
    assert [r["sku"] for i, r in enumerate(reservations) if i != 4] == [
        line["sku"] for i, line in enumerate(order["lines"]) if i != 4
    ]
    assert (steps["reserve"]["children_succeeded"], steps["reserve"]["children_failed"]) == (11, 1)


def test_a_failure_past_the_tolerance_is_caught_by_the_workflow(
    stack: LocalStack, api: Client
) -> None:
    order = {
        "order_id": "o-wide-4",
        "lines": lines("o-wide-4", 20, bad=(2, 7)),
        "tolerated": "5%",  # 1 of 20
        "max_concurrency": 20,
    }
    detail, _ = reserve(stack, api, order)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run  # the code caught MapFailed and returned
    assert run["output"]["reserved"] is False
    assert run["output"]["failed"] == [2, 7]
    assert run["output"]["errors"] == ["KeyError", "KeyError"]
    assert steps["reserve"]["status"] == "failed"
    assert steps["reserve"]["error"]["type"] == "ForEachFailed"
    assert [e["index"] for e in steps["reserve"]["error"]["errors"]] == [2, 7]
    assert steps["shortfall"]["status"] == "succeeded"
    (shortfall,) = [
        e for e in stack.events("order.shortfall") if e["detail"]["order_id"] == "o-wide-4"
    ]
    assert shortfall["detail"]["lines"] == [2, 7]


def test_containers_starting_at_once_share_one_dynamodb_client(stack: LocalStack) -> None:
    """A fan-out starts many containers of one function at the same moment; they share its
    environment's store, whose DynamoDB client is made once (not by each container's first
    request, each loading botocore's models again)."""
    import threading

    import botocore.handlers

    made: list[str] = []

    def count(class_attributes: Any, base_classes: Any, **_: Any) -> None:
        made.append(threading.current_thread().name)

    entry = ("creating-client-class.dynamodb", count)
    botocore.handlers.BUILTIN_HANDLERS.append(entry)
    start = threading.Barrier(12)
    spec = next(s for s in stack.functions if s.logical_id == LocalStack.FOLDER_FUNCTION)

    def container() -> None:
        runtime = stack._runtime_for(spec)
        start.wait()
        assert runtime.store.get_run("no-such-run") is None

    try:
        stack._runtimes.clear()
        threads = [threading.Thread(target=container) for _ in range(12)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    finally:
        botocore.handlers.BUILTIN_HANDLERS.remove(entry)
    assert len(made) == 1
