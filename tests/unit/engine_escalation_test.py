"""Reminders and escalations of an approval, in virtual time: timers on the step (the next of
them is the step's one due time), each recorded on the timeline and sent as links."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from pydantic import ValidationError

from stepwell.definition.models import ApprovalStep, Workflow
from stepwell.engine.events import ApprovalDecided, TimerFired
from stepwell.local.inprocess import InProcessWorld

HOUR = timedelta(hours=1)
PEOPLE = ("ann@example.com", "bob@example.com", "cy@example.com")
APPROVE: dict[str, Any] = {
    "type": "approval",
    "message": "Pay ${input.amount}?",
    "approvers": list(PEOPLE),
    "quorum": 2,
    "remind": "4h",
    "escalate": [
        {"after": "1d", "to": ["cfo@example.com"]},
        {"after": "2d", "action": "reject"},
    ],
    "on_reject": "continue",
}


def world_of(step: dict[str, Any], **options: Any) -> InProcessWorld:
    workflow = Workflow.model_validate({"name": "pay", "steps": {"approve": step}})
    return InProcessWorld({"pay": workflow}, {}, **options)


def entries(world: InProcessWorld, run_id: str, *types: str) -> list[tuple[float, str, Any]]:
    """(hours after the run started, type, data) of the timeline entries of ``types``."""
    found = world.store.timeline(run_id, limit=1000).items
    start = found[0].at
    return [((e.at - start) / HOUR, e.type, e.data) for e in found if e.type in types]


def test_reminders_every_4h_links_to_the_cfo_after_a_day_and_a_rejection_after_two() -> None:
    world = world_of(APPROVE)
    run_id = world.start("pay", {"amount": 90})
    world.run_until_idle()
    seen = entries(world, run_id, "approval_reminded", "approval_escalated", "step_completed")
    reminders = [hours for hours, kind, _ in seen if kind == "approval_reminded"]
    assert reminders == [4, 8, 12, 16, 20, 24, 28, 32, 36, 40, 44]
    escalations = [(hours, data) for hours, kind, data in seen if kind == "approval_escalated"]
    assert escalations == [(24, {"to": ["cfo@example.com"]}), (48, {"action": "reject"})]
    assert seen[-1][:2] == (48, "step_completed")
    # What went out, in order: the first links, five reminders, the CFO's links with the
    # sixth reminder (not to the CFO, who has just been asked), then reminders with the CFO.
    sent = [(a.reason, a.approvers) for a in world.approvals]
    assert sent[0] == ("requested", PEOPLE)
    assert sent[1:6] == [("reminder", PEOPLE)] * 5
    assert sent[6:8] == [("escalation", ("cfo@example.com",)), ("reminder", PEOPLE)]
    assert sent[8:] == [("reminder", (*PEOPLE, "cfo@example.com"))] * 5
    assert len(sent) == 1 + 11 + 1
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.output["approved"] is False and step.input["approvers"][-1] == "cfo@example.com"


def test_an_escalated_approver_decides_and_reminders_skip_who_decided() -> None:
    def decide(request: Any) -> ApprovalDecided | None:
        if request.reason == "requested":
            return ApprovalDecided(request.key, request.attempt, True, "ann@example.com")
        if request.reason == "escalation":
            return ApprovalDecided(request.key, request.attempt, True, "cfo@example.com")
        return None

    world = world_of(APPROVE, approver=decide)
    run_id = world.start("pay", {"amount": 90})
    world.run_until_idle()
    reminded = [a.approvers for a in world.approvals if a.reason == "reminder"]
    assert reminded == [("bob@example.com", "cy@example.com")] * 6  # +4 h ... +24 h
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.status == "succeeded" and step.output["approved"] is True
    assert [d["approver"] for d in step.decisions] == ["ann@example.com", "cfo@example.com"]
    (approved,) = entries(world, run_id, "step_completed")
    assert approved[0] == 24


def test_someone_not_yet_escalated_to_cannot_decide() -> None:
    world = world_of(APPROVE)
    run_id = world.start("pay", {"amount": 90})
    world.send(run_id, ApprovalDecided("approve", 1, True, "cfo@example.com"))
    ignored = entries(world, run_id, "decision_ignored")
    assert ignored[0][0] == 0 and len(ignored) == 1


def test_an_approval_without_reminders_or_escalations_has_only_its_expiry() -> None:
    world = world_of({**APPROVE, "remind": None, "escalate": [], "timeout": "3d"})
    run_id = world.start("pay", {"amount": 1})
    world.run_until_idle()
    assert [a.reason for a in world.approvals] == ["requested"]
    assert entries(world, run_id, "approval_timed_out")[0][0] == 72


@pytest.mark.parametrize(
    ("escalate", "problem"),
    [
        ([{"after": "1d"}], r"exactly one of 'to' \(people\) or 'action'"),
        ([{"after": "1d", "to": ["x@example.com"], "action": "fail"}], "exactly one of"),
        ([{"after": "2d", "action": "fail"}, {"after": "1d", "action": "fail"}], "in order"),
        ([{"after": "8d", "action": "fail"}], "never comes: the approval times out after"),
    ],
)
def test_escalations_that_cannot_work_are_refused(escalate: Any, problem: str) -> None:
    with pytest.raises(ValidationError, match=problem):
        ApprovalStep.model_validate({**APPROVE, "escalate": escalate})


def test_escalating_to_people_needs_named_approvers() -> None:
    with pytest.raises(ValidationError, match="needs named approvers"):
        ApprovalStep.model_validate({**APPROVE, "approvers": [], "quorum": 1})


def test_a_timer_handled_late_sends_the_last_reminder_it_missed_not_every_one() -> None:
    world = world_of(APPROVE)
    run_id = world.start("pay", {"amount": 90})
    world.run_until_idle(virtual_time=False)
    world.timers.clear()  # the timer is lost: the sweep finds the step's due time later
    world.clock.advance(timedelta(hours=13))
    world.send(run_id, TimerFired("approve", world.clock.now()))
    assert [a.reason for a in world.approvals] == ["requested", "reminder"]
    (reminded,) = entries(world, run_id, "approval_reminded")
    assert reminded[0] == 13
    due = world.store.load(run_id, ["approve"]).steps["approve"].due_at
    assert due is not None and due - world.clock.now() == timedelta(hours=3)  # +16 h
