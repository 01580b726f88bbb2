"""ctx.for_each in the in-process world: the real engine, replays, journals and Context."""

from __future__ import annotations

from typing import Any

from stepwell.code.context import Context
from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld

CODE = Workflow(name="fan-world", steps={}, code="fan.py:flow", code_version="1")


def double(value: Any, ctx: Any) -> Any:
    return value * 2


def world(flow: Any) -> InProcessWorld:
    return InProcessWorld({CODE.name: CODE}, {"Double": double}, code={CODE.name: flow})


def test_replays_while_a_fan_out_runs_read_its_outputs_once_it_is_decided() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        def chain(c: Context) -> Any:
            value = 1
            for i in range(5):  # each step's end replays the code while the fan-out runs
                value = c.task(f"step{i}", function="Double", input=value)
            return value

        return ctx.parallel(
            "both",
            [
                lambda c: c.for_each("fan", function="Double", items=input, max_concurrency=2),
                chain,
            ],
        )

    play = world(flow)
    run_id = play.start(CODE.name, list(range(30)))
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run and run.error
    assert run.output == [[i * 2 for i in range(30)], 32]
    keys = {s.key for s in play.store.steps(run_id)}
    assert {"both.0.fan", "both.0.fan[29]", "both.1.step4"} <= keys
    assert not {k for k in keys if k.startswith("both.0.") and "[" not in k} - {"both.0.fan"}


def test_a_run_that_fails_while_a_fan_out_runs_cancels_every_child_started() -> None:
    def checks(c: Context) -> Any:
        if c.task("check", function="Double", input=1) == 2:
            raise ValueError("the check failed")  # the code fails the run, no step does

    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel(
            "both",
            [
                lambda c: c.for_each("fan", function="Double", items=input, max_concurrency=2),
                checks,
            ],
        )

    play = world(flow)
    run_id = play.start(CODE.name, list(range(10)))
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "failed" and run.error is not None
    assert run.error["type"] == "ParallelFailed"
    steps = {s.key: s for s in play.store.steps(run_id)}
    assert steps["both.0.fan"].status == "cancelled"
    children = {k: s.status for k, s in steps.items() if k.startswith("both.0.fan[")}
    # Children started after the replay last read the run are cancelled too: none is left open.
    assert children and set(children.values()) <= {"succeeded", "cancelled"}
    assert "cancelled" in children.values()
