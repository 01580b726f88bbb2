"""Replay of a code-first workflow: stored results come back, new steps are issued once, and
the code's own control flow (loops, try/except) works across suspensions."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from code_fake_engine import Fail, FakeRun

from stepwell.code.context import Context, StepFailed
from stepwell.code.protocol import WORKFLOW_KEY, Recorded, Yield

APPROVED = {
    "approved": True,
    "decisions": [
        {"approver": "lead@example.com", "decision": "approved", "comment": "ship it", "at": "x"}
    ],
    "timed_out": False,
}


def release(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    build = ctx.task(
        "build",
        function="BuildFunction",
        input={"ref": input["ref"]},
        retry={"max_attempts": 3, "interval": "2s"},
        timeout="10m",
    )
    checks = ctx.parallel(
        "checks",
        [
            lambda c: c.task("lint", function="LintFunction", input=build),
            lambda c: c.task("test", function="TestFunction", input=build),
            lambda c: c.http(
                "scan",
                "https://scanner.example.com/scan",
                method="POST",
                headers={"Authorization": "Bearer " + c.secret("SCANNER")},
                body={"artifact": build["artifact"]},
                secrets={"SCANNER": "prod/scanner"},
            )["body"],
        ],
    )
    decision = ctx.approval(
        "go", message=f"Release {input['ref']}?", approvers=["lead@example.com"], timeout="2d"
    )
    if not decision.approved:
        return {"released": False, "by": decision.approver}
    deploy = ctx.task("deploy", function="DeployFunction", input=build)
    ctx.sleep("bake", "15m")
    verify = ctx.task("verify", function="VerifyFunction", input=deploy)
    return {"released": True, "checks": checks, "verify": verify, "by": decision.approver}


def test_a_release_runs_step_by_step_to_completion():
    run = FakeRun(release, {"ref": "v1.2.0"})

    assert run.replay().status == "suspended"
    assert run.issued() == ["build"]
    build = run.issues["build"]
    assert (build.kind, build.position, build.after, build.input) == (
        "task",
        0,
        [],
        {"ref": "v1.2.0"},
    )
    assert build.spec == {
        "function": "BuildFunction",
        "retry": {"max_attempts": 3, "interval": "2s"},
        "timeout": "10m",
    }
    run.succeed("build", {"artifact": "s3://a/1"})

    run.replay()
    assert run.issued() == ["checks.0.lint", "checks.1.test", "checks.2.scan"]
    for key in run.issued():
        assert run.issues[key].after == ["build"]
        assert run.issues[key].position == 0
    scan = run.issues["checks.2.scan"]
    assert scan.kind == "http"
    assert scan.input == {
        "method": "POST",
        "url": "https://scanner.example.com/scan",
        "headers": {"Authorization": "Bearer {{secret:SCANNER}}"},
        "body": {"artifact": "s3://a/1"},
        "request_timeout_s": 10.0,
        "secrets": {"SCANNER": "prod/scanner"},
    }
    run.succeed("checks.0.lint", "clean")
    assert run.replay().issued == []  # the others still run: nothing new, nothing re-issued
    run.succeed("checks.1.test", {"passed": 10})
    run.succeed("checks.2.scan", {"status": 200, "headers": {}, "body": {"cves": 0}})

    run.replay()
    assert run.issued() == ["go"]
    go = run.issues["go"]
    assert go.position == 2  # the parallel took position 1
    assert go.after == ["checks.0.lint", "checks.1.test", "checks.2.scan"]
    assert go.spec == {
        "message": "Release v1.2.0?",
        "approvers": ["lead@example.com"],
        "quorum": 1,
        "timeout": "2d",
        "on_timeout": "fail",
        "on_reject": "continue",
    }
    run.succeed("go", APPROVED)

    run.replay()
    assert run.issued() == ["deploy"]
    assert run.issues["deploy"].after == ["go"]
    run.succeed("deploy", {"version": "v1.2.0"})
    run.replay()
    assert run.issued() == ["bake"]
    assert (run.issues["bake"].kind, run.issues["bake"].spec) == ("delay", {"duration": "15m"})
    run.succeed("bake")
    run.replay()
    assert run.issued() == ["verify"]
    run.succeed("verify", {"healthy": True})

    result = run.replay()
    assert result == Yield(
        "completed",
        output={
            "released": True,
            "checks": ["clean", {"passed": 10}, {"cves": 0}],
            "verify": {"healthy": True},
            "by": "lead@example.com",
        },
    )
    positions = {key: record.position for key, record in run.journal.items()}
    assert positions == {
        "build": 0,
        "checks.0.lint": 0,
        "checks.1.test": 0,
        "checks.2.scan": 0,
        "go": 2,
        "deploy": 3,
        "bake": 4,
        "verify": 5,
    }


def test_a_rejected_release_returns_early():
    def answer(issue):
        if issue.kind == "approval":
            return {
                "approved": False,
                "decisions": [{"approver": "cto@example.com", "decision": "rejected"}],
                "timed_out": False,
            }
        return {"artifact": "a"} if issue.key == "build" else {"body": None}

    result = FakeRun(release, {"ref": "v2"}).drive(answer)
    assert result.output == {"released": False, "by": "cto@example.com"}


def test_a_step_in_flight_suspends_the_replay_and_is_not_issued_again():
    run = FakeRun(release, {"ref": "v1"})
    run.replay()
    second = run.replay()
    assert second.status == "suspended"
    assert second.issued == []
    assert run.journal["build"].status == "running"


def test_loops_give_each_occurrence_its_own_key():
    def poll(ctx: Context, input: Any) -> int:
        rounds = 0
        while True:
            rounds += 1
            status = ctx.task("check", function="StatusFunction", input={"round": rounds})
            if status["done"]:
                return rounds
            ctx.sleep("pause", "30s")

    run = FakeRun(poll)
    result = run.drive(
        lambda issue: {"done": issue.input["round"] == 3} if issue.kind == "task" else None
    )
    assert result.output == 3
    assert list(run.journal) == ["check", "pause", "check~2", "pause~2", "check~3"]
    assert [run.journal[key].position for key in run.journal] == [0, 1, 2, 3, 4]
    assert run.issues["check~2"].after == ["pause"]
    assert run.issues["pause~2"].name == "pause"


def test_a_failed_task_raises_step_failed_which_the_code_can_handle():
    seen: list[StepFailed] = []

    def charge(ctx: Context, input: Any) -> str:
        try:
            ctx.task("charge", function="ChargeFunction", input=input)
        except StepFailed as exc:
            seen.append(exc)
            ctx.task("refund", function="RefundFunction", input={"why": exc.error_type})
            return "refunded"
        return "charged"

    run = FakeRun(charge, {"amount": 10})
    result = run.drive(
        lambda issue: Fail("CardDeclined", "insufficient funds") if issue.key == "charge" else 1
    )
    assert result.output == "refunded"
    assert run.issues["refund"].input == {"why": "CardDeclined"}
    assert run.issues["refund"].after == ["charge"]
    error = seen[-1]
    assert (error.step, error.error_type, error.message) == (
        "charge",
        "CardDeclined",
        "insufficient funds",
    )
    assert str(error) == "step 'charge' failed: CardDeclined: insufficient funds"


def test_an_unhandled_step_failure_fails_the_run_with_the_step_named():
    def flow(ctx: Context, input: Any) -> None:
        ctx.task("deploy", function="DeployFunction")

    result = FakeRun(flow).drive(lambda issue: Fail("Timeout", "took too long"))
    assert result.status == "failed"
    assert result.error == {
        "type": "StepFailed",
        "message": "step 'deploy' failed: Timeout: took too long",
    }


def test_a_cancelled_step_raises_step_failed():
    def flow(ctx: Context, input: Any) -> None:
        ctx.task("deploy", function="DeployFunction")

    run = FakeRun(flow)
    run.replay()
    run.journal["deploy"] = replace(run.journal["deploy"], status="cancelled")
    assert run.replay().error == {
        "type": "StepFailed",
        "message": "step 'deploy' failed: StepCancelled: ",
    }


def test_the_functions_own_exception_fails_the_run_and_keeps_the_checkpoints():
    def flow(ctx: Context, input: Any) -> None:
        ctx.step("prepare", lambda: 41)
        raise KeyError("missing")

    result = FakeRun(flow).replay()
    assert result.status == "failed"
    assert result.error == {"type": "KeyError", "message": "'missing'"}
    assert [c.key for c in result.checkpoints] == ["prepare"]


def test_checkpoints_go_out_with_a_completion_and_a_suspension():
    def flow(ctx: Context, input: Any) -> int:
        a = ctx.step("a", lambda: 1)
        b = ctx.step("b", lambda x: x + 1, a)
        if input == "wait":
            ctx.task("t", function="F")
        return b

    done = FakeRun(flow).replay()
    assert done.status == "completed"
    assert done.output == 2
    assert [(c.key, c.position, c.after, c.output) for c in done.checkpoints] == [
        ("a", 0, [], 1),
        ("b", 1, ["a"], 2),
    ]
    waiting = FakeRun(flow, "wait").replay()
    assert waiting.status == "suspended"
    assert [c.key for c in waiting.checkpoints] == ["a", "b"]
    assert [(i.key, i.after) for i in waiting.issued] == [("t", ["b"])]


def test_a_step_that_was_skipped_returns_its_given_output():
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.task("t", function="F")

    run = FakeRun(flow)
    run.replay()
    run.journal["t"] = replace(run.journal["t"], status="skipped", output={"manual": True})
    assert run.replay().output == {"manual": True}


def test_a_caught_suspension_fails_the_replay_instead_of_running_on_blind():
    def flow(ctx: Context, input: Any) -> str:
        try:
            ctx.task("t", function="F")
        except BaseException:
            return "oops"
        return "fine"

    result = FakeRun(flow).replay()
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "ContextError"
    assert "caught the replay's suspension at step 't'" in result.error["message"]


def test_a_return_value_that_is_not_json_fails_the_run():
    def flow(ctx: Context, input: Any) -> object:
        return object()

    result = FakeRun(flow).replay()
    assert result.status == "failed"
    assert result.error is not None
    assert result.error["type"] == "TypeError"
    assert "the workflow's return value is not JSON" in result.error["message"]


def test_the_yield_survives_its_wire_form():
    run = FakeRun(release, {"ref": "v1"})
    run.replay()
    run.succeed("build", {"artifact": "a"})
    result = run.replay()
    assert Yield.from_dict(result.to_dict()) == result


@pytest.mark.parametrize("status", ["running", "waiting", "retrying"])
def test_every_status_in_flight_suspends(status):
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.task("t", function="F")

    run = FakeRun(flow)
    run.replay()
    run.journal["t"] = replace(run.journal["t"], status=status)
    answer = run.replay()
    assert answer == Yield("suspended")
    # What it waits for, told to the engine (a wait does not keep the run running).
    assert (answer.in_flight, answer.running) == (1, 0 if status == "waiting" else 1)


def test_a_pending_record_is_a_step_not_started_yet_and_is_issued():
    # A callback that arrives before its wait opened leaves a pending record to keep it in.
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.wait_for_callback("signed")

    run = FakeRun(flow)
    run.journal["signed"] = Recorded("signed", "signed", "", 0, "pending")
    assert [issue.key for issue in run.replay().issued] == ["signed"]


def test_the_workflows_own_record_is_not_a_step_of_the_code():
    run = FakeRun(lambda ctx, _: ctx.task("t", function="F"))
    run.journal[WORKFLOW_KEY] = Recorded(WORKFLOW_KEY, "release", "code", 0, "running")
    assert [issue.key for issue in run.replay().issued] == ["t"]


# -- a suspension runs none of the code's clean-up ----------------------------------------------


def test_a_clean_up_in_finally_does_nothing_at_a_suspension_and_runs_at_the_real_end() -> None:
    ran: list[str] = []

    def flow(ctx: Context, _: Any) -> str:
        try:
            ctx.sleep("wait", "1d")
            return "waited"
        finally:
            ctx.step("release", lambda: ran.append("release") or "released")
            ctx.notify("tidy_up", detail_type="job.tidied")

    run = FakeRun(flow)
    first = run.replay()  # suspends at the sleep: the finally block must not clean up
    assert first.status == "suspended" and run.issued() == ["wait"]
    assert not first.checkpoints and ran == []
    run.succeed("wait")
    second = run.replay()  # the code leaves the block now: its clean-up runs
    assert ran == ["release"] and run.issued() == ["tidy_up"]
    assert [c.key for c in second.checkpoints] == ["release"]
    run.succeed("tidy_up")
    assert run.replay().output == "waited"


def test_a_cancelled_run_cleans_up_in_finally_once_told() -> None:
    def flow(ctx: Context, _: Any) -> str:
        try:
            ctx.sleep("wait", "1d")
            return "waited"
        finally:
            ctx.notify("tidy_up", detail_type="job.tidied")

    run = FakeRun(flow)
    run.replay()
    assert run.issued() == ["wait"]
    run.info = {"cancelled": "by ops"}  # the engine cancels the sleep and replays to tell it
    run.journal["wait"] = replace(run.journal["wait"], status="cancelled")
    told = run.replay()
    assert told.status == "suspended" and run.issued() == ["tidy_up"]


def test_nothing_the_code_asks_for_while_a_suspension_unwinds_happens() -> None:
    logged: list[str] = []

    class Lines:
        def info(self, msg: str, *args: Any) -> None:
            logged.append(msg % args)

    def branch(c: Context) -> Any:
        try:
            return c.task("work", function="Work")
        finally:
            c.logger.info("branch done")
            c.step("count", lambda: 1)

    def flow(ctx: Context, _: Any) -> Any:
        handle = ctx.create_callback("hook")
        try:
            return ctx.parallel("p", [branch, lambda c: c.task("other", function="Other")])
        except BaseException:
            ctx.logger.info("left the parallel")
            handle.result()  # neither waits for the callback nor starts anything
            raise

    run = FakeRun(flow, logger=Lines())  # type: ignore[arg-type]
    result = run.replay()
    assert result.status == "suspended" and not result.checkpoints
    assert run.issued() == ["hook", "p.0.work", "p.1.other"] and logged == []
    run.succeed("p.0.work", 0)
    run.succeed("p.1.other", 1)
    result = run.replay()
    assert result.output == [0, 1] and logged == ["branch done"]
    assert [c.key for c in result.checkpoints] == ["p.0.count"]
