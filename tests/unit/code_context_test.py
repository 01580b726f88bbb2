"""Every Context method: the step it issues (kind, input, spec), what it returns from a stored
result, and the errors a workflow's author can make."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from code_fake_engine import T0, Fail, FakeRun

from stepwell.code.context import Approval, Context, StepFailed
from stepwell.code.protocol import Issue, Yield


def issue_of(call, input: Any = None) -> Issue:
    """The one step ``call(ctx)`` issues."""
    run = FakeRun(lambda ctx, _: call(ctx), input)
    result = run.replay()
    assert result.status == "suspended", result
    (issue,) = result.issued
    return issue


def answer_of(call, output: Any = None, fail: tuple[str, str] | None = None) -> Yield:
    """What the workflow ``return call(ctx)`` yields once its one step ended like this."""
    run = FakeRun(lambda ctx, _: call(ctx))
    run.replay()
    (key,) = run.issued()
    if fail:
        run.fail(key, *fail)
    else:
        run.succeed(key, output)
    return run.replay()


def failure_of(call) -> str:
    """The message of the error the workflow ``call(ctx)`` fails with at once."""
    result = FakeRun(lambda ctx, _: call(ctx)).replay()
    assert result.status == "failed", result
    assert result.error is not None
    return f"{result.error['type']}: {result.error['message']}"


# -- issued kinds ---------------------------------------------------------------------------


def test_task():
    issue = issue_of(
        lambda ctx: ctx.task(
            "charge",
            function="ChargeFunction",
            input={"amount": 10, "tags": ("a", "b")},
            retry={"max_attempts": 5, "interval": timedelta(seconds=2), "retry_on": ["Flaky"]},
            timeout=timedelta(minutes=5),
        )
    )
    assert (issue.kind, issue.name, issue.key) == ("task", "charge", "charge")
    assert issue.input == {"amount": 10, "tags": ["a", "b"]}
    assert issue.spec == {
        "function": "ChargeFunction",
        "retry": {"max_attempts": 5, "interval": "2s", "retry_on": ["Flaky"]},
        "timeout": "5m",
    }
    assert issue_of(lambda ctx: ctx.task("t", "F")).spec == {"function": "F"}
    assert answer_of(lambda ctx: ctx.task("t", function="F"), {"ok": 1}).output == {"ok": 1}


def test_task_mistakes_are_raised_at_the_call():
    assert "step 't': function must name a Lambda function" in failure_of(
        lambda ctx: ctx.task("t", function="")
    )
    assert "step 't': retry.max_attempts" in failure_of(
        lambda ctx: ctx.task("t", function="F", retry={"max_attempts": 0})
    )
    assert "step 't': retry must be a dict" in failure_of(
        lambda ctx: ctx.task("t", function="F", retry=3)
    )
    assert "TypeError: the input of step 't' is not JSON" in failure_of(
        lambda ctx: ctx.task("t", function="F", input={"when": datetime(2025, 1, 1)})
    )
    message = failure_of(lambda ctx: ctx.task("t", function="F", timeout="soon"))
    assert "step 't': timeout: 'soon' is not a duration: write a duration like 30s" in message


@pytest.mark.parametrize(
    ("concurrency", "problem"),
    [
        (("m", 0), "its limit 0 is not a whole number from 1 to 1000"),
        (("m", True), "its limit True is not a whole number from 1 to 1000"),
        (("${input.m}", 2), "its key '${input.m}' is an expression"),
        ({"key": "m", "limit": 2}, "not a pair (key, limit)"),
    ],
)
def test_a_tasks_concurrency_of_the_wrong_shape_fails_at_the_call_naming_the_fix(
    concurrency: Any, problem: str
) -> None:
    message = failure_of(lambda ctx: ctx.task("t", function="F", concurrency=concurrency))
    assert f"ValueError: step 't': concurrency {concurrency!r}: {problem}" in message
    assert "e.g. concurrency=(input['merchant'], 3)" in message


def test_http_builds_the_runners_parameters():
    issue = issue_of(lambda ctx: ctx.http("ping", "https://example.com/health"))
    assert issue.kind == "http"
    assert issue.input == {
        "method": "GET",
        "url": "https://example.com/health",
        "headers": {},
        "body": None,
        "request_timeout_s": 10.0,
        "secrets": {},
    }
    assert issue.spec == {
        "method": "GET",
        "url": "https://example.com/health",
        "headers": {},
        "request_timeout": "10s",
        "secrets": {},
    }
    issue = issue_of(
        lambda ctx: ctx.http(
            "post",
            f"https://api.example.com/v1?key={ctx.secret('KEY')}",
            method="POST",
            body={"token": ctx.secret("TOKEN")},
            request_timeout="PT30S",
            secrets={"KEY": "prod/key", "TOKEN": "prod/token"},
            retry={"max_attempts": 3, "retry_on": ["HttpServerError"]},
            timeout="2m",
        )
    )
    assert issue.input["url"] == "https://api.example.com/v1?key={{secret:KEY}}"
    assert issue.input["body"] == {"token": "{{secret:TOKEN}}"}
    assert issue.input["request_timeout_s"] == 30.0
    assert issue.spec["request_timeout"] == "PT30S"
    assert issue.spec["retry"] == {"max_attempts": 3, "retry_on": ["HttpServerError"]}
    assert issue.spec["timeout"] == "2m"


def test_http_mistakes():
    message = failure_of(
        lambda ctx: ctx.http("h", "https://x", headers={"Authorization": ctx.secret("TOKEN")})
    )
    assert "step 'h' uses secret 'TOKEN' without declaring it" in message
    assert "secret name 'a b'" in failure_of(lambda ctx: ctx.secret("a b"))
    assert "step 'h': method" in failure_of(lambda ctx: ctx.http("h", "https://x", method="GO"))


def test_notify():
    issue = issue_of(lambda ctx: ctx.notify("announce", "order.shipped", {"id": 7}))
    assert issue.kind == "notify"
    assert issue.input == {
        "detail_type": "order.shipped",
        "detail": {"id": 7},
        "source": "stepwell",
    }
    assert issue.spec == {"detail_type": "order.shipped", "source": "stepwell"}


def test_agent():
    issue = issue_of(
        lambda ctx: ctx.agent(
            "summarise", "Summarise this", "anthropic.claude-3-haiku", system="Be brief"
        )
    )
    assert issue.kind == "agent"
    assert issue.input == {
        "model": "anthropic.claude-3-haiku",
        "prompt": "Summarise this",
        "system": "Be brief",
        "max_tokens": 1024,
        "budget_usd": None,
    }
    assert issue.spec == {
        "model": "anthropic.claude-3-haiku",
        "prompt": "Summarise this",
        "max_tokens": 1024,
        "system": "Be brief",
    }
    budget = issue_of(lambda ctx: ctx.agent("a", "p", "m", budget_usd=0.5, max_tokens=50))
    assert (budget.input["budget_usd"], budget.spec["budget_usd"]) == (0.5, 0.5)
    assert "step 'a': budget_usd" in failure_of(lambda ctx: ctx.agent("a", "p", "m", budget_usd=-1))


def test_shell():
    issue = issue_of(lambda ctx: ctx.shell("list", "ls -la '/tmp/a b'"))
    assert issue.kind == "shell"
    # Split when the code calls it: the runner gets arguments, the record shows them.
    assert issue.input == {"command": ["ls", "-la", "/tmp/a b"], "timeout_s": 60.0}
    assert issue.spec == {"command": ["ls", "-la", "/tmp/a b"], "timeout": "60s"}
    assert "step 'q': the command cannot be split into arguments (no closing quotation)" in (
        failure_of(lambda ctx: ctx.shell("q", "echo 'unbalanced"))
    )
    argv = issue_of(lambda ctx: ctx.shell("git", ("git", "status"), timeout=timedelta(minutes=2)))
    assert argv.input == {"command": ["git", "status"], "timeout_s": 120.0}
    assert argv.spec == {"command": ["git", "status"], "timeout": "2m"}
    assert "command must be a string or a list of strings" in failure_of(
        lambda ctx: ctx.shell("bad", ["ls", 3])
    )
    result = {"exit_code": 0, "stdout": "ok\n", "stderr": ""}
    assert answer_of(lambda ctx: ctx.shell("s", "true"), result).output == result


def test_child_workflow():
    issue = issue_of(lambda ctx: ctx.workflow("child", workflow="fulfil", input={"id": 1}))
    assert (issue.kind, issue.input, issue.spec) == ("workflow", {"id": 1}, {"workflow": "fulfil"})
    timed = issue_of(lambda ctx: ctx.workflow("child", "fulfil", timeout="1h"))
    assert timed.spec == {"workflow": "fulfil", "timeout": "1h"}
    assert answer_of(lambda ctx: ctx.workflow("c", "w"), {"out": 2}).output == {"out": 2}
    failed = answer_of(lambda ctx: ctx.workflow("c", "w"), fail=("ChildRunFailed", "run x"))
    assert failed.error == {
        "type": "StepFailed",
        "message": "step 'c' failed: ChildRunFailed: run x",
    }


# -- waits ----------------------------------------------------------------------------------


def test_sleep_writes_durations_as_the_engine_reads_them():
    assert issue_of(lambda ctx: ctx.sleep("s", "90s")).spec == {"duration": "90s"}
    assert issue_of(lambda ctx: ctx.sleep("s", "PT5M")).spec == {"duration": "PT5M"}
    assert issue_of(lambda ctx: ctx.sleep("s", timedelta(minutes=90))).spec == {"duration": "1h30m"}
    assert issue_of(lambda ctx: ctx.sleep("s", 45)).spec == {"duration": "45s"}
    assert issue_of(lambda ctx: ctx.sleep("s", "7d")).kind == "delay"
    assert answer_of(lambda ctx: ctx.sleep("s", "1s")).output is None
    assert "is negative" in failure_of(lambda ctx: ctx.sleep("s", timedelta(seconds=-1)))


def test_sleep_until():
    moment = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    assert issue_of(lambda ctx: ctx.sleep_until("s", moment)).spec == {
        "until": "2025-03-01T08:00:00+00:00"
    }
    assert issue_of(lambda ctx: ctx.sleep_until("s", "2025-03-01T08:00:00Z")).spec == {
        "until": "2025-03-01T08:00:00+00:00"
    }
    assert "needs a time with a time zone" in failure_of(
        lambda ctx: ctx.sleep_until("s", datetime(2025, 3, 1))
    )
    assert "is not an ISO 8601 time" in failure_of(lambda ctx: ctx.sleep_until("s", "tomorrow"))


def test_approval_issues_a_step_that_continues_on_rejection():
    issue = issue_of(lambda ctx: ctx.approval("go"))
    assert issue.kind == "approval"
    assert issue.input is None
    assert issue.spec == {
        "message": "Approval requested",
        "approvers": [],
        "quorum": 1,
        "timeout": "7d",
        "on_timeout": "fail",
        "on_reject": "continue",
    }
    two = issue_of(
        lambda ctx: ctx.approval(
            "go", "Ship?", ["a@x", "b@x"], quorum=2, timeout=None, on_timeout="approve"
        )
    )
    assert two.spec["approvers"] == ["a@x", "b@x"]
    assert (two.spec["timeout"], two.spec["on_timeout"]) == (None, "approve")
    assert issue_of(lambda ctx: ctx.approval("go", approvers="a@x")).spec["approvers"] == ["a@x"]
    message = failure_of(lambda ctx: ctx.approval("go", approvers=["a@x"], quorum=2))
    assert "step 'go'" in message
    assert "quorum 2 is more than the 1 approvers named" in message


def test_approval_takes_reminders_escalations_and_forbid_self_approval():
    issue = issue_of(
        lambda ctx: ctx.approval(
            "go",
            approvers=[{"group": "finance"}],
            remind=timedelta(hours=4),
            escalate=[{"after": "1d", "to": "cfo@x"}, {"after": 172800, "action": "reject"}],
            forbid_self_approval=True,
        )
    )
    assert issue.spec["remind"] == "4h"
    assert issue.spec["escalate"] == [
        {"after": "1d", "to": ["cfo@x"]},
        {"after": "2d", "action": "reject"},
    ]
    assert issue.spec["forbid_self_approval"] is True
    late = failure_of(
        lambda ctx: ctx.approval("go", approvers=["a@x"], escalate=[{"after": "8d", "to": ["b@x"]}])
    )
    assert "step 'go'" in late and "never comes" in late
    wrong = failure_of(lambda ctx: ctx.approval("go", escalate={"after": "1d"}))  # type: ignore[arg-type]
    assert "escalate is a list" in wrong


def test_input_issues_a_form_step_whose_answer_the_code_gets():
    form = {"type": "object", "required": ["boxes"], "properties": {"boxes": {"type": "integer"}}}
    issue = issue_of(lambda ctx: ctx.input("details", form=form, assignees={"group": "ops"}))
    assert issue.kind == "input"
    assert issue.spec == {
        "message": "Input requested",
        "assignees": [{"group": "ops"}],
        "form": form,
        "timeout": "7d",
    }
    answer = answer_of(lambda ctx: ctx.input("details", form=form), {"boxes": 3})
    assert answer.output == {"boxes": 3}
    broken = failure_of(lambda ctx: ctx.input("details", form={"type": "nope"}))
    assert "step 'details': form is not a valid JSON Schema" in broken


def decide(output: Any) -> Any:
    def call(ctx: Context) -> Any:
        decision = ctx.approval("go", approvers=["a@x", "b@x"])
        assert isinstance(decision, Approval)
        return [decision.approved, decision.decision, decision.approver, decision.comment,
                decision.timed_out, len(decision.decisions)]  # fmt: skip

    return answer_of(call, output).output


def test_approval_returns_the_decision():
    approve = {"approver": "a@x", "decision": "approved", "comment": "go", "at": "t"}
    reject = {"approver": "b@x", "decision": "rejected", "comment": "no", "at": "t"}
    approved = {"approved": True, "decisions": [approve], "timed_out": False}
    assert decide(approved) == [True, "approved", "a@x", "go", False, 1]
    rejected = {"approved": False, "decisions": [approve, reject], "timed_out": False}
    assert decide(rejected) == [False, "rejected", "b@x", "no", False, 2]
    timed_out = {"approved": True, "decisions": [], "timed_out": True}
    assert decide(timed_out) == [True, "approved", None, None, True, 0]


def test_an_approval_that_expires_with_on_timeout_fail_raises():
    result = answer_of(
        lambda ctx: ctx.approval("go"),
        fail=("ApprovalTimedOut", "no decision before the approval expired"),
    )
    assert result.error == {
        "type": "StepFailed",
        "message": "step 'go' failed: ApprovalTimedOut: no decision before the approval expired",
    }


def test_wait_for_callback():
    issue = issue_of(lambda ctx: ctx.wait_for_callback("signed"))
    assert (issue.kind, issue.input, issue.spec) == ("callback", None, {"timeout": "1d"})
    beat = issue_of(lambda ctx: ctx.wait_for_callback("signed", timeout="2h", heartbeat="5m"))
    assert beat.spec == {"timeout": "2h", "heartbeat": "5m"}
    assert issue_of(lambda ctx: ctx.wait_for_callback("s", timeout=None)).spec == {"timeout": None}
    payload = {"signed_by": "ann"}
    assert answer_of(lambda ctx: ctx.wait_for_callback("s"), payload).output == payload
    failed = answer_of(lambda ctx: ctx.wait_for_callback("s"), fail=("CallbackTimedOut", "late"))
    assert failed.error is not None
    assert "CallbackTimedOut: late" in failed.error["message"]


# -- inline steps ---------------------------------------------------------------------------


def test_an_inline_step_runs_once_and_its_result_is_replayed():
    calls: list[int] = []

    def price(n: int) -> tuple[int, int]:
        calls.append(n)
        return (n, n * 2)

    def flow(ctx: Context, input: Any) -> Any:
        value = ctx.step("price", price, 21)
        ctx.task("charge", function="F", input=value)
        return value

    run = FakeRun(flow)
    first = run.replay()
    assert first.checkpoints[0].output == [21, 42]
    assert first.issued[0].input == [21, 42]  # the JSON form already on the first run
    run.succeed("charge")
    assert run.replay().output == [21, 42]
    assert calls == [21]


def test_an_inline_step_result_must_be_json():
    message = failure_of(lambda ctx: ctx.step("when", object))
    assert message.startswith("TypeError: the result of step 'when' is not JSON")


def test_an_inline_step_is_retried_in_the_replay():
    calls: list[int] = []

    def flaky() -> str:
        calls.append(1)
        if len(calls) < 3:
            raise ConnectionError("down")
        return "up"

    run = FakeRun(
        lambda ctx, _: ctx.step(
            "fetch", flaky, retry={"max_attempts": 5, "interval": "1s", "jitter": "none"}
        )
    )
    assert run.replay().output == "up"
    assert run.sleeps == [1.0, 2.0]
    assert len(calls) == 3


def test_inline_retry_waits_are_capped_and_the_last_failure_is_recorded():
    def down() -> None:
        raise ConnectionError("still down")

    caught: list[StepFailed] = []

    def flow(ctx: Context, input: Any) -> str:
        try:
            ctx.step("fetch", down, retry={"max_attempts": 4, "interval": "20s", "jitter": "none"})
        except StepFailed as exc:
            caught.append(exc)
            return "gave up"
        return "fetched"

    run = FakeRun(flow)
    result = run.replay()
    assert result.output == "gave up"
    assert run.sleeps == [20.0, 10.0]  # 20s + 40s + 80s asked, 30s in all given
    (checkpoint,) = result.checkpoints
    assert (checkpoint.status, checkpoint.error) == (
        "failed",
        {"type": "ConnectionError", "message": "still down"},
    )
    assert caught[0].error_type == "ConnectionError"
    assert run.replay().output == "gave up"  # replayed from the record, not run again
    assert run.sleeps == [20.0, 10.0]


def test_inline_retry_respects_retry_on_and_full_jitter_is_seeded():
    def bad() -> None:
        raise ValueError("bad input")

    run = FakeRun(
        lambda ctx, _: ctx.step("parse", bad, retry={"max_attempts": 3, "retry_on": ["Timeout"]})
    )
    assert run.replay().error == {
        "type": "StepFailed",
        "message": "step 'parse' failed: ValueError: bad input",
    }
    assert run.sleeps == []

    def jittered() -> list[float]:
        run = FakeRun(lambda ctx, _: ctx.step("s", bad, retry={"max_attempts": 3}))
        run.replay()
        return run.sleeps

    assert jittered() == jittered()
    assert len(jittered()) == 2
    assert "step 's': retry: max_attempts" in failure_of(
        lambda ctx: ctx.step("s", bad, retry={"max_attempts": "many"})
    )


@dataclass(frozen=True)
class Lock:
    kind: str
    resource: str

    def execute(self) -> dict[str, str]:
        return {"locked": self.resource}


def test_an_operation_is_an_inline_step_recorded_with_its_own_kind():
    run = FakeRun(lambda ctx, _: ctx.operation("take", Lock("lock", "db")))
    result = run.replay()
    assert result.output == {"locked": "db"}
    (checkpoint,) = result.checkpoints
    assert (checkpoint.kind, checkpoint.operation, checkpoint.output) == (
        "operation",
        "lock",
        {"locked": "db"},
    )
    assert run.journal["take"].kind == "operation"
    assert "is not an operation" in failure_of(lambda ctx: ctx.operation("x", object()))


# -- deterministic values -------------------------------------------------------------------


def test_now_is_recorded_once_and_replayed():
    def flow(ctx: Context, input: Any) -> list[str]:
        first = ctx.now()
        ctx.task("wait", function="F")
        second = ctx.now()
        assert first.tzinfo is not None
        return [first.isoformat(), second.isoformat()]

    run = FakeRun(flow)
    run.replay()  # at T0 + 1m
    run.succeed("wait")
    result = run.replay()  # at T0 + 2m
    assert result.output == [
        (T0 + timedelta(minutes=1)).isoformat(),
        (T0 + timedelta(minutes=2)).isoformat(),
    ]
    assert [(c.key, c.kind, c.name) for c in run.yields[0].checkpoints] == [("$now", "now", "$now")]
    assert run.issues["wait"].after == []  # ctx.now() draws no edge
    assert result.checkpoints[0].key == "$now~2"
    assert result.checkpoints[0].after == ["wait"]


def test_uuid_and_random_are_stable_across_replays_and_differ_between_calls():
    seen: list[list[Any]] = []

    def flow(ctx: Context, input: Any) -> None:
        values = [str(ctx.uuid()), str(ctx.uuid()), ctx.random(), ctx.random()]
        values += ctx.parallel("p", [lambda c: [str(c.uuid()), c.random()]])
        seen.append(values)
        ctx.task("wait", function="F")

    run = FakeRun(flow)
    run.replay()
    run.replay()
    assert seen[0] == seen[1]
    first_uuid, second_uuid, first_random, second_random, branch = seen[0]
    assert first_uuid != second_uuid
    assert first_random != second_random
    assert 0 <= first_random < 1
    assert branch[0] not in (first_uuid, second_uuid)
    other = FakeRun(flow, run_id="run-2")
    other.replay()
    assert seen[-1][0] != first_uuid


def test_the_run_figures():
    def flow(ctx: Context, input: Any) -> Any:
        return [
            ctx.run_id,
            ctx.workflow_name,
            ctx.replay,
            ctx.cost_usd,
            ctx.input_tokens,
            ctx.output_tokens,
            ctx.started_at.isoformat() if ctx.started_at else None,
            ctx.scope,
            ctx.parallel("p", [lambda c: c.scope]),
        ]

    info = {"cost_usd": 0.25, "input_tokens": 100, "output_tokens": 20}
    result = FakeRun(flow, run_id="r-9", workflow="orders", info=info).replay()
    assert result.output == [
        "r-9",
        "orders",
        1,
        0.25,
        100,
        20,
        T0.isoformat(),
        "",
        ["p.0."],
    ]


# -- names and misuse -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("", "ctx.task: the step name '' is not a non-empty string"),
        ("  ", "is not a non-empty string"),
        (None, "the step name None is not a non-empty string"),
        ("x" * 81, "is 81 characters long: keep step names to 80 characters"),
        ("build/test", "contains '/', which step keys reserve"),
        ("build~2", "call it 'build-2' instead"),
        ("v1.2", "call it 'v1-2' instead"),
        ("items[0]", "contains '[' and ']'"),
        ("$now", "starts with '$', which marks Stepwell's own records: call it 'now' instead"),
    ],
)
def test_bad_step_names_are_refused_with_the_fix(name, expected):
    message = failure_of(lambda ctx: ctx.task(name, function="F"))
    assert message.startswith("ValueError: ctx.task: the step name")
    assert expected in message


def test_names_are_checked_for_every_kind_of_call():
    assert "ctx.parallel: the step name 'a/b'" in failure_of(lambda ctx: ctx.parallel("a/b", []))
    assert "ctx.step: the step name ''" in failure_of(lambda ctx: ctx.step("", lambda: 1))
    assert "x" * 80 in issue_of(lambda ctx: ctx.task("x" * 80, function="F")).key


def test_the_context_is_dead_once_the_workflow_returned():
    kept: list[Context] = []

    def flow(ctx: Context, input: Any) -> None:
        kept.append(ctx)

    FakeRun(flow).replay()
    with pytest.raises(Exception, match="called after the workflow function returned"):
        kept[0].task("late", function="F")


def test_an_inline_step_cannot_make_steps():
    def flow(ctx: Context) -> Any:
        return ctx.step("outer", lambda: ctx.task("inner", function="F"))

    message = failure_of(flow)
    assert message.startswith("ContextError: ctx.task was called inside inline step 'outer'")
    run = FakeRun(lambda ctx, _: flow(ctx))
    assert run.replay().checkpoints == []  # a bug, not a step failure: nothing recorded


# -- the replay-aware logger ----------------------------------------------------------------


class Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


def capture() -> tuple[logging.Logger, Lines]:
    logger = logging.getLogger(f"test.code.{id(object())}")
    logger.setLevel(logging.DEBUG)
    logger.propagate = False
    handler = Lines()
    logger.addHandler(handler)
    return logger, handler


def test_the_logger_writes_each_line_once_across_replays():
    def flow(ctx: Context, input: Any) -> None:
        ctx.logger.info("start")
        built = ctx.task("build", function="F")
        ctx.logger.info("built %s", built)
        ctx.step("note", lambda: ctx.logger.debug("inside the step") or 1)
        ctx.sleep("pause", "1m")
        ctx.logger.warning("resumed")
        ctx.logger.error("error line")
        ctx.logger.critical("critical line")
        try:
            raise ValueError("x")
        except ValueError:
            ctx.logger.exception("exception line")

    logger, handler = capture()
    run = FakeRun(flow, logger=logger)
    run.drive(lambda issue: "v1")
    assert handler.lines == [
        "start",
        "built v1",
        "inside the step",
        "resumed",
        "error line",
        "critical line",
        "exception line",
    ]
    assert len(run.yields) == 3


def test_the_logger_in_branches():
    def branch(i: int):
        def run(c: Context) -> None:
            c.logger.info(f"b{i} start")
            c.task("t", function="F")
            c.logger.info(f"b{i} done")

        return run

    def flow(ctx: Context, input: Any) -> None:
        ctx.parallel("p", [branch(0), branch(1)])
        ctx.logger.info("joined")
        ctx.task("last", function="F")
        ctx.logger.info("end")

    logger, handler = capture()
    run = FakeRun(flow, logger=logger)
    run.replay()
    run.succeed("p.0.t")
    run.replay()
    run.succeed("p.1.t")
    run.replay()
    run.succeed("last")
    run.replay()
    # "b0 done" repeats once: when branch 1 ended, nothing in the records could tell that
    # branch 0 had already ended in the replay before (see docs/code-first.md).
    assert handler.lines == [
        "b0 start",
        "b1 start",
        "b0 done",
        "b0 done",
        "b1 done",
        "joined",
        "end",
    ]


def test_a_replay_without_a_logger_uses_the_workflow_logger(caplog):
    caplog.set_level(logging.INFO, logger="stepwell.workflow")
    FakeRun(lambda ctx, _: ctx.logger.info("hello")).replay()
    assert [r.getMessage() for r in caplog.records if r.name == "stepwell.workflow"] == ["hello"]


def test_a_record_in_flight_for_an_inline_kind_suspends():
    # Not something the engine writes (checkpoints are written ended), but never re-run it.
    run = FakeRun(lambda ctx, _: ctx.step("s", lambda: 1))
    run.replay()
    run.journal["s"] = replace(run.journal["s"], status="running")
    assert run.replay().status == "suspended"


def test_things_that_must_be_callable_or_counted():
    assert "step 's': 3 is not callable" in failure_of(lambda ctx: ctx.step("s", 3))
    assert "parallel 'p': branch 3 is not callable" in failure_of(
        lambda ctx: ctx.parallel("p", [3])
    )
    assert "map 'm': 3 is not callable" in failure_of(lambda ctx: ctx.map("m", [1], 3))
    assert "tolerated_failures: -1 is negative" in failure_of(
        lambda ctx: ctx.map("m", [1], lambda c, i: i, tolerated_failures=-1)
    )


def test_is_replaying_follows_the_records():
    seen: list[tuple[bool, bool]] = []

    def flow(ctx: Context, input: Any) -> None:
        before = ctx.is_replaying
        ctx.task("t", function="F")
        seen.append((before, ctx.logger.replaying))

    run = FakeRun(flow)
    run.replay()
    run.succeed("t")
    run.replay()
    assert seen == [(True, False)]  # replay 2: replaying before "t", live after it


# -- a callback opened now and awaited later ------------------------------------------------


def test_create_callback_opens_the_wait_and_goes_on_until_its_result_is_asked() -> None:
    def flow(ctx: Context, _: Any) -> Any:
        job = ctx.create_callback("export_done", timeout="2h")
        ctx.task("start_export", function="ExportFunction", input={"url": job.url})
        return {"report": job.result(), "ends": job.expires_at.isoformat()}

    run = FakeRun(flow)
    first = run.replay()
    assert [i.key for i in first.issued] == ["export_done", "start_export"]  # both at once
    callback = run.issues["export_done"]
    assert callback.kind == "callback" and callback.spec["timeout"] is None
    ends = datetime.fromisoformat(callback.spec["until"])
    assert ends == T0 + timedelta(minutes=1, hours=2)  # fixed when the code reached it
    run.succeed("start_export", {"started": True})
    run.journal["export_done"] = replace(
        run.journal["export_done"], status="waiting", expires_at=ends.isoformat()
    )
    assert run.replay().status == "suspended"  # the answer has not come
    run.succeed("export_done", {"rows": 3})
    done = run.replay()
    assert done.status == "completed"
    assert done.output == {"report": {"rows": 3}, "ends": ends.isoformat()}


def test_create_callback_hands_out_the_link_the_replay_signs() -> None:
    made: list[tuple[str, datetime]] = []

    def links(key: str, expires: datetime) -> dict[str, str]:
        made.append((key, expires))
        return {"token": f"tok-{key}", "url": f"https://api/callbacks/tok-{key}"}

    seen: list[Any] = []

    def flow(ctx: Context, _: Any) -> Any:
        job = ctx.create_callback("approve_elsewhere")
        seen.append((job.token, job.url))
        return job.result()

    from stepwell.code.context import replay
    from stepwell.code.protocol import RunInfo

    info = RunInfo(run_id="run-1", workflow="w", replay=1, started_at=T0.isoformat())
    result = replay(flow, None, {}, info, T0, links=links)
    assert result.status == "suspended"
    assert seen == [("tok-approve_elsewhere", "https://api/callbacks/tok-approve_elsewhere")]
    assert made == [("approve_elsewhere", T0 + timedelta(days=1))]


# -- child blocks ----------------------------------------------------------------------------


def test_a_child_block_runs_in_its_own_scope_and_is_recorded_as_one_result() -> None:
    calls: list[int] = []

    def build(c: Context) -> Any:
        calls.append(1)
        image = c.task("build", function="BuildFunction")
        c.task("scan", function="ScanFunction", input=image)
        return {"image": image}

    def flow(ctx: Context, _: Any) -> Any:
        built = ctx.child("release", build)
        return ctx.task("deploy", function="DeployFunction", input=built)

    run = FakeRun(flow)
    result = run.drive(
        lambda issue: {"build": "img-1", "scan": "clean", "deploy": "ok"}[issue.name]
    )
    assert result.status == "completed" and result.output == "ok"
    assert list(run.issues) == ["release.0.build", "release.0.scan", "deploy"]
    assert run.journal["release"].kind == "child"
    assert run.journal["release"].output == {"image": "img-1"}
    assert run.issues["deploy"].after == ["release"]
    runs_before = len(calls)
    run.replay()
    assert len(calls) == runs_before  # a recorded block is not run again


def test_a_failed_child_block_is_recorded_and_raised() -> None:
    def flow(ctx: Context, _: Any) -> Any:
        try:
            ctx.child("block", lambda c: c.task("t", function="F"))
        except StepFailed as failed:
            return failed.step
        return None

    run = FakeRun(flow)
    result = run.drive(lambda issue: Fail("Broken", "no"))
    assert result.output == "block"
    assert run.journal["block"].status == "failed"


def test_continue_as_new_ends_the_replay_with_the_next_runs_input() -> None:
    def flow(ctx: Context, state: Any) -> Any:
        page = ctx.task("page", function="PageFunction", input=state)
        if page["more"]:
            ctx.continue_as_new({"cursor": page["next"]})
        return "done"

    run = FakeRun(flow, {"cursor": 0})
    result = run.drive(lambda issue: {"more": True, "next": 7})
    assert result.status == "continued"
    assert result.output == {"cursor": 7}
    assert "continue_as_new" in failure_of(lambda ctx: ctx.continue_as_new({1, 2}))


# -- wait_for_condition ------------------------------------------------------------------------


def test_wait_for_condition_checks_with_backoff_on_one_record_until_it_holds() -> None:
    answers = iter(["queued", "running", "running", "done"])
    seen: list[str] = []

    def check() -> str:
        value = next(answers)
        seen.append(value)
        return value

    def flow(ctx: Context, _: Any) -> Any:
        return ctx.wait_for_condition(
            "export", check, done=lambda s: s == "done", interval="10s", backoff=2, timeout="1h"
        )

    run = FakeRun(flow)
    first = run.replay()
    assert first.status == "suspended"
    (issue,) = first.issued
    assert issue.kind == "poll" and issue.spec["checks"] == 1
    assert datetime.fromisoformat(issue.spec["next"]) == run.now + timedelta(seconds=10)
    waits = []
    while True:
        record = run.journal["export"]
        run.now = datetime.fromisoformat(record.expires_at)  # the timer fires on time
        run.now -= timedelta(minutes=1)  # (replay() adds a minute)
        result = run.replay()
        if result.status != "suspended":
            break
        waits.append(run.journal["export"].output["checks"])
    assert result.status == "completed" and result.output == "done"
    assert seen == ["queued", "running", "running", "done"]
    assert list(run.journal) == ["export"]  # one record, however many checks
    assert run.journal["export"].status == "succeeded"
    assert run.issues["export"].spec["checks"] == 3  # waits of 10 s, 20 s, 40 s


def test_wait_for_condition_suspends_without_checking_before_it_is_due() -> None:
    calls: list[int] = []

    def flow(ctx: Context, _: Any) -> Any:
        return ctx.wait_for_condition("ready", lambda: calls.append(1) or False, interval="1h")

    run = FakeRun(flow)
    run.replay()
    assert run.replay().status == "suspended"  # a replay a minute later: not due
    assert len(calls) == 1


def checks_until_it_gives_up(**pacing: Any) -> tuple[list[float], datetime]:
    """The seconds after the first check at which a never-met condition is checked, and when
    it fails, each timer firing on time."""

    def flow(ctx: Context, _: Any) -> Any:
        return ctx.wait_for_condition("never", lambda: False, **pacing)

    run = FakeRun(flow)
    run.now = T0 - timedelta(minutes=1)  # (replay() adds a minute)
    checks: list[float] = []
    while True:
        checks.append((run.now + timedelta(minutes=1) - T0).total_seconds())
        result = run.replay()
        if result.status != "suspended":
            break
        run.now = datetime.fromisoformat(run.journal["never"].expires_at) - timedelta(minutes=1)
    assert result.status == "failed" and result.error is not None
    assert "ConditionTimedOut" in result.error["message"]
    return checks, run.now


def test_wait_for_condition_checks_last_at_its_deadline_and_not_before() -> None:
    checks, failed_at = checks_until_it_gives_up(interval="2s", backoff=1, timeout="5s")
    assert checks == [0, 2, 4, 5]  # the last wait is cut to the second left
    assert failed_at == T0 + timedelta(seconds=5)
    # A long max_interval never makes it give up early either.
    checks, _ = checks_until_it_gives_up(interval="20m", max_interval="1h", timeout="30m")
    assert checks == [0, 1200, 1800]


def test_wait_for_condition_times_out_and_a_check_that_raises_fails_it() -> None:
    def flow(ctx: Context, _: Any) -> Any:
        return ctx.wait_for_condition(
            "never", lambda: False, interval="20m", max_interval="1h", timeout="30m"
        )

    run = FakeRun(flow)
    run.replay()
    for _ in range(2):  # checks at 20 m and (the wait cut to what is left) at 30 m
        run.now = datetime.fromisoformat(run.journal["never"].expires_at) - timedelta(minutes=1)
        result = run.replay()
    assert result.status == "failed" and result.error is not None
    assert "ConditionTimedOut" in result.error["message"]
    assert "not met after 3 checks within 0:30:00" in result.error["message"]

    def broken() -> bool:
        raise ConnectionError("status page down")

    assert "ConnectionError" in failure_of(lambda ctx: ctx.wait_for_condition("x", broken))


def test_a_cancel_is_raised_at_the_next_step_once_and_clean_up_steps_are_issued() -> None:
    from stepwell import RunCancelled

    def flow(ctx: Context, _: Any) -> Any:
        try:
            ctx.task("work", function="WorkFunction")
        except RunCancelled as cancelled:
            ctx.task("undo", function="UndoFunction", input=cancelled.reason)
            raise
        return "done"

    run = FakeRun(flow, info={"cancelled": "by ops"})
    result = run.replay()
    assert result.status == "suspended"
    assert [i.key for i in result.issued] == ["undo"]  # work was never started
    assert run.issues["undo"].input == "by ops"
    run.succeed("undo")
    result = run.replay()
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "RunCancelled"
