"""What the waits (approval, input, delay, callback) share: opening the wait as a fenced
attempt, the people it asks (groups resolved), whether a person's answer may be taken, and
reading the time an ``until`` gives."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from stepwell import expressions
from stepwell.definition.models import Person, group_names
from stepwell.engine.decision import Work, attempt_token
from stepwell.engine.events import ApprovalDecided
from stepwell.engine.outcomes import fail_step
from stepwell.engine.state import NeedsGroups, StepState


def open_wait(work: Work, step: StepState) -> None:
    """Begin waiting, as a new attempt (a decision or signal names the attempt it answers)."""
    step.attempt += 1
    step.token = attempt_token(work.run, step.key, step.attempt)
    step.attempt_started_at = work.now
    work.set_status(step, "waiting")


LINK_USED = "this link has already been used"


def open_to(work: Work, event: ApprovalDecided, asked: str, verb: str) -> bool:
    """Whether the wait a person's ``event`` answers is open to it: the step waits for
    ``asked`` (approval, input) on the event's attempt and the event's link was not used.
    Else the reason is noted."""
    record = work.peek(event.key)
    if (
        record is None
        or record.waiting_for != asked
        or record.attempt != event.attempt
        or work.run.terminal
    ):
        what = "form" if asked == "input" else asked
        work.note(
            "decision_ignored",
            event.key,
            f"{verb} by {event.approver}: the {what} is not open",
            attempt=event.attempt,
        )
        return False
    if event.link is not None and any(d.get("link") == event.link for d in record.decisions):
        work.note("decision_ignored", event.key, LINK_USED, link=event.link)
        return False
    return True


def named(work: Work, event: ApprovalDecided, people: list[str], role: str) -> bool:
    """Whether the sender may answer: one of ``people``, none named, or an operator."""
    if people and event.approver not in people and not event.operator:
        work.note("decision_ignored", event.key, f"{event.approver} is not an {role}")
        return False
    return True


def time_of(work: Work, step: StepState, until: Any, data: dict[str, Any]) -> datetime | None:
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


def groups_of(
    work: Work, step: StepState, people: Sequence[Person], field: str
) -> dict[str, list[str]] | None:
    """The people of each group ``people`` names, as the groups file says now (asked of the
    caller with ``NeedsGroups``), to be recorded on the step; None once the step failed
    because ``field`` names a group the file does not define."""
    names = list(dict.fromkeys(group_names(list(people))))
    missing = frozenset(name for name in names if name not in work.state.groups)
    if missing:
        raise NeedsGroups(missing)
    found: dict[str, list[str]] = {}
    for name in names:
        members = work.state.groups[name]
        if members is None:
            fail_step(
                work,
                step,
                "UnknownGroup",
                f"step '{step.key}': field '{field}' names group '{name}', which the groups "
                "file does not define: add it there, or fix the name",
            )
            return None
        found[name] = list(members)
    return found


def expand(people: Sequence[Person], groups: dict[str, list[str]]) -> list[str]:
    """The distinct people ``people`` names, each group as ``groups`` recorded it, in order: a
    person named twice, or in two groups, is one person (e-mails compared without case)."""
    out: list[str] = []
    seen: set[str] = set()
    for entry in people:
        for person in [entry] if isinstance(entry, str) else groups.get(entry.group, []):
            if person.lower() not in seen:
                seen.add(person.lower())
                out.append(person)
    return out


def handed_on(
    work: Work, event: ApprovalDecided, asked: str, people: list[str], role: str
) -> StepState | None:
    """A person hands their link on (``event.delegate_to``, until ``event.until``): recorded on
    the step (``input.delegations``) and on the timeline, and the step returned for its kind to
    send the delegate links of their own; None, the reason noted, when it may not be."""
    if not open_to(work, event, asked, "delegation"):
        return None
    record = work.peek(event.key)
    assert record is not None and event.delegate_to is not None
    inputs = record.input if isinstance(record.input, dict) else {}
    delegations: list[dict[str, Any]] = list(inputs.get("delegations") or [])
    done = {d.get("approver") or d.get("person") for d in record.decisions}
    earlier = next((d for d in delegations if d["from"] == event.approver), None)
    why = None
    if event.approver not in people:
        why = f"{event.approver} is not an {role}: only a named {role} hands their link on"
    elif event.approver in done:
        why = f"{event.approver} has already decided"
    elif earlier is not None:
        why = f"{event.approver} has already handed their link on to {earlier['to']}"
    elif event.delegate_to.lower() == event.approver.lower():
        why = "a link is handed on to someone else"
    if why is not None:
        work.note("decision_ignored", event.key, why)
        return None
    step = work.step(event.key)
    assert step is not None
    handed = {"from": event.approver, "to": event.delegate_to, "until": event.until}
    step.input = {**inputs, "delegations": [*delegations, {**handed, "at": work.now.isoformat()}]}
    work.note(
        "step_delegated",
        step,
        f"{event.approver} handed their link on to {event.delegate_to} until {event.until}",
        **handed,
    )
    return step


def in_name_of(work: Work, event: ApprovalDecided) -> bool:
    """Whether a decision sent by a delegate (``event.by``, in ``event.approver``'s name)
    comes through a delegation the step recorded that has not run out; else noted."""
    if event.by is None:
        return True
    record = work.peek(event.key)
    inputs = record.input if record is not None and isinstance(record.input, dict) else {}
    for handed in inputs.get("delegations") or []:
        if handed["from"] == event.approver and handed["to"] == event.by:
            until = handed.get("until")
            if until is None or datetime.fromisoformat(until) > work.now:
                return True
    work.note(
        "decision_ignored",
        event.key,
        f"{event.by} holds no delegation from {event.approver} (or it ran out)",
    )
    return False


def record(step: StepState, event: ApprovalDecided, recorded: dict[str, Any]) -> str:
    """Keep a person's decision or answer on the step (``recorded``: what the kind keeps of it,
    with who it came through added); returns who made it, as the timeline says it."""
    if event.operator:
        recorded["operator"] = True
    if event.link is not None:
        recorded["link"] = event.link
    if event.by is not None:
        recorded["by"] = event.by
    step.decisions.append(recorded)
    who = f"{event.approver} (operator)" if event.operator else event.approver
    return who + (f" (through {event.by}, who holds their link)" if event.by else "")


def notify_of(work: Work) -> dict[str, Any] | None:
    """The workflow's ``notify`` as the notifications read it off the request (None: the
    stack's channels)."""
    notify = work.definition.notify
    return notify.model_dump(mode="json") if notify is not None else None
