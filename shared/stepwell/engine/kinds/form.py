"""An input step: a person fills in a form through a signed link; the answer, checked against
the form's JSON Schema, is the step's output. Its links are the approval's (one per assignee,
single-use), so an answer arrives as the decision an approval link sends, with its data."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import InputStep, Step
from stepwell.engine import waiting
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import RequestApproval
from stepwell.engine.data import schema_problem
from stepwell.engine.decision import Work
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState

waits = True
inline = False

WAITING_FOR = "input"


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Ask for the form to be filled in; the step's one timer is the links' expiry."""
    assert isinstance(spec, InputStep)
    waiting.open_wait(work, step)
    step.waiting_for = WAITING_FOR
    groups = waiting.groups_of(work, step, spec.assignees, "assignees")
    if groups is None:
        return
    assignees = waiting.expand(spec.assignees, groups)
    if spec.assignees and not assignees:
        fail_step(
            work,
            step,
            "NoAssignees",
            f"step '{step.key}': the groups assignees names have nobody in them: add people "
            "to the groups",
        )
        return
    message = str(expressions.render(spec.message, data, work.now))
    expires = work.now + spec.timeout if spec.timeout else None
    step.input = {"message": message, "assignees": assignees, "form": spec.form}
    if groups:
        step.input["groups"] = groups
    work.note("step_waiting", step, f"input: {message}", waiting_for=WAITING_FOR)
    _ask(work, step, tuple(assignees), expires)
    set_timer(work, step, expires)


def _ask(
    work: Work,
    step: StepState,
    people: tuple[str, ...],
    expires: datetime | None,
    delegated_by: str | None = None,
) -> None:
    asked = step.input if isinstance(step.input, dict) else {}
    work.emit(
        RequestApproval(
            work.run.id,
            work.run.workflow,
            step.key,
            step.attempt,
            str(asked.get("message", "")),
            people,
            1,
            expires,
            form=dict(asked.get("form") or {}),
            reason="delegation" if delegated_by else "requested",
            delegated_by=delegated_by,
            notify=waiting.notify_of(work),
        )
    )


def on_timer(work: Work, step: StepState) -> None:
    """Nobody answered before the links expired."""
    fail_step(work, step, "InputTimedOut", "nobody answered the form before its links expired")


def on_decision(work: Work, event: ApprovalDecided) -> None:
    """An answer (a delegate's in the assignee's name): the first valid one from an assignee is
    the step's output. Or an assignee hands their link on."""
    if event.delegate_to is not None:
        _hand_on(work, event)
        return
    if not waiting.open_to(work, event, WAITING_FOR, "answer"):
        return
    spec = work.spec(event.key)
    assert isinstance(spec, InputStep)
    # The step's record says who may answer: its groups were resolved when it opened.
    record = work.peek(event.key)
    asked = record.input if record is not None and isinstance(record.input, dict) else {}
    if not waiting.named(work, event, list(asked.get("assignees") or []), "assignee"):
        return
    if not waiting.in_name_of(work, event):
        return
    problem = schema_problem(spec.form, event.answer) if event.answer is not None else None
    if event.answer is None or problem is not None:
        why = problem or "an input step takes an answer (its form's data), not a decision"
        work.note("decision_ignored", event.key, f"answer by {event.approver}: {why}")
        return
    step = work.step(event.key)
    assert step is not None
    who = waiting.record(step, event, {"person": event.approver, "at": work.now.isoformat()})
    work.note(
        "step_answered",
        step,
        f"by {who}",
        person=event.approver,
        **({"operator": True} if event.operator else {}),
    )
    succeed(work, step, event.answer)


def _hand_on(work: Work, event: ApprovalDecided) -> None:
    """An assignee hands their link on: the delegate gets a form link of their own, in the
    assignee's name, expiring at ``event.until``."""
    assert event.delegate_to is not None
    record = work.peek(event.key)
    asked = record.input if record is not None and isinstance(record.input, dict) else {}
    people = list(asked.get("assignees") or [])
    step = waiting.handed_on(work, event, WAITING_FOR, people, "assignee")
    if step is not None:
        until = datetime.fromisoformat(event.until) if event.until else step.due_at
        _ask(work, step, (event.delegate_to,), until, event.approver)
