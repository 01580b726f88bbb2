"""Waits decided without a Lambda: delays, approvals and callbacks."""

from __future__ import annotations

from datetime import timedelta

import pytest

from helpers import T0, EngineDriver, task
from stepwell.engine.commands import RequestApproval
from stepwell.engine.events import ApprovalDecided, CallbackReceived, TimerFired

# -- delays ---------------------------------------------------------------------------------


def test_a_delay_of_a_duration_waits_then_passes_its_input_on():
    run = EngineDriver({"d": {"type": "delay", "duration": "1h"}, "b": task("d")}, {"x": 1})
    step = run.step("d")
    assert (step.status, step.waiting_for) == ("waiting", "delay")
    assert step.due_at == T0 + timedelta(hours=1)
    assert run.run.status == "waiting"
    run.fire("d")
    assert run.status("d") == "succeeded"
    assert run.step("d").output == {"x": 1}
    assert run.status("b") == "running"
    assert run.dispatches("b")[0].input == {"x": 1}


def test_a_delay_until_a_time_from_an_expression():
    run = EngineDriver(
        {"d": {"type": "delay", "until": "${input.at}"}}, {"at": "2026-01-03T00:00:00Z"}
    )
    assert run.step("d").due_at == T0 + timedelta(days=2)
    run.fire("d")
    assert run.run.status == "succeeded"
    assert run.now == T0 + timedelta(days=2)


def test_a_delay_until_a_past_time_completes_at_once():
    run = EngineDriver(
        {"d": {"type": "delay", "until": "2025-06-01T00:00:00+00:00"}, "b": task("d")}
    )
    assert run.status("d") == "succeeded"
    assert run.step("d").due_at is None
    assert not run.timers("d")
    assert run.status("b") == "running"


@pytest.mark.parametrize("until", ["2026-01-03T00:00:00", "next tuesday", "${42}"])
def test_a_delay_until_without_a_zoned_iso_time_fails(until):
    run = EngineDriver({"d": {"type": "delay", "until": until}})
    assert run.status("d") == "failed"
    assert run.step("d").error["type"] == "InvalidUntil"
    assert run.run.status == "failed"
    assert run.run.waiting_steps == 0


# -- approvals ------------------------------------------------------------------------------


def approval(**fields):
    return {
        "ask": {"type": "approval", "approvers": ["ann@x", "bob@x", "cy@x"], **fields},
        "after": task("ask"),
    }


def decide(run, approved, approver, attempt=1, comment=None):
    return run.send(ApprovalDecided("ask", attempt, approved, approver, comment))


def test_an_approval_requests_decisions_and_waits():
    run = EngineDriver(approval(message="Approve ${input.id}?", timeout="2d"), {"id": "o-1"})
    [request] = [c for c in run.commands if isinstance(c, RequestApproval)]
    assert request.message == "Approve o-1?"
    assert request.approvers == ("ann@x", "bob@x", "cy@x")
    assert request.quorum == 1
    assert request.attempt == 1
    assert request.expires_at == T0 + timedelta(days=2)
    assert run.step("ask").due_at == T0 + timedelta(days=2)
    assert run.run.status == "waiting"


def test_an_approval_succeeds_with_the_decisions():
    run = EngineDriver(approval())
    decide(run, True, "bob@x", comment="fine")
    output = run.step("ask").output
    assert output["approved"] is True
    assert output["timed_out"] is False
    assert [(d["approver"], d["decision"], d["comment"]) for d in output["decisions"]] == [
        ("bob@x", "approved", "fine")
    ]
    assert run.types("ask")[-2:] == ["step_approved", "step_completed"]
    assert run.status("after") == "running"
    assert run.run.status == "running"


def test_a_rejection_fails_the_step_by_default():
    run = EngineDriver(approval())
    decide(run, False, "ann@x")
    assert run.status("ask") == "failed"
    assert run.step("ask").error == {"type": "ApprovalRejected", "message": "rejected by ann@x"}
    assert run.run.status == "failed"
    assert run.status("after") is None


def test_a_rejection_with_on_reject_continue_succeeds_unapproved():
    run = EngineDriver(approval(on_reject="continue"))
    decide(run, False, "ann@x")
    assert run.status("ask") == "succeeded"
    assert run.step("ask").output["approved"] is False
    assert run.status("after") == "running"


@pytest.mark.parametrize(
    ("on_timeout", "status", "approved"),
    [("approve", "succeeded", True), ("reject", "failed", None), ("fail", "failed", None)],
)
def test_an_approval_timeout_follows_on_timeout(on_timeout, status, approved):
    run = EngineDriver(approval(on_timeout=on_timeout, timeout="1d"))
    run.fire("ask")
    assert run.now == T0 + timedelta(days=1)
    assert "approval_timed_out" in run.types("ask")
    assert run.status("ask") == status
    if approved is not None:
        assert run.step("ask").output == {"approved": True, "decisions": [], "timed_out": True}
    else:
        expected = "ApprovalRejected" if on_timeout == "reject" else "ApprovalTimedOut"
        assert run.step("ask").error["type"] == expected


def test_a_rejection_on_timeout_with_on_reject_continue_succeeds_unapproved():
    run = EngineDriver(approval(on_timeout="reject", on_reject="continue", timeout="1d"))
    run.fire("ask")
    assert run.step("ask").output == {"approved": False, "decisions": [], "timed_out": True}


def test_a_quorum_needs_that_many_distinct_approvers():
    run = EngineDriver(approval(quorum=2))
    decide(run, True, "ann@x")
    assert run.status("ask") == "waiting"
    decide(run, True, "ann@x")
    assert run.status("ask") == "waiting"
    assert run.timeline[-1].type == "decision_ignored"
    assert "already decided" in run.timeline[-1].message
    decide(run, True, "cy@x")
    assert run.status("ask") == "succeeded"
    assert [d["approver"] for d in run.step("ask").output["decisions"]] == ["ann@x", "cy@x"]


def test_any_rejection_vetoes_a_quorum():
    run = EngineDriver(approval(quorum=2))
    decide(run, True, "ann@x")
    decide(run, False, "bob@x")
    assert run.status("ask") == "failed"
    assert run.step("ask").error["message"] == "rejected by bob@x"


def test_a_second_decision_by_the_same_approver_is_ignored():
    run = EngineDriver(approval(quorum=2))
    decide(run, True, "ann@x")
    decision = decide(run, False, "ann@x")
    assert [e.type for e in decision.timeline] == ["decision_ignored"]
    assert run.status("ask") == "waiting"
    assert len(run.step("ask").decisions) == 1


def test_a_decision_by_someone_not_listed_is_ignored():
    run = EngineDriver(approval())
    decision = decide(run, True, "mallory@x")
    assert [e.type for e in decision.timeline] == ["decision_ignored"]
    assert "not an approver" in decision.timeline[0].message
    assert run.status("ask") == "waiting"
    assert run.step("ask").decisions == []


def test_anyone_may_decide_when_no_approvers_are_listed():
    run = EngineDriver({"ask": {"type": "approval"}})
    decide(run, True, "whoever@x")
    assert run.status("ask") == "succeeded"


def test_a_decision_for_another_attempt_or_after_the_end_is_ignored():
    run = EngineDriver(approval())
    decision = decide(run, True, "ann@x", attempt=2)
    assert [e.type for e in decision.timeline] == ["decision_ignored"]
    assert run.status("ask") == "waiting"
    decide(run, True, "ann@x")
    decision = decide(run, False, "bob@x")
    assert [e.type for e in decision.timeline] == ["decision_ignored"]
    assert run.status("ask") == "succeeded"


# -- callbacks ------------------------------------------------------------------------------


def callback(**fields):
    return {"cb": {"type": "callback", **fields}, "after": task("cb", input="${steps.cb.output}")}


def test_a_callback_waits_and_announces_itself():
    run = EngineDriver(callback(timeout="1h"))
    step = run.step("cb")
    assert (step.status, step.waiting_for) == ("waiting", "callback")
    assert step.due_at == T0 + timedelta(hours=1)
    announced = [c for c in run.commands if getattr(c, "detail_type", "") == "callback.requested"]
    assert len(announced) == 1
    detail = announced[0].detail
    assert (detail["run_id"], detail["step"], detail["attempt"]) == ("run-1", "cb", 1)
    assert detail["expires_at"] == (T0 + timedelta(hours=1)).isoformat()
    assert run.run.status == "waiting"


def test_a_successful_callback_gives_the_step_its_output():
    run = EngineDriver(callback())
    run.send(CallbackReceived("cb", "success", {"paid": True}))
    assert run.status("cb") == "succeeded"
    assert run.dispatches("after")[0].input == {"paid": True}


def test_a_failed_callback_fails_the_step():
    run = EngineDriver(callback())
    run.send(CallbackReceived("cb", "failure", error_type="Declined", message="no funds"))
    assert run.status("cb") == "failed"
    assert run.step("cb").error == {"type": "Declined", "message": "no funds"}
    assert run.run.status == "failed"


def test_a_callback_times_out():
    run = EngineDriver(callback(timeout="1h"))
    run.fire("cb")
    assert run.step("cb").error["type"] == "CallbackTimedOut"


def test_heartbeats_extend_a_callback_until_they_stop():
    run = EngineDriver(callback(timeout="1h", heartbeat="10m"))
    assert run.step("cb").due_at == T0 + timedelta(minutes=10)
    run.advance(timedelta(minutes=8))
    run.send(CallbackReceived("cb", "heartbeat"))
    assert run.step("cb").heartbeat_due == T0 + timedelta(minutes=18)
    assert run.step("cb").due_at == T0 + timedelta(minutes=18)
    assert run.timers("cb")[-1].due_at == T0 + timedelta(minutes=18)
    assert "heartbeat" in run.types("cb")
    run.send(TimerFired("cb", T0 + timedelta(minutes=10)), at=T0 + timedelta(minutes=10))
    assert run.status("cb") == "waiting"  # the first heartbeat timer is stale now
    run.fire("cb")
    assert run.status("cb") == "failed"
    assert run.step("cb").error["type"] == "HeartbeatTimedOut"


def test_heartbeats_never_outlive_the_callback_timeout():
    run = EngineDriver(callback(timeout="15m", heartbeat="10m"))
    run.advance(timedelta(minutes=9))
    run.send(CallbackReceived("cb", "heartbeat"))
    assert run.step("cb").due_at == T0 + timedelta(minutes=15)
    run.fire("cb")
    assert run.step("cb").error["type"] == "CallbackTimedOut"


def test_a_callback_that_arrives_before_the_wait_opens_is_kept_for_it():
    run = EngineDriver({"a": task(), **callback(depends_on="a")})
    decision = run.send(CallbackReceived("cb", "success", {"early": True}))
    assert [e.type for e in decision.timeline] == ["callback_kept"]
    assert run.status("cb") == "pending"
    assert run.step("cb").early_signal is not None
    run.succeed("a")
    assert run.status("cb") == "succeeded"
    assert run.step("cb").output == {"early": True}
    assert run.step("cb").early_signal is None
    assert run.status("after") == "running"
    assert run.run.waiting_steps == 0


def test_an_early_failure_is_kept_too():
    run = EngineDriver({"a": task(), **callback(depends_on="a")})
    run.send(CallbackReceived("cb", "failure", error_type="Nope"))
    run.succeed("a")
    assert run.status("cb") == "failed"
    assert run.step("cb").error["type"] == "Nope"


def test_an_early_heartbeat_is_not_kept():
    run = EngineDriver({"a": task(), **callback(depends_on="a")})
    decision = run.send(CallbackReceived("cb", "heartbeat"))
    assert [e.type for e in decision.timeline] == ["callback_ignored"]
    run.succeed("a")
    assert run.status("cb") == "waiting"


def test_a_callback_after_the_step_ended_is_ignored():
    run = EngineDriver(callback())
    run.send(CallbackReceived("cb", "success", 1))
    decision = run.send(CallbackReceived("cb", "failure"))
    assert [e.type for e in decision.timeline] == ["callback_ignored"]
    assert run.status("cb") == "succeeded"


def test_a_callback_for_an_unknown_step_is_ignored():
    run = EngineDriver(callback())
    decision = run.send(CallbackReceived("nope", "success"))
    assert [e.type for e in decision.timeline] == ["callback_ignored"]


def test_a_callback_until_a_time_ends_at_the_earlier_of_it_and_its_timeout() -> None:
    from helpers import EngineDriver

    soon = "2026-01-02T00:00:00+00:00"  # before its 100-day timeout
    run = EngineDriver({"wait": {"type": "callback", "timeout": "100d", "until": soon}})
    assert run.step("wait").timeout_at is not None
    assert run.step("wait").timeout_at.isoformat() == soon
    bad = EngineDriver(
        {"wait": {"type": "callback", "until": "${input.when}"}}, input={"when": "x"}
    )
    assert bad.status("wait") == "failed"
    assert bad.step("wait").error["type"] == "InvalidUntil"
