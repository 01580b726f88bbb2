"""Code-first workflows end to end in the in-process world: the real engine, replay, Context and
example step functions, with virtual time and an approver."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import orders
import release as release_steps

from stepwell.code.files import load_code_file
from stepwell.code.workflow import CodeWorkflow
from stepwell.engine.commands import RequestApproval
from stepwell.engine.events import ApprovalDecided, CallbackReceived
from stepwell.local.inprocess import InProcessWorld

ROOT = Path(__file__).resolve().parents[2]


def loaded(name: str) -> tuple[Any, CodeWorkflow]:
    (found,) = load_code_file(ROOT / "statemachines" / name)
    return found.workflow, found.code


def world(file: str, approve: bool = True) -> InProcessWorld:
    definition, code = loaded(file)

    def approver(request: RequestApproval) -> ApprovalDecided:
        return ApprovalDecided(request.key, request.attempt, approve, request.approvers[0], "test")

    return InProcessWorld(
        {definition.name: definition},
        {**orders.HANDLERS, **release_steps.HANDLERS},
        approver=approver,
        code={definition.name: code.function},
    )


RELEASE = {"service": "checkout", "ref": "v1", "approver": "lead@example.com"}


def test_the_release_runs_to_its_end_with_one_replay_per_wake() -> None:
    play = world("release.py")
    run_id = play.start("release", RELEASE)
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.output["released"] is True and run.output["healthy"] is True
    steps = {step.key: step for step in play.store.steps(run_id)}
    assert {"build", "checks.0.unit", "checks.1.integration", "checks.2.security"} <= set(steps)
    assert steps["notes"].spec == {"type": "step"}
    assert steps["deploy"].after == ["approve"]
    replays = steps["$workflow"].attempt
    # build, 3 checks (ending together may share a replay), approval, deploy, bake, verify.
    assert 6 <= replays <= 9, replays


def test_a_rejected_release_ends_without_deploying() -> None:
    play = world("release.py", approve=False)
    run_id = play.start("release", RELEASE)
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert run.output["released"] is False
    assert "deploy" not in {step.key for step in play.store.steps(run_id)}


def test_the_order_twin_retries_its_charge_and_skips_approval_when_small() -> None:
    play = world("order_fulfilment.py")
    small = {
        "order_id": "o-1",
        "customer": "a@example.com",
        "items": [{"sku": "A", "qty": 1, "price": 5.0}],
    }
    run_id = play.start("order-fulfilment-code", small)
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    steps = {step.key: step for step in play.store.steps(run_id)}
    assert steps["charge"].attempt == 2 and "approve" not in steps
    assert steps["reserve.0.reserve"].status == "succeeded"
    assert [e.detail_type for e in play.events].count("order.fulfilled") == 1


def test_a_rerun_from_a_step_keeps_what_came_before_and_runs_the_rest_again() -> None:
    play = world("release.py")
    first = play.start("release", RELEASE)
    play.run_until_idle()
    again = play.orchestrator.rerun(first, "deploy")
    play.run_until_idle()
    run = play.store.get_run(again)
    assert run is not None and run.status == "succeeded", run
    steps = {step.key: step for step in play.store.steps(again)}
    assert steps["build"].copied_from == first and steps["approve"].copied_from == first
    assert steps["deploy"].copied_from is None and steps["verify"].copied_from is None


def test_a_callback_that_comes_before_its_wait_is_kept_for_it() -> None:
    from stepwell.code.files import LoadedCode  # noqa: F401  (the shape load_code_file gives)
    from stepwell.code.workflow import workflow
    from stepwell.definition.models import Workflow

    @workflow(name="hooked")
    def hooked(ctx: Any, input: Any) -> Any:
        ctx.sleep("first", "1m")
        return ctx.wait_for_callback("hook", timeout="1h")

    definition = Workflow(name="hooked", steps={}, code="t.py:hooked", code_version="1")
    play = InProcessWorld({"hooked": definition}, {}, code={"hooked": hooked})
    run_id = play.start("hooked", None)
    play.run_until_idle(virtual_time=False)  # waiting in the 1-minute sleep
    play.send(run_id, CallbackReceived("hook", "success", output={"paid": True}))
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.output == {"paid": True}


def test_a_rerun_decides_again_a_fan_out_decided_on_a_failed_branch() -> None:
    from stepwell.code.workflow import workflow
    from stepwell.definition.models import Workflow

    def vote(c: Any, i: int) -> Any:
        if i == 2:
            c.sleep("think", "1h")  # still thinking when the map is decided
        return c.task("ask", function="Vote", input=i)

    @workflow(name="quorum")
    def quorum(ctx: Any, _: Any) -> Any:
        votes = ctx.map("vote", [0, 1, 2], vote, min_successful=1)
        ctx.task("tally", function="Tally", input=votes)
        return ctx.task("publish", function="Tally", input=votes)

    def ask(item: int, _: Any) -> int:
        if item == 0:
            raise ValueError("abstains")
        return item

    definition = Workflow(name="quorum", steps={}, code="t.py:quorum", code_version="1")
    functions = {"Vote": ask, "Tally": lambda votes, _: votes}
    play = InProcessWorld({"quorum": definition}, functions, code={"quorum": quorum})
    first = play.start("quorum", None)
    play.run_until_idle()
    run = play.store.get_run(first)
    assert run is not None and run.status == "succeeded", run
    assert run.output == [None, 1, None]
    decision = {step.key: step for step in play.store.steps(first)}["vote"]
    assert decision.output == {"counted": [[0, 2]], "reason": "min_successful_reached"}
    # The decision counted item 0's failure, which a rerun does not copy: so it decides again.
    again = play.orchestrator.rerun(first, "publish")
    play.run_until_idle()
    rerun = play.store.get_run(again)
    assert rerun is not None and rerun.status == "succeeded", rerun
    steps = {step.key: step for step in play.store.steps(again)}
    assert steps["tally"].copied_from == first and steps["vote"].copied_from is None


def test_a_cancelled_run_cleans_up_in_finally_and_ends_when_the_grace_does() -> None:
    from stepwell.code.workflow import workflow
    from stepwell.definition.models import Workflow
    from stepwell.engine.codeflow import CANCEL_GRACE
    from stepwell.engine.events import CancelRequested

    @workflow(name="tidy")
    def tidy(ctx: Any, _: Any) -> Any:
        try:
            ctx.sleep("wait", "1d")
        finally:
            ctx.notify("told", detail_type="job.tidied")
            ctx.sleep("tidy", "10m")  # longer than the grace

    definition = Workflow(name="tidy", steps={}, code="t.py:tidy", code_version="1")
    play = InProcessWorld({"tidy": definition}, {}, code={"tidy": tidy})
    run_id = play.start("tidy", None)
    play.run_until_idle(virtual_time=False)
    # Its suspension at the sleep ran no clean-up.
    assert [step.key for step in play.store.steps(run_id) if step.key != "$workflow"] == ["wait"]
    cancelled_at = play.clock.now()
    play.send(run_id, CancelRequested("stop"))
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "cancelled", run
    assert run.ended_at == cancelled_at + CANCEL_GRACE
    steps = {step.key: step.status for step in play.store.steps(run_id)}
    assert (steps["told"], steps["tidy"]) == ("succeeded", "cancelled")
    assert [event.detail_type for event in play.events].count("job.tidied") == 1


def test_each_replay_has_its_own_allowance_of_lost_attempts() -> None:
    from stepwell.code.workflow import workflow
    from stepwell.definition.models import Workflow
    from stepwell.engine.attempts import MAX_LOST_ATTEMPTS

    @workflow(name="rounds")
    def rounds(ctx: Any, input: Any) -> Any:
        ended = 0
        for n in range(MAX_LOST_ATTEMPTS + 1):

            def branch(i: int, n: int = n) -> Any:
                return lambda b: b.task(f"t{i}", function="Work", input={"round": n})

            ended += len(ctx.parallel(f"round{n}", [branch(0), branch(1)]))
        return ended

    definition = Workflow(name="rounds", steps={}, code="t.py:rounds", code_version="1")
    play = InProcessWorld(
        {"rounds": definition}, {"Work": lambda value, ctx: value}, code={"rounds": rounds}
    )
    real_run, lost = play._run_attempt, set()

    def run_attempt(command: Any) -> None:
        if command.key == "$workflow":
            own = {s.key: s for s in play.store.steps(command.run_id)}["$workflow"]
            if own.status == "running" and own.retry_base not in lost:
                lost.add(own.retry_base)
                return  # the first invocation of each replay is lost: its lease finds it
        real_run(command)

    play._run_attempt = run_attempt  # type: ignore[method-assign]
    run_id = play.start("rounds", None)
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert len(lost) > MAX_LOST_ATTEMPTS  # more lost replays over the run's life than one allows
    assert run is not None and run.status == "succeeded", run.error if run else None
    assert run.output == 2 * (MAX_LOST_ATTEMPTS + 1)


def test_a_code_first_workflow_s_concurrency_queues_its_runs_past_the_limit() -> None:
    from stepwell.code.workflow import workflow
    from stepwell.definition.models import Workflow

    @workflow(name="limited-code", concurrency={"key": "${input.customer}", "limit": 1})
    def limited(ctx: Any, input: Any) -> Any:
        return ctx.task("charge", function="Charge", input=input)

    info = limited.__stepwell_workflow__  # type: ignore[attr-defined]
    definition = Workflow(
        name="limited-code",
        steps={},
        code="t.py:limited",
        code_version="1",
        **info.flow_control,
    )
    world = InProcessWorld(
        {"limited-code": definition},
        {"Charge": lambda input, ctx: input["n"]},
        code={"limited-code": limited},
    )
    first = world.start("limited-code", {"customer": "acme", "n": 1})
    second = world.start("limited-code", {"customer": "acme", "n": 2})
    assert [world.store.get_run(i).status for i in (first, second)] == ["running", "queued"]  # type: ignore[union-attr]
    world.run_until_idle()
    runs = [world.store.get_run(i) for i in (first, second)]
    assert [(r.status, r.output) for r in runs if r is not None] == [
        ("succeeded", 1),
        ("succeeded", 2),
    ]
    first_run, second_run = runs
    assert first_run is not None and second_run is not None
    assert first_run.ended_at is not None and second_run.started_at is not None
    assert second_run.started_at >= first_run.ended_at
