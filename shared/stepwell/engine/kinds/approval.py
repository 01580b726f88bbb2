"""An approval: the step waits for people's decisions (any rejection vetoes, ``quorum``
approvals approve), or for its expiry and its ``on_timeout``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any, Literal

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
    """Ask for decisions; the step's one timer is the next of its reminders, escalations and
    expiry."""
    assert isinstance(spec, ApprovalStep)
    waiting.open_wait(work, step)
    step.waiting_for = "approval"
    escalated = [person for escalation in spec.escalate for person in escalation.to]
    groups = waiting.groups_of(work, step, [*spec.approvers, *escalated], "approvers")
    if groups is None:
        return
    approvers = waiting.expand(spec.approvers, groups)
    if spec.approvers and spec.quorum > len(approvers):
        fail_step(
            work,
            step,
            "QuorumUnreachable",
            f"step '{step.key}': quorum {spec.quorum} needs {spec.quorum} people, and "
            f"approvers names {len(approvers)} ({', '.join(approvers) or 'nobody'}): lower the "
            "quorum or add people to the groups",
        )
        return
    message = expressions.render(spec.message, data, work.now)
    step.input = {"message": message, "approvers": approvers, "quorum": spec.quorum}
    if groups:
        step.input["groups"] = groups
    work.note(
        "step_waiting", step, f"approval: {message}", waiting_for="approval", quorum=spec.quorum
    )
    _ask(work, step, spec, tuple(approvers), "requested")
    set_timer(work, step, _next_due(spec, work.now, work.now))


def _ask(
    work: Work,
    step: StepState,
    spec: ApprovalStep,
    people: tuple[str, ...],
    reason: Literal["requested", "reminder", "escalation", "delegation"],
    delegated_by: str | None = None,
    until: datetime | None = None,
) -> None:
    opened = step.attempt_started_at or work.now
    asked = step.input if isinstance(step.input, dict) else {}
    expires = until or (opened + spec.timeout if spec.timeout else None)
    work.emit(
        RequestApproval(
            work.run.id,
            work.run.workflow,
            step.key,
            step.attempt,
            str(asked.get("message", spec.message)),
            people,
            spec.quorum,
            expires,
            reason=reason,
            delegated_by=delegated_by,
            notify=waiting.notify_of(work),
        )
    )


def _next_due(spec: ApprovalStep, opened: datetime, after: datetime) -> datetime | None:
    """The first moment after ``after`` when something is due: a reminder, an escalation or
    the expiry (all measured from ``opened``)."""
    found = [opened + spec.timeout] if spec.timeout else []
    found += [opened + e.after for e in spec.escalate if opened + e.after > after]
    if spec.remind is not None:
        found.append(opened + ((after - opened) // spec.remind + 1) * spec.remind)
    return min(found, default=None)


def on_timer(work: Work, step: StepState) -> None:
    """What came due since the step's timer was set, in order: escalations (new approvers, or
    a decision), a reminder to who has not decided, the expiry and its ``on_timeout``; then
    the timer moves on to what comes next."""
    spec = work.spec(step.key)
    assert isinstance(spec, ApprovalStep)
    opened = step.attempt_started_at or work.now
    moment = step.due_at
    while moment is not None and moment <= work.now and step.waiting_for == "approval":
        _due(work, step, spec, opened, moment)
        moment = _next_due(spec, opened, moment)
    if step.waiting_for == "approval":
        set_timer(work, step, moment)


def _due(
    work: Work, step: StepState, spec: ApprovalStep, opened: datetime, moment: datetime
) -> None:
    just_asked: set[str] = set()
    for escalation in spec.escalate:
        if opened + escalation.after != moment or step.waiting_for != "approval":
            continue
        if escalation.action is not None:
            work.note(
                "approval_escalated",
                step,
                f"no decision after {escalation.after}: {escalation.action}",
                action=escalation.action,
            )
            _act(work, step, spec, escalation.action, "the approval was escalated")
            continue
        asked = dict(step.input) if isinstance(step.input, dict) else {}
        known = list(asked.get("approvers") or [])
        to = waiting.expand(escalation.to, asked.get("groups") or {})
        added = _new(known, to)
        step.input = {**asked, "approvers": known + added}
        work.note(
            "approval_escalated",
            step,
            f"no decision after {escalation.after}: links to {', '.join(to)}",
            to=to,
        )
        if added:
            _ask(work, step, spec, tuple(added), "escalation")
            just_asked.update(added)
    expiry = opened + spec.timeout if spec.timeout else None
    reminder = spec.remind is not None and (moment - opened) % spec.remind == timedelta(0)
    # A timer handled late (a lost timer found by the sweep) sends the last reminder it
    # missed, not every one.
    latest = spec.remind is not None and moment + spec.remind > work.now
    if reminder and latest and moment != expiry and step.waiting_for == "approval":
        asked = step.input if isinstance(step.input, dict) else {}
        done = {d.get("approver") for d in step.decisions} | just_asked
        people = tuple(p for p in asked.get("approvers") or () if p not in done)
        work.note("approval_reminded", step, "links sent again", to=list(people))
        _ask(work, step, spec, people, "reminder")
    if moment == expiry and step.waiting_for == "approval":
        work.note(
            "approval_timed_out", step, f"no decision in time; on_timeout is {spec.on_timeout}"
        )
        _act(work, step, spec, spec.on_timeout, "the approval timed out", timed_out=True)


def _new(known: list[str], people: list[str]) -> list[str]:
    """``people`` not among ``known`` (e-mails compared without case)."""
    seen = {person.lower() for person in known}
    return [person for person in people if person.lower() not in seen]


def _act(
    work: Work,
    step: StepState,
    spec: ApprovalStep,
    action: str,
    why: str,
    timed_out: bool = False,
) -> None:
    if action == "approve":
        _approved(work, step, timed_out=timed_out)
    elif action == "reject":
        _rejected(work, step, spec, why, timed_out=timed_out)
    elif timed_out:
        fail_step(work, step, "ApprovalTimedOut", "no decision before the approval expired")
    else:
        fail_step(work, step, "ApprovalEscalated", "the approval was escalated to fail")


def on_decision(work: Work, event: ApprovalDecided) -> None:
    """Record a decision (a delegate's in the approver's name); any rejection vetoes,
    ``quorum`` approvals approve. Or an approver hands their link on."""
    if event.delegate_to is not None:
        _hand_on(work, event)
        return
    if not waiting.open_to(work, event, "approval", "decision"):
        return
    spec = work.spec(event.key)
    assert isinstance(spec, ApprovalStep)
    decided = work.peek(event.key)
    assert decided is not None
    # Escalations add approvers: the step's record says who may decide now.
    asked = decided.input if isinstance(decided.input, dict) else {}
    if not waiting.named(work, event, list(asked.get("approvers") or []), "approver"):
        return
    if spec.forbid_self_approval and _starter(work, event.key, event.approver, event.by):
        return
    if not waiting.in_name_of(work, event):
        return
    if (
        any(d["approver"] == event.approver for d in decided.decisions)
        and event.approver != "anonymous"
    ):
        work.note("decision_ignored", event.key, f"{event.approver} already decided")
        return
    step = work.step(event.key)
    assert step is not None
    decision = "approved" if event.approved else "rejected"
    recorded = {
        "approver": event.approver,
        "decision": decision,
        "comment": event.comment,
        "at": work.now.isoformat(),
    }
    who = waiting.record(step, event, recorded)
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


def _hand_on(work: Work, event: ApprovalDecided) -> None:
    """An approver hands their link on: the delegate gets approve and reject links of their own,
    in the approver's name, expiring at ``event.until``."""
    assert event.delegate_to is not None
    spec = work.spec(event.key) if work.peek(event.key) is not None else None
    forbid = isinstance(spec, ApprovalStep) and spec.forbid_self_approval
    if forbid and _starter(work, event.key, event.approver, event.delegate_to):
        return
    record = work.peek(event.key)
    asked = record.input if record is not None and isinstance(record.input, dict) else {}
    people = list(asked.get("approvers") or [])
    step = waiting.handed_on(work, event, "approval", people, "approver")
    if step is None:
        return
    assert isinstance(spec, ApprovalStep)
    until = datetime.fromisoformat(event.until) if event.until else None
    _ask(work, step, spec, (event.delegate_to,), "delegation", event.approver, until)


def _starter(work: Work, key: str, *people: str | None) -> bool:
    """Whether one of ``people`` started the run (noted: forbid_self_approval refuses them)."""
    for person in people:
        if person is not None and same_person(work.run.started_by, person):
            work.note(
                "decision_ignored",
                key,
                f"{person} started the run and may not decide it (forbid_self_approval)",
            )
            return True
    return False


def same_person(principal: str | None, approver: str) -> bool:
    """Whether the run's starter (a JWT's e-mail or subject, an IAM principal's ARN) is
    ``approver``: the same name, or an ARN whose last part is it (an IAM user's name, or an
    assumed role's session name, which single sign-on sets to the person's e-mail)."""
    if not principal:
        return False
    who, wanted = principal.lower(), approver.lower()
    return who == wanted or (who.startswith("arn:") and who.rsplit("/", 1)[-1] == wanted)


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
