"""ctx.parallel and ctx.map: scopes, bounded concurrency, fail fast and tolerated failures."""

from __future__ import annotations

from typing import Any

import pytest
from code_fake_engine import Fail, FakeRun
from hypothesis import given, settings
from hypothesis import strategies as st

from stepwell.code.context import Context, MapFailed, ParallelFailed, StepFailed


def two_step_branch(tag: str):
    def branch(ctx: Context) -> Any:
        first = ctx.task("first", function=f"{tag}First")
        second = ctx.task("second", function=f"{tag}Second", input=first)
        return [first, second]

    return branch


def test_branches_run_in_their_own_scopes_and_join_before_the_next_step():
    def flow(ctx: Context, input: Any) -> Any:
        ctx.task("before", function="F")
        results = ctx.parallel("both", [two_step_branch("A"), two_step_branch("B")])
        ctx.task("after", function="F", input=results)
        return results

    run = FakeRun(flow)
    run.replay()
    run.succeed("before", 0)
    run.replay()
    assert run.issued() == ["both.0.first", "both.1.first"]
    run.succeed("both.1.first", "b1")
    run.replay()
    assert run.issued() == ["both.1.second"]  # branch 0 waits; branch 1 goes on
    assert run.issues["both.1.second"].after == ["both.1.first"]
    run.succeed("both.1.second", "b2")
    run.succeed("both.0.first", "a1")
    run.replay()
    assert run.issued() == ["both.0.second"]
    run.succeed("both.0.second", "a2")
    run.replay()
    assert run.issued() == ["after"]
    assert run.issues["after"].after == ["both.0.second", "both.1.second"]
    assert run.issues["after"].input == [["a1", "a2"], ["b1", "b2"]]
    run.succeed("after")
    assert run.replay().output == [["a1", "a2"], ["b1", "b2"]]


def test_a_parallel_name_follows_the_occurrence_rules_and_branches_nest():
    def flow(ctx: Context, input: Any) -> Any:
        out = []
        for _ in range(2):
            out.append(
                ctx.parallel(
                    "fan",
                    [
                        lambda c: c.parallel("inner", [lambda d: d.task("leaf", function="F")] * 2),
                    ],
                )
            )
        return out

    run = FakeRun(flow)
    result = run.drive(lambda issue: issue.key)
    assert result.output == [
        [["fan.0.inner.0.leaf", "fan.0.inner.1.leaf"]],
        [["fan~2.0.inner.0.leaf", "fan~2.0.inner.1.leaf"]],
    ]


def test_an_empty_parallel_and_an_empty_map_return_empty_lists():
    def flow(ctx: Context, input: Any) -> Any:
        return [ctx.parallel("none", []), ctx.map("nothing", [], lambda c, i: i)]

    assert FakeRun(flow).replay().output == [[], []]


def test_branches_that_need_no_step_return_at_once():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel("pure", [lambda c: 1, lambda c: c.step("two", lambda: 2)])

    result = FakeRun(flow).replay()
    assert result.output == [1, 2]
    assert [c.key for c in result.checkpoints] == ["pure.1.two"]


def test_fail_fast_raises_at_the_first_failure_and_starts_nothing_new():
    caught: list[ParallelFailed] = []

    def flow(ctx: Context, input: Any) -> str:
        try:
            ctx.parallel("both", [two_step_branch("A"), two_step_branch("B")])
        except ParallelFailed as exc:
            caught.append(exc)
            ctx.task("cleanup", function="Cleanup")
            return "cleaned"
        return "ok"

    run = FakeRun(flow)
    run.replay()
    run.succeed("both.0.first", "a1")  # branch 0 could go on to "second" ...
    run.fail("both.1.first", "Boom", "broken")  # ... but branch 1 failed
    result = run.replay()
    assert run.issued() == ["cleanup"]  # no "both.0.second": the parallel has failed
    assert result.status == "suspended"
    error = caught[-1]
    assert error.results == [None, None]
    assert list(error.errors) == [1]
    assert isinstance(error.errors[1], StepFailed)
    assert "branch 1: StepFailed" in str(error)
    assert run.issues["cleanup"].after == ["both.0.first", "both.1.first"]
    run.succeed("cleanup")
    assert run.replay().output == "cleaned"


def test_fail_fast_raises_while_other_branches_are_still_in_flight():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel("both", [two_step_branch("A"), two_step_branch("B")])

    run = FakeRun(flow)
    run.replay()
    run.fail("both.1.first", "Boom")
    result = run.replay()
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "ParallelFailed"
    assert run.journal["both.0.first"].status == "running"  # left to run: not cancelled here


def test_without_fail_fast_every_branch_ends_before_the_failure_is_raised():
    caught: list[ParallelFailed] = []

    def flow(ctx: Context, input: Any) -> Any:
        try:
            return ctx.parallel(
                "both", [two_step_branch("A"), two_step_branch("B")], fail_fast=False
            )
        except ParallelFailed as exc:
            caught.append(exc)
            raise

    run = FakeRun(flow)
    run.replay()
    run.fail("both.1.first", "Boom", "broken")
    run.replay()
    assert not caught
    run.succeed("both.0.first", "a1")
    run.replay()
    assert run.issued() == ["both.0.second"]  # branch 0 goes on despite branch 1's failure
    run.succeed("both.0.second", "a2")
    result = run.replay()
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "ParallelFailed"
    assert caught[-1].results == [["a1", "a2"], None]
    assert list(caught[-1].errors) == [1]


def test_max_concurrency_starts_a_branch_when_an_earlier_one_ends():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel(
            "three",
            [lambda c, i=i: c.task("t", function="F", input=i) for i in range(3)],
            max_concurrency=2,
        )

    run = FakeRun(flow)
    run.replay()
    assert run.issued() == ["three.0.t", "three.1.t"]
    run.succeed("three.1.t", "one")
    run.replay()
    assert run.issued() == ["three.2.t"]
    run.succeed("three.0.t", "zero")
    run.succeed("three.2.t", "two")
    assert run.replay().output == ["zero", "one", "two"]


def test_map_bounds_its_concurrency_and_keeps_item_order():
    def flow(ctx: Context, items: list[int]) -> Any:
        return ctx.map(
            "square",
            items,
            lambda c, n: c.task("calc", function="Square", input=n),
            max_concurrency=2,
        )

    run = FakeRun(flow, [1, 2, 3, 4, 5])
    result = run.drive(lambda issue: issue.input * issue.input)
    assert result.output == [1, 4, 9, 16, 25]
    in_flight_per_replay = [len(y.issued) for y in run.yields[:-1]]
    assert max(in_flight_per_replay) == 2
    assert run.issues["square.4.calc"].position == 0


def test_map_tolerates_failures_up_to_its_limit():
    def flow(ctx: Context, items: list[int]) -> Any:
        return ctx.map(
            "items",
            items,
            lambda c, n: c.task("work", function="Work", input=n),
            tolerated_failures=2,
        )

    def answer(issue):
        return Fail("Bad") if issue.input in (2, 4) else issue.input * 10

    assert FakeRun(flow, [1, 2, 3, 4]).drive(answer).output == [10, None, 30, None]


def test_map_fails_at_once_when_one_failure_too_many_is_known():
    caught: list[MapFailed] = []

    def flow(ctx: Context, items: list[int]) -> Any:
        try:
            return ctx.map(
                "items",
                items,
                lambda c, n: c.task("work", function="Work", input=n),
                tolerated_failures=1,
            )
        except MapFailed as exc:
            caught.append(exc)
            raise

    run = FakeRun(flow, [1, 2, 3, 4])
    run.replay()
    run.fail("items.0.work", "Bad", "zero")
    assert run.replay().status == "suspended"  # one failure is tolerated
    run.fail("items.2.work", "Bad", "two")
    result = run.replay()
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "MapFailed"
    assert "2 items failed, 1 tolerated" in result.error["message"]
    assert sorted(caught[-1].errors) == [0, 2]
    assert caught[-1].errors[2].error_type == "Bad"  # type: ignore[attr-defined]


def test_an_inline_step_failure_inside_a_branch_fails_the_branch():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel(
            "p", [lambda c: c.step("boom", lambda: 1 / 0), lambda c: "fine"], fail_fast=False
        )

    result = FakeRun(flow).replay()
    assert result.status == "failed"
    assert result.error is not None
    assert (
        "branch 0: StepFailed: step 'p.0.boom' failed: ZeroDivisionError"
        in (result.error["message"])
    )
    assert [(c.key, c.status) for c in result.checkpoints] == [("p.0.boom", "failed")]


@pytest.mark.parametrize("bad", [0, -1, 1.5])
def test_max_concurrency_must_be_a_positive_int(bad):
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel("p", [lambda c: 1], max_concurrency=bad)

    result = FakeRun(flow).replay()
    assert result.error is not None
    assert "max_concurrency must be an int >= 1" in result.error["message"]


def test_the_outer_context_cannot_be_used_inside_a_branch():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel("p", [lambda c: ctx.task("t", function="F")])

    result = FakeRun(flow).replay()
    assert result.error is not None
    assert result.error["type"] == "ContextError"  # a bug in the code, not a failed branch
    assert (
        "the Context of the workflow while the code runs branch 0 of 'p'"
        in (result.error["message"])
    )


def test_a_context_misuse_in_a_tolerant_map_fails_the_run_not_one_item():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.map(
            "m", [1, 2], lambda c, item: ctx.task("t", function="F"), tolerated_failures=2
        )

    result = FakeRun(flow).replay()
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "ContextError"


def test_a_branch_context_cannot_be_used_after_its_branch_ended():
    kept: list[Context] = []

    def flow(ctx: Context, input: Any) -> Any:
        ctx.parallel("p", [kept.append])
        return kept[0].task("late", function="F")

    result = FakeRun(flow).replay()
    assert result.error is not None
    assert result.error["type"] == "ContextError"
    assert (
        "the Context of branch 0 of 'p' while the code runs the workflow"
        in (result.error["message"])
    )


def nested(ctx: Context, items: list[int]) -> Any:
    base = ctx.task("base", function="F", input=0)
    squares = ctx.map(
        "items",
        items,
        lambda c, n: [c.task("sq", function="F", input=n), c.step("inc", lambda: n + 1)],
        max_concurrency=2,
    )
    pair = ctx.parallel(
        "pair",
        [
            lambda c: [c.task("x", function="F", input=i) for i in range(2)],
            lambda c: c.parallel("deep", [lambda d: d.task("y", function="F", input=9)]),
        ],
        max_concurrency=1,
    )
    return [base, squares, pair]


@settings(max_examples=60, deadline=None)
@given(order=st.randoms(use_true_random=False), size=st.integers(0, 5))
def test_any_completion_order_gives_the_same_run(order, size):
    items = list(range(size))
    run = FakeRun(nested, items)
    for _ in range(200):
        result = run.replay()
        if result.status != "suspended":
            break
        pending = run.in_flight()
        assert pending
        assert len({k.split("/")[1] for k in pending if k.startswith("items/")}) <= 2
        # End one step in flight, chosen at random: replays see every interleaving.
        key = order.choice(pending)
        run.succeed(key, run.issues[key].input * 10)
    assert result.status == "completed", result
    assert result.output == [
        0,
        [[n * 10, n + 1] for n in items],
        [[0, 10], [90]],
    ]
    # Every step was issued once (FakeRun asserts it), at most two items ran at once (above).


def test_a_map_tolerates_a_share_of_its_items_failing():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.map(
            "m", list(range(4)), lambda c, i: c.task("t", function="F"), tolerated_failures="25%"
        )

    run = FakeRun(flow)
    run.replay()
    run.fail("m.0.t", "Boom")
    for i in (1, 2, 3):
        run.succeed(f"m.{i}.t", i)
    assert run.replay().output == [None, 1, 2, 3]
    other = FakeRun(flow)
    other.replay()
    other.fail("m.0.t", "Boom")
    other.fail("m.1.t", "Boom")
    result = other.replay()
    assert result.status == "failed" and result.error["type"] == "MapFailed"


# -- completion rules and batch results ---------------------------------------------------------


def work(c: Context, n: int) -> Any:
    return c.task("work", function="Work", input=n)


def test_min_successful_returns_as_soon_as_enough_items_succeeded() -> None:
    def flow(ctx: Context, items: list[int]) -> Any:
        return ctx.map("items", items, work, min_successful=2)

    run = FakeRun(flow, [1, 2, 3, 4])
    run.replay()
    run.succeed("items.1.work", 20)
    assert run.replay().status == "suspended"
    run.succeed("items.3.work", 40)
    result = run.replay()
    assert result.status == "completed"
    assert result.output == [None, 20, None, 40]  # items 0 and 2 are not waited for


def test_min_successful_fails_once_it_can_no_longer_be_reached() -> None:
    def flow(ctx: Context, items: list[int]) -> Any:
        return ctx.map("items", items, work, min_successful="75%")  # 3 of 4

    run = FakeRun(flow, [1, 2, 3, 4])
    run.replay()
    run.fail("items.0.work", "Bad")
    assert run.replay().status == "suspended"  # 3 can still succeed
    run.fail("items.2.work", "Bad")
    result = run.replay()
    assert result.status == "failed" and result.error is not None
    assert "2 items failed, 1 tolerated" in result.error["message"]


def test_a_batch_result_says_how_each_item_went_and_never_raises() -> None:
    seen: list[Any] = []

    def flow(ctx: Context, items: list[int]) -> Any:
        batch = ctx.map("items", items, work, batch=True)
        seen.append(batch)
        return {"values": batch.values(), "failed": [o.index for o in batch.failed]}

    def answer(issue):
        return Fail("Bad", "no") if issue.input == 2 else issue.input * 10

    result = FakeRun(flow, [1, 2, 3]).drive(answer)
    assert result.output == {"values": [10, None, 30], "failed": [1]}
    batch = seen[-1]
    assert batch.completion_reason == "all_completed"  # a batch without a rule waits for all
    assert [o.status for o in batch.items] == ["succeeded", "failed", "succeeded"]
    with pytest.raises(StepFailed):
        batch.raise_if_failed()


def test_a_parallel_tolerates_failures_and_may_end_early_with_a_batch() -> None:
    def branch(n: int) -> Any:
        return lambda c: c.task("b", function="Work", input=n)

    def tolerant(ctx: Context, _: Any) -> Any:
        return ctx.parallel("p", [branch(1), branch(2), branch(3)], tolerated_failures=1)

    def answer(issue):
        return Fail("Bad") if issue.input == 2 else issue.input

    assert FakeRun(tolerant).drive(answer).output == [1, None, 3]

    def first_two(ctx: Context, _: Any) -> Any:
        batch = ctx.parallel("p", [branch(1), branch(2), branch(3)], min_successful=1, batch=True)
        return [batch.completion_reason, [o.status for o in batch.items]]

    run = FakeRun(first_two)
    run.replay()
    run.succeed("p.2.b", 3)
    result = run.replay()
    assert result.output == ["min_successful_reached", ["not_run", "not_run", "succeeded"]]


# -- a decided fan-out answers the same forever -------------------------------------------------


def decided_twice(fan_out, ends: list[tuple[str, Any]]) -> tuple[FakeRun, list[Any]]:
    """Run ``fan_out(ctx)``, whose answer the code then keeps through a sleep, ending the steps
    as ``ends`` says (a Fail fails one) with a replay after each: the run and what the code saw
    of the fan-out on each replay that went past it."""
    seen: list[Any] = []

    def flow(ctx: Context, _: Any) -> Any:
        try:
            answer = fan_out(ctx)
        except (ParallelFailed, MapFailed) as exc:
            answer = {type(exc).__name__: sorted(exc.errors)}
        seen.append(answer)
        ctx.sleep("after", "1h")
        return answer

    run = FakeRun(flow)
    run.replay()
    for key, value in ends:
        if isinstance(value, Fail):
            run.fail(key, value.error_type)
        else:
            run.succeed(key, value)
        run.replay()
    run.succeed("after")
    result = run.replay()
    assert result.status == "completed", result
    return run, seen


def napping(tag: str, nap: str) -> Any:
    def branch(c: Context) -> Any:
        c.sleep("nap", nap)
        return c.task("work", function="Work", input=tag) if tag == "b0" else tag

    return branch


def test_a_fan_out_decided_by_min_successful_starts_nothing_later_and_answers_the_same() -> None:
    def fan_out(ctx: Context) -> Any:
        return ctx.parallel("p", [napping("b0", "5s"), napping("b1", "1s")], min_successful=1)

    # Branch 1's nap ends first and decides; branch 0's ends later.
    run, seen = decided_twice(fan_out, [("p.1.nap", None), ("p.0.nap", None)])
    assert "p.0.work" not in run.issues  # no new step in a decided fan-out
    assert seen == [[None, "b1"]] * 3  # the replays after p.1.nap, p.0.nap and "after" ended
    assert run.last.output == [None, "b1"]
    record = run.journal["p"]
    assert (record.kind, record.status) == ("parallel", "succeeded")


def test_a_fan_out_past_its_tolerance_fails_with_the_same_errors_forever() -> None:
    def fan_out(ctx: Context) -> Any:
        work = [lambda c, i=i: c.task("t", function="Work", input=i) for i in range(3)]
        return ctx.parallel("p", work, tolerated_failures=1)

    ends = [("p.1.t", Fail("Bad")), ("p.2.t", Fail("Bad")), ("p.0.t", Fail("Bad"))]
    run, seen = decided_twice(fan_out, ends)
    assert seen[-1] == {"ParallelFailed": [1, 2]}
    assert run.last.output == {"ParallelFailed": [1, 2]}
    assert run.journal["p"].status == "failed"


def test_a_fail_fast_map_keeps_the_failure_it_was_decided_on() -> None:
    def fan_out(ctx: Context) -> Any:
        return ctx.map("m", [0, 1], lambda c, i: c.task("t", function="Work", input=i))

    # Item 1 fails first; item 0, started before the decision, fails later.
    run, seen = decided_twice(fan_out, [("m.1.t", Fail("Bad")), ("m.0.t", Fail("Worse"))])
    assert seen == [{"MapFailed": [1]}] * len(seen)
    assert run.last.output == {"MapFailed": [1]}


def test_a_batch_decided_early_keeps_its_outcomes() -> None:
    def fan_out(ctx: Context) -> Any:
        work = [lambda c, i=i: c.task("t", function="Work", input=i) for i in range(3)]
        batch = ctx.parallel("p", work, min_successful=1, batch=True)
        return [batch.completion_reason, [o.status for o in batch.items], batch.values()]

    run, seen = decided_twice(fan_out, [("p.2.t", "two"), ("p.0.t", "zero")])
    first = ["min_successful_reached", ["not_run", "not_run", "succeeded"], [None, None, "two"]]
    assert seen == [first] * len(seen)
    assert run.last.output == first


def test_a_recorded_decision_replays_only_the_branches_it_counted() -> None:
    calls: list[int] = []

    def branch(i: int) -> Any:
        def run(c: Context) -> Any:
            calls.append(i)
            return c.task("t", function="Work", input=i)

        return run

    def fan_out(ctx: Context) -> Any:
        return ctx.map("m", [0, 1, 2], lambda c, i: branch(i)(c), min_successful=1)

    run, _ = decided_twice(fan_out, [("m.1.t", "one")])
    assert run.journal["m"].output["counted"] == [[1, 2]]
    calls.clear()
    run.replay()
    assert calls == [1]  # items 0 and 2 are not run again: the record says what counted
