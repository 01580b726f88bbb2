"""Waits the engine decides without a Lambda: approvals, delays and callbacks."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import ApprovalStep, CallbackStep, DelayStep, Step
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import EmitEvent, FollowUp, RequestApproval
from stepwell.engine.decision import Work, attempt_token
from stepwell.engine.events import ApprovalDecided, CallbackReceived, DependencyEnded
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState, parse_key


def open(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Begin waiting; the step's one timer is the wait's end or expiry."""
    step.attempt += 1
    step.token = attempt_token(work.run, step.key, step.attempt)
    step.attempt_started_at = work.now
    work.set_status(step, "waiting")
    if isinstance(spec, DelayStep):
        _open_delay(work, step, spec, data)
    elif isinstance(spec, ApprovalStep):
        _open_approval(work, step, spec, data)
    elif isinstance(spec, CallbackStep):
        _open_callback(work, step, spec, data)


def _open_delay(work: Work, step: StepState, spec: DelayStep, data: dict[str, Any]) -> None:
    step.waiting_for = "delay"
    if spec.duration is not None:
        until = work.now + spec.duration
    else:
        found = _time_of(work, step, spec.until, data)
        if found is None:
            return
        until = found
    work.note("step_delay_started", step, f"until {until.isoformat()}", until=until.isoformat())
    if until <= work.now:
        _delay_over(work, step)
        return
    set_timer(work, step, until)


def _time_of(work: Work, step: StepState, until: Any, data: dict[str, Any]) -> datetime | None:
    """The time an ``until`` gives (an ISO 8601 time with a zone, or an expression giving
    one); None once the step failed because it gives none."""
    try:
        value = expressions.render(until, data, work.now)
        found = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
        if found.tzinfo is None:
            raise ValueError("no timezone")
    except (ValueError, expressions.ExpressionError) as exc:
        fail_step(
            work,
            step,
            "InvalidUntil",
            f"step '{step.key}': until must give an ISO 8601 time with a zone ({exc})",
        )
        return None
    return found


def _delay_over(work: Work, step: StepState) -> None:
    succeed(work, step, step.input)


def _open_approval(work: Work, step: StepState, spec: ApprovalStep, data: dict[str, Any]) -> None:
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


def _open_callback(work: Work, step: StepState, spec: CallbackStep, data: dict[str, Any]) -> None:
    ends = [work.now + spec.timeout] if spec.timeout else []
    if spec.until is not None:
        until = _time_of(work, step, spec.until, data)
        if until is None:
            return
        ends.append(until)
    step.waiting_for = "callback"
    step.timeout_at = min(ends) if ends else None
    step.heartbeat_due = work.now + spec.heartbeat if spec.heartbeat else None
    work.note("step_waiting", step, "callback", waiting_for="callback")
    # The edge (LinkedBus) adds the signed token and URL: the engine holds no keys.
    detail = {
        "run_id": work.run.id,
        "workflow": work.run.workflow,
        "step": step.key,
        "attempt": step.attempt,
        "expires_at": step.timeout_at.isoformat() if step.timeout_at else None,
    }
    work.emit(EmitEvent("callback.requested", detail))
    if step.early_signal is not None:
        signal, step.early_signal = step.early_signal, None
        on_callback(work, CallbackReceived(key=step.key, **signal))
        return
    _callback_timer(work, step)


def _callback_timer(work: Work, step: StepState) -> None:
    dues = [d for d in (step.timeout_at, step.heartbeat_due) if d is not None]
    set_timer(work, step, min(dues) if dues else None)


def on_timer(work: Work, step: StepState) -> None:
    """The wait's timer came due."""
    if step.waiting_for == "delay":
        _delay_over(work, step)
    elif step.waiting_for == "approval":
        spec = work.spec(step.key)
        assert isinstance(spec, ApprovalStep)
        work.note(
            "approval_timed_out", step, f"no decision in time; on_timeout is {spec.on_timeout}"
        )
        if spec.on_timeout == "approve":
            _approved(work, step, timed_out=True)
        elif spec.on_timeout == "reject":
            _rejected(work, step, spec, "the approval timed out", timed_out=True)
        else:
            fail_step(work, step, "ApprovalTimedOut", "no decision before the approval expired")
    elif step.waiting_for == "poll":
        poll_due(work, step)
    elif step.waiting_for == "callback":
        if step.heartbeat_due is not None and step.heartbeat_due <= work.now:
            fail_step(work, step, "HeartbeatTimedOut", "no heartbeat in time")
        else:
            fail_step(work, step, "CallbackTimedOut", "no callback in time")


def poll_due(work: Work, step: StepState) -> None:
    """The time of a wait_for_condition's next check came: the replay checks again."""
    step.waiting_for = "poll_due"
    step.due_at = None
    work.emit(FollowUp(work.run.id, DependencyEnded(WORKFLOW_KEY, step.key)))


LINK_USED = "this link has already been used"


def on_approval(work: Work, event: ApprovalDecided) -> None:
    """Record a decision; any rejection vetoes, ``quorum`` approvals approve."""
    record = work.peek(event.key)
    if (
        record is None
        or record.waiting_for != "approval"
        or record.attempt != event.attempt
        or work.run.terminal
    ):
        work.note(
            "decision_ignored",
            event.key,
            f"decision by {event.approver}: the approval is not open",
            attempt=event.attempt,
        )
        return
    spec = work.spec(event.key)
    assert isinstance(spec, ApprovalStep)
    if spec.approvers and event.approver not in spec.approvers and not event.operator:
        work.note("decision_ignored", event.key, f"{event.approver} is not an approver")
        return
    if event.link is not None and any(d.get("link") == event.link for d in record.decisions):
        work.note("decision_ignored", event.key, LINK_USED, link=event.link)
        return
    if (
        any(d["approver"] == event.approver for d in record.decisions)
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


def on_callback(work: Work, event: CallbackReceived) -> None:
    """Complete, fail or extend a callback wait; keep a signal that arrives early."""
    code_first = work.definition.code is not None  # its steps are known once the code runs
    if not code_first and parse_key(event.key)[0] not in work.definition.steps:
        work.note("callback_ignored", event.key, "the workflow has no such step")
        return
    record = work.peek(event.key)
    by = f" (by {event.by})" if event.by else ""
    if record is not None and record.waiting_for == "callback" and not work.run.terminal:
        step = work.step(event.key)
        assert step is not None
        if event.status == "heartbeat":
            spec = work.spec(step.key)
            if isinstance(spec, CallbackStep) and spec.heartbeat is not None:
                step.heartbeat_due = work.now + spec.heartbeat
            work.note("heartbeat", step)
            _callback_timer(work, step)
        elif event.status == "success":
            work.note("callback_received", step, "success" + by)
            succeed(work, step, event.output)
        else:
            work.note("callback_received", step, f"failure: {event.error_type}{by}")
            fail_step(work, step, event.error_type, event.message)
        return
    if (
        (record is None or record.status == "pending")
        and not work.run.terminal
        and event.status != "heartbeat"
    ):
        if code_first:
            step = work.step(event.key) or work.steps.setdefault(
                event.key, StepState(key=event.key)
            )
        else:
            step = work.step_or_new(event.key) if "[" not in event.key else work.step(event.key)
        if step is not None:
            step.early_signal = {
                "status": event.status,
                "output": event.output,
                "error_type": event.error_type,
                "message": event.message,
            }
            work.note("callback_kept", step, "arrived before the wait opened; kept for it")
            return
    work.note("callback_ignored", event.key, "the step is not waiting for a callback")
