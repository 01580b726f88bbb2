"""An approval: the step waits for people's decisions (any rejection vetoes, ``quorum``
approvals approve), or for its expiry and its ``on_timeout``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import ApprovalStep, Step
from stepwell.engine import waiting
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import RequestApproval
from stepwell.engine.decision import Work
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState

waits = True
inline = False


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Ask for decisions; the step's one timer is the approval's expiry."""
    assert isinstance(spec, ApprovalStep)
    waiting.open_wait(work, step)
    step.waiting_for = "approval"
    message = expressions.render(spec.message, data, work.now)
    expires = work.now + spec.timeout if spec.timeout else None
    step.input = {"message": message, "approvers": list(spec.approvers), "quorum": spec.quorum}
    work.note(
        "step_waiting", step, f"approval: {message}", waiting_for="approval", quorum=spec.quorum
    )
    work.emit(
        RequestApproval(
            work.run.id,
            work.run.workflow,
            step.key,
            step.attempt,
            str(message),
            tuple(spec.approvers),
            spec.quorum,
            expires,
        )
    )
    set_timer(work, step, expires)


def on_timer(work: Work, step: StepState) -> None:
    """No decision before the approval expired: its ``on_timeout`` decides."""
    spec = work.spec(step.key)
    assert isinstance(spec, ApprovalStep)
    work.note("approval_timed_out", step, f"no decision in time; on_timeout is {spec.on_timeout}")
    if spec.on_timeout == "approve":
        _approved(work, step, timed_out=True)
    elif spec.on_timeout == "reject":
        _rejected(work, step, spec, "the approval timed out", timed_out=True)
    else:
        fail_step(work, step, "ApprovalTimedOut", "no decision before the approval expired")


def on_decision(work: Work, event: ApprovalDecided) -> None:
    """Record a decision; any rejection vetoes, ``quorum`` approvals approve."""
    if not waiting.open_to(work, event, "approval", "decision"):
        return
    spec = work.spec(event.key)
    assert isinstance(spec, ApprovalStep)
    if not waiting.named(work, event, spec.approvers, "approver"):
        return
    decided = work.peek(event.key)
    assert decided is not None
    if (
        any(d["approver"] == event.approver for d in decided.decisions)
        and event.approver != "anonymous"
    ):
        work.note("decision_ignored", event.key, f"{event.approver} already decided")
        return
    step = work.step(event.key)
    assert step is not None
    decision = "approved" if event.approved else "rejected"
    recorded: dict[str, Any] = {
        "approver": event.approver,
        "decision": decision,
        "comment": event.comment,
        "at": work.now.isoformat(),
    }
    if event.operator:
        recorded["operator"] = True
    if event.link is not None:
        recorded["link"] = event.link
    step.decisions.append(recorded)
    who = f"{event.approver} (operator)" if event.operator else event.approver
    work.note(
        f"step_{decision}",
        step,
        f"by {who}" + (f": {event.comment}" if event.comment else ""),
        approver=event.approver,
        **({"operator": True} if event.operator else {}),
    )
    if not event.approved:
        _rejected(work, step, spec, f"rejected by {event.approver}")
        return
    approvals = sum(1 for d in step.decisions if d["decision"] == "approved")
    if approvals >= spec.quorum or event.operator:
        _approved(work, step)


def _approved(work: Work, step: StepState, timed_out: bool = False) -> None:
    succeed(work, step, {"approved": True, "decisions": step.decisions, "timed_out": timed_out})


def _rejected(
    work: Work, step: StepState, spec: ApprovalStep, why: str, timed_out: bool = False
) -> None:
    if spec.on_reject == "continue":
        succeed(
            work, step, {"approved": False, "decisions": step.decisions, "timed_out": timed_out}
        )
    else:
        fail_step(work, step, "ApprovalRejected", why)
