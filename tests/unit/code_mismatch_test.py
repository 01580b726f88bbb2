"""Change detection: code that no longer matches a run's records fails the replay, naming the
step, instead of handing a stored result to a different step."""

from __future__ import annotations

import contextlib
from typing import Any

from code_fake_engine import FakeRun

from stepwell.code.context import Context
from stepwell.code.replay import VERSION_HINT


def sequence(*steps: str):
    """A workflow of tasks with these names, in order ("~name" makes it a sleep)."""

    def flow(ctx: Context, input: Any) -> str:
        for name in steps:
            if name.startswith("~"):
                ctx.sleep(name[1:], "1m")
            else:
                ctx.task(name, function="F")
        return "done"

    return flow


def started(*steps: str, done: int) -> FakeRun:
    """A run of ``sequence(*steps)`` whose first ``done`` steps have succeeded."""
    run = FakeRun(sequence(*steps))
    for _ in range(done):
        run.replay()
        run.succeed(run.issued()[0], "ok")
    return run


def mismatch(run: FakeRun, *steps: str) -> str:
    result = run.replay(sequence(*steps))
    assert result.status == "failed", result
    assert result.error is not None
    assert result.error["type"] == "ReplayMismatch"
    message = result.error["message"]
    assert message.endswith(": " + VERSION_HINT)
    return message.removesuffix(": " + VERSION_HINT)


def test_a_changed_kind_names_the_step_and_both_kinds():
    run = started("build", "deploy", done=2)
    assert mismatch(run, "build", "~deploy") == (
        "step 'deploy' was a task when this run started and the code now makes it a sleep"
    )
    assert VERSION_HINT == (
        "the workflow's code changed under a run in flight; give the new code a new version "
        "(@workflow(version=...)) and keep the old function for the runs that started with it"
    )


def test_a_renamed_step_is_caught_at_its_position():
    run = started("build", "deploy", done=1)
    assert mismatch(run, "compile", "deploy") == (
        "step 'compile' is reached where step 'build' was when this run started "
        "(step 1 of the workflow)"
    )


def test_an_inserted_step_is_caught_where_it_pushes_the_old_one():
    run = started("build", "deploy", done=2)
    assert mismatch(run, "build", "lint", "deploy") == (
        "step 'lint' is reached where step 'deploy' was when this run started "
        "(step 2 of the workflow)"
    )


def test_a_removed_step_is_caught_at_the_next_one():
    run = started("a", "b", "c", done=3)
    assert mismatch(run, "a", "c") == (
        "step 'c' is reached where step 'b' was when this run started (step 2 of the workflow)"
    )


def test_a_removed_last_step_is_caught_when_the_code_returns():
    run = started("a", "b", done=2)
    assert mismatch(run, "a") == (
        "step 'b' ran when this run started, but the code now returns without reaching it"
    )


def test_steps_added_past_the_runs_progress_are_not_a_change():
    run = started("a", "b", done=1)
    assert run.replay(sequence("a", "b", "c")).status == "suspended"
    run.succeed("b", "ok")
    run.replay(sequence("a", "b", "c"))
    assert run.issued() == ["c"]


def test_a_moved_step_names_both_positions():
    def before(ctx: Context, input: Any) -> None:
        ctx.parallel("p", [lambda c: c.task("x", function="F")])
        ctx.task("a", function="F")

    def after(ctx: Context, input: Any) -> None:
        ctx.task("a", function="F")

    run = FakeRun(before)
    run.drive(lambda issue: "ok")
    result = run.replay(after)
    assert result.error is not None
    assert result.error["message"].startswith(
        "step 'a' was step 2 of the workflow when this run started and is now step 1"
    )


def test_a_parallel_that_became_a_step_and_back():
    def as_parallel(ctx: Context, input: Any) -> None:
        ctx.parallel("checks", [lambda c: c.task("lint", function="F")])

    def as_task(ctx: Context, input: Any) -> None:
        ctx.task("checks", function="F")

    run = FakeRun(as_parallel)
    run.replay()
    result = run.replay(as_task)
    assert result.error is not None
    assert result.error["message"].startswith(
        "step 'checks' was a parallel or a map when this run started and the code now makes "
        "it a task"
    )

    run = FakeRun(as_task)
    run.replay()
    result = run.replay(as_parallel)
    assert result.error is not None
    assert result.error["message"].startswith(
        "step 'checks' was a task when this run started and the code now makes it a parallel"
    )


def test_an_inline_step_that_became_a_task():
    def inline(ctx: Context, input: Any) -> None:
        ctx.step("price", lambda: 10)
        ctx.task("charge", function="F")

    def issued(ctx: Context, input: Any) -> None:
        ctx.task("price", function="F")

    run = FakeRun(inline)
    run.replay()
    result = run.replay(issued)
    assert result.error is not None
    assert result.error["message"].startswith(
        "step 'price' was an inline step when this run started and the code now makes it a task"
    )


def test_a_change_inside_a_branch_names_the_branch():
    def old(ctx: Context, input: Any) -> None:
        ctx.parallel(
            "p", [lambda c: c.task("x", function="F"), lambda c: c.task("y", function="F")]
        )

    def new(ctx: Context, input: Any) -> None:
        ctx.parallel(
            "p", [lambda c: c.task("x", function="F"), lambda c: c.task("z", function="F")]
        )

    run = FakeRun(old)
    run.replay()
    result = run.replay(new)
    assert result.error is not None
    assert result.error["message"].startswith(
        "step 'p.1.z' is reached where step 'p.1.y' was when this run started "
        "(step 1 of branch 1 of 'p')"
    )


def test_the_code_cannot_swallow_a_mismatch():
    def careless(ctx: Context, input: Any) -> str:
        with contextlib.suppress(BaseException):
            ctx.sleep("a", "1m")
        return "went on"

    run = started("a", done=1)
    result = run.replay(careless)
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "ReplayMismatch"


def test_an_ordinary_except_does_not_catch_a_mismatch():
    def guarded(ctx: Context, input: Any) -> str:
        try:
            ctx.sleep("a", "1m")
        except Exception:
            return "handled"
        return "done"

    run = started("a", done=1)
    result = run.replay(guarded)
    assert result.error is not None
    assert result.error["type"] == "ReplayMismatch"


def test_a_decided_fan_out_whose_counted_branch_now_waits_is_a_change() -> None:
    def flow(extra: bool):
        def branch(c: Context) -> Any:
            value = c.task("t", function="F")
            if extra:
                c.task("more", function="F")
            return value

        def run(ctx: Context, _: Any) -> Any:
            found = ctx.parallel("p", [branch, branch], min_successful=1)
            ctx.task("after", function="F", input=found)
            return found

        return run

    run = FakeRun(flow(False))
    run.replay()
    run.succeed("p.1.t", "one")
    run.replay()  # decided on branch 1
    result = run.replay(flow(True))
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "ReplayMismatch"
    assert (
        "branch 1 of 'p' had ended when the parallel was decided and now waits for step "
        "'p.1.more'" in result.error["message"]
    )


def test_a_failed_fan_out_whose_failed_branch_now_succeeds_is_a_change() -> None:
    def flow(fails: bool):
        def branch(c: Context) -> Any:
            try:
                return c.task("t", function="F")
            except Exception:
                if fails:
                    raise
                return "mended"

        def run(ctx: Context, _: Any) -> Any:
            with contextlib.suppress(Exception):
                ctx.parallel("p", [branch, branch])
            return ctx.task("after", function="F")

        return run

    run = FakeRun(flow(True))
    run.replay()
    run.fail("p.1.t", "Boom")
    run.replay()  # decided on branch 1's failure (fail fast), branch 0 still running
    result = run.replay(flow(False))
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "ReplayMismatch"
    assert "parallel 'p' failed when this run started" in result.error["message"]
