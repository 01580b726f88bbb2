"""The engine's side of code-first runs: replays, the steps they issue, and waking them.

The replay's answers (Yields) are written by hand here, so these tests pin the engine's contract
without the Context; tests/unit/code_*_test.py test the Context and the replay themselves.
"""

from __future__ import annotations

from typing import Any

from helpers import EngineDriver
from stepwell.code.protocol import WORKFLOW_KEY, Checkpoint, Issue, Yield
from stepwell.definition.models import Workflow
from stepwell.engine import core
from stepwell.engine.events import StepSucceeded, TimerFired

W = WORKFLOW_KEY
CODE = Workflow(name="code-flow", steps={}, code="flow.py:flow", code_version="1")


def driver(**kw: Any) -> EngineDriver:
    return EngineDriver(CODE, {"n": 1}, **kw)


def suspended(*issued: Issue, checkpoints: tuple[Checkpoint, ...] = ()) -> dict[str, Any]:
    return Yield("suspended", issued=list(issued), checkpoints=list(checkpoints)).to_dict()


def task(key: str, position: int = 0, after: tuple[str, ...] = (), **spec: Any) -> Issue:
    return Issue(key, key, "task", position, {"x": key}, {"function": "Fn", **spec}, list(after))


def test_a_run_starts_with_a_replay_run_by_the_runner() -> None:
    run = driver()
    (dispatch,) = run.dispatches()
    assert (dispatch.key, dispatch.step_type, dispatch.function) == (W, "code", None)
    assert run.status(W) == "running" and run.run.open_steps == 1


def test_issued_steps_start_and_their_end_replays_the_code() -> None:
    run = driver()
    run.succeed(W, suspended(task("a")))
    assert run.status(W) == "waiting" and run.step(W).waiting_for == "steps"
    (a,) = run.dispatches("a")
    assert (a.step_type, a.function, a.input) == ("task", "Fn", {"x": "a"})
    assert run.step("a").name == "a" and run.step("a").spec == {"function": "Fn", "type": "task"}
    run.succeed("a", {"ok": 1})
    assert [d.attempt for d in run.dispatches(W)] == [1, 2]
    run.succeed(W, Yield("completed", output={"done": True}).to_dict())
    assert run.run.status == "succeeded" and run.run.output == {"done": True}
    assert run.run.open_steps == 0


def test_a_failed_step_wakes_the_code_instead_of_failing_the_run() -> None:
    run = driver()
    run.succeed(W, suspended(task("a")))
    run.fail("a", "Boom")
    assert run.status("a") == "failed" and run.run.status == "running"
    assert len(run.dispatches(W)) == 2  # the code gets the failure and decides


def test_the_code_raising_fails_the_run_with_its_error() -> None:
    run = driver()
    run.succeed(W, Yield("failed", error={"type": "OrderRejected", "message": "no"}).to_dict())
    assert run.run.status == "failed"
    assert run.run.error == {"type": "OrderRejected", "message": "no", "step": W}


def test_a_failure_with_no_name_ends_the_run_with_none_and_says_so_on_the_timeline() -> None:
    # A Step Functions Fail state without Error: the execution fails with no error name.
    run = driver()
    run.succeed(W, Yield("failed", error={"type": None, "message": "gave up"}).to_dict())
    assert run.run.error == {"type": None, "message": "gave up", "step": W}
    messages = [e.message for e in run.timeline]
    assert "failed: no error name: gave up" in messages, messages


def test_a_step_ending_during_a_replay_sets_wake_and_the_next_replay_follows_at_once() -> None:
    run = driver()
    run.succeed(W, suspended(task("a"), task("b", 0)))
    run.succeed("a")  # replay 2 starts
    run.succeed("b")  # while replay 2 runs
    assert run.step(W).wake is True and len(run.dispatches(W)) == 2
    run.succeed(W, suspended())  # replay 2 did not see b: suspend, but wake says go again
    assert len(run.dispatches(W)) == 3 and run.step(W).wake is False


def test_checkpoints_become_ended_records_with_their_kind() -> None:
    run = driver()
    checkpoint = Checkpoint("notes", "notes", "step", 0, "succeeded", "text", None, None, [])
    failed = Checkpoint(
        "op", "op", "operation", 1, "failed", None, {"type": "E", "message": "m"}, "s3-copy", []
    )
    run.succeed(W, suspended(task("a", 2, after=("notes",)), checkpoints=(checkpoint, failed)))
    notes, op = run.step("notes"), run.step("op")
    assert (notes.status, notes.output, notes.spec) == ("succeeded", "text", {"type": "step"})
    assert (op.status, op.spec) == ("failed", {"type": "operation", "operation": "s3-copy"})
    assert run.step("a").after == ["notes"] and run.step("a").position == 2
    assert run.run.status == "running"


def test_waits_and_child_runs_are_issued_like_yaml_steps() -> None:
    run = driver()
    run.succeed(
        W,
        suspended(
            Issue("bake", "bake", "delay", 0, None, {"duration": "10m"}),
            Issue("ok", "ok", "approval", 0, None, {"approvers": ["a@example.com"]}),
            Issue("hook", "hook", "callback", 0, None, {"timeout": "1h"}),
        ),
    )
    assert run.step("bake").waiting_for == "delay" and run.timers("bake")
    assert run.step("ok").waiting_for == "approval"
    assert run.step("hook").waiting_for == "callback"
    run.fire("bake")
    assert run.status("bake") == "succeeded" and len(run.dispatches(W)) == 2


def test_an_invalid_issued_step_fails_with_a_message_naming_it_and_the_code_decides() -> None:
    run = driver()
    run.succeed(W, suspended(Issue("x", "x", "delay", 0, None, {"duration": "soon"})))
    assert run.status("x") == "failed"
    assert run.step("x").error["type"] == "InvalidStep"
    assert "step 'x' (delay)" in run.step("x").error["message"]
    assert len(run.dispatches(W)) == 2  # woken at once: the failure is the code's to handle


def test_a_replay_waiting_for_nothing_fails_the_run() -> None:
    run = driver()
    run.succeed(W, suspended())
    assert run.run.status == "failed" and run.run.error["type"] == "ReplayStuck"


def test_a_crashed_replay_is_retried_and_each_replay_has_its_own_retries() -> None:
    run = driver()
    run.succeed(W, suspended(task("a")))
    run.succeed("a")  # replay attempt 2
    run.fail(W, "ImportError")
    assert run.status(W) == "retrying"
    run.fire(W)
    assert [d.attempt for d in run.dispatches(W)] == [1, 2, 3]
    run.fail(W, "ImportError")
    run.fire(W)
    run.fail(W, "ImportError")  # the third failure of this replay (not the fifth attempt)
    assert run.run.status == "failed" and run.run.error["type"] == "ImportError"


def test_a_repeated_answer_is_ignored_by_fencing() -> None:
    run = driver()
    answer = suspended(task("a"))
    run.succeed(W, answer)
    again = run.send(StepSucceeded(W, 1, answer))
    assert [e.type for e in again.timeline] == ["duplicate_ignored"]
    # The replay step is waiting now: a second answer changes nothing but its note (written
    # on the replay's step alone, not on the run).
    assert [(s.key, s.status) for s in again.steps.values()] == [(W, "waiting")]
    assert not again.run_changed
    assert len(run.dispatches("a")) == 1


def test_every_event_of_a_code_run_reads_the_replay_step() -> None:
    assert core.reads_for(CODE, StepSucceeded("checks.0.unit", 1)) == {"checks.0.unit", W}


def test_a_cancelled_code_run_cancels_its_steps_and_tells_its_code() -> None:
    from stepwell.engine.events import CancelRequested

    run = driver()
    run.succeed(W, suspended(task("a"), task("b", 1)))
    run.send(CancelRequested("stop"))
    assert run.run.status == "running" and run.run.cancelling is not None
    assert run.status("a") == run.status("b") == "cancelled"
    assert run.step(W).attempt == 2  # replayed, to be told (RunCancelled) and clean up
    run.succeed(W, Yield("failed", error={"type": "RunCancelled", "message": "stop"}).to_dict())
    assert run.run.status == "cancelled" and "stop" in run.run.error["message"]


def test_a_cancelled_code_run_ends_when_its_clean_up_outlasts_the_grace() -> None:
    from stepwell.engine.codeflow import CANCEL_GRACE
    from stepwell.engine.events import CancelRequested

    run = driver()
    run.succeed(W, suspended(task("a")))
    cancelled_at = run.now
    run.send(CancelRequested("stop"))
    # Told, the code cleans up with a 10-minute sleep: longer than the grace.
    tidy = Issue("tidy", "tidy", "delay", 1, None, {"duration": "10m"})
    run.succeed(W, suspended(tidy))
    assert run.status("tidy") == "waiting"
    # The grace ends by a timer of its own (not the minute sweep's chance finding of it).
    (grace,) = [t for t in run.timers(None) if t.due_at == cancelled_at + CANCEL_GRACE]
    run.send(TimerFired(None, grace.due_at), at=grace.due_at)
    assert run.run.status == "cancelled" and run.run.ended_at == cancelled_at + CANCEL_GRACE
    assert "grace period" in run.run.error["message"]
    assert run.status("tidy") == "cancelled"


def test_a_replay_that_reaches_many_steps_writes_each_on_its_own() -> None:
    run = driver(check_timeline=False)
    answer = suspended(*(task(f"item{i}", i) for i in range(100)))
    before = len(run.decisions)
    first = run.succeed(W, answer)
    assert set(first.steps) == {W} and not first.run_changed  # the replay's own step alone
    follow = run.decisions[before + 1 :]
    assert len(follow) == 100 and all(len(d.steps) == 1 and not d.run_changed for d in follow)
    assert {d.key for d in run.dispatches() if d.key != W} == {f"item{i}" for i in range(100)}
    assert run.status(W) == "waiting" and len(run.dispatches(W)) == 1


def test_an_answer_is_loaded_in_one_round_trip() -> None:
    run = driver()
    run.succeed(W, suspended(*(task(f"item{i}", i) for i in range(10))))
    assert len(run.extra_loads) <= 1


def test_a_step_the_replay_waits_for_alone_starts_the_next_replay_in_its_own_write() -> None:
    run = driver()
    run.succeed(W, suspended(task("a")))
    assert run.step(W).steps_waited == 1
    end = run.succeed("a", {"ok": 1})
    # One write (the step's end) and the next replay dispatched by it: no write of the replay's
    # step, nothing on the run.
    assert set(end.steps) == {"a"} and not end.run_changed
    replay = run.dispatches(W)[-1]
    assert replay.attempt == 2 and run.step(W).attempt == 1
    answer = run.succeed(W, suspended(task("b", 1)))  # its answer begins attempt 2
    assert run.step(W).attempt == 2 and run.step(W).status == "waiting"
    assert set(answer.steps) == {W} and run.status("b") == "running"


def test_ends_of_steps_waited_for_together_wake_the_replay_in_a_write_of_its_own() -> None:
    run = driver()
    run.succeed(W, suspended(task("a"), task("b", 1)))
    end = run.succeed("a")
    assert set(end.steps) == {"a"}  # the end alone; the wake follows it
    assert run.step(W).status == "running" and run.step(W).attempt == 2
    woken = run.decisions[-1]
    assert set(woken.steps) == {W} and not woken.run_changed


def test_a_step_ending_while_a_replay_runs_sets_its_flag_atomically() -> None:
    run = driver()
    run.succeed(W, suspended(task("a"), task("b", 1), task("c", 2)))
    run.succeed("a")  # replay 2 runs
    rev = run.step(W).rev
    run.succeed("b")
    run.succeed("c")
    own = run.step(W)
    assert own.wake is True and own.rev == rev + 2  # each end bumped it: its commit sees them
    wakes = [c for c in run.commands if type(c).__name__ == "WakeReplay"]
    assert [(w.attempt, w.by) for w in wakes] == [(2, "b"), (2, "c")]


def test_a_lost_wake_is_found_by_the_run_watch_as_a_new_attempt() -> None:
    run = driver()
    run.succeed(W, suspended(task("a")))
    # The invocation that recorded a's end died before it dispatched the next replay.
    run.send(StepSucceeded("a", 1, {"ok": 1}))
    run.commands = [c for c in run.commands if not (c.kind == "dispatch" and c.key == W)]
    assert run.step(W).status == "waiting"
    while run.step(W).status == "waiting":
        watch = run.run.watch_at  # the run's watch, every few minutes
        assert watch is not None
        run.send(TimerFired(None, watch), at=watch)
    # Attempt 2 may be the one a's end sent: the watch's replay is attempt 3.
    assert run.step(W).status == "running" and run.dispatches(W)[-1].attempt == 3
    run.succeed(W, Yield("completed", output=1).to_dict(), attempt=2)  # the lost one, late
    assert run.run.status == "running"  # stale: attempt 3 decides
    run.succeed(W, Yield("completed", output=2).to_dict())
    assert run.run.status == "succeeded" and run.run.output == 2


def test_the_replay_step_is_not_a_wait_but_the_run_waits_while_only_waits_are_in_flight() -> None:
    run = driver()
    approval = Issue("ok", "ok", "approval", 0, None, {"approvers": ["a@example.com"]})
    run.succeed(W, suspended(approval, task("t", 1)))
    assert run.run.waiting_steps == 1 and run.run.status == "running"  # t runs
    run.succeed("t")
    # The replay waits for the approval alone (in flight, not running).
    run.succeed(W, Yield("suspended", in_flight=1, running=0).to_dict())
    assert run.run.status == "waiting" and run.step(W).steps_running == 0


def test_a_code_workflows_allow_hosts_go_with_its_http_attempts() -> None:
    code = CODE.model_copy(update={"allow_hosts": ["10.1.0.0/16"]})
    run = EngineDriver(code, {"n": 1})
    parameters = {"method": "GET", "url": "http://10.1.2.3/", "headers": {}, "body": None}
    spec = {"method": "GET", "url": "http://10.1.2.3/"}
    run.succeed(W, suspended(Issue("call", "call", "http", 0, parameters, spec, [])))
    (call,) = run.dispatches("call")
    assert call.input == {**parameters, "allow_hosts": ["10.1.0.0/16"]}
