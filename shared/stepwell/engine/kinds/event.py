"""An event wait: the step waits for an event from the bus that carries the run's correlation
value (and passes its filter and schema), until its timeout.

The engine decides; the edge keeps the index of open waits and the events no wait took yet. As
the wait opens, its ``WatchEvent`` command indexes it under (source, detail-type, correlation
value) and hands it the events kept for that key since its lookback began; an event that
arrives later is delivered to every wait indexed under its key. Either way the wait receives
``EventReceived`` and the first event that passes completes it, once: another delivery of the
same event (a bus redelivery, a re-send) is noted and changes nothing.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from stepwell import expressions
from stepwell.definition.models import EventPattern, EventStep, Step
from stepwell.engine import waiting
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import UnwatchEvent, WatchEvent, counts_since
from stepwell.engine.data import schema_problem
from stepwell.engine.decision import Work
from stepwell.engine.events import EventReceived
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState

waits = True
inline = False

RECHECK = timedelta(minutes=1)
"""A wait looks at the kept events once more this long after it opened: the edge reads which
correlation paths a type's waits use at most every ``store.event_waits.ROUTES_FRESH``, so an
event kept by a process that did not know a path yet (the first wait on it, just opened) is
found then."""


def value_at(event: dict[str, Any], path: str) -> Any:
    """The value at a dotted path of an event (detail.order_id); None when it has none."""
    found: Any = event
    for part in path.split("."):
        if not isinstance(found, dict):
            return None
        found = found.get(part)
    return found


def happened_at(event: dict[str, Any]) -> datetime:
    """An event's ``time`` (EventBridge's, ``...Z``)."""
    return datetime.fromisoformat(str(event["time"]).replace("Z", "+00:00"))


def correlation_key(value: Any) -> str | None:
    """A correlation value as the index keys it (text as it is, other values as JSON); None
    for no value (nothing correlates on a missing value)."""
    if value is None:
        return None
    return value if isinstance(value, str) else json.dumps(value, sort_keys=True)


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Open the wait and ask the edge to index it under each kind of event it waits for (and
    to hand it what was kept for it)."""
    assert isinstance(spec, EventStep)
    waiting.open_wait(work, step)
    awaits = []
    for index, pattern in enumerate(spec.patterns):
        value = correlation_key(expressions.render(pattern.correlate.equals, data, work.now))
        if value is None:
            where = "event" if spec.event is not None else f"events[{index}]"
            fail_step(
                work,
                step,
                "InvalidCorrelation",
                f"step '{step.key}': {where}.correlate.equals gave no value to wait for "
                f"({pattern.correlate.equals!r}): give it a value the run has when the step "
                "starts",
            )
            return
        awaits.append(
            {
                "source": pattern.source,
                "detail_type": pattern.detail_type,
                "event": pattern.correlate.event,
                "equals": value,
            }
        )
    step.waiting_for = "event"
    step.awaits = awaits
    step.timeout_at = work.now + spec.timeout if spec.timeout else None
    shown = " or ".join(
        f"{a['source']} {a['detail_type']} with {a['event']} = {a['equals']}" for a in awaits
    )
    work.note("step_waiting", step, f"event {shown}", waiting_for="event", awaits=awaits)
    _watch(work, step, spec)
    recheck = work.now + RECHECK
    set_timer(work, step, min(recheck, step.timeout_at) if step.timeout_at else recheck)


def _watch(work: Work, step: StepState, spec: EventStep) -> None:
    """Ask the edge to index the wait and hand it the kept events of its lookback."""
    assert step.awaits is not None and step.attempt_started_at is not None
    ends = work.run.deadline or step.attempt_started_at + timedelta(days=365)
    for awaited in step.awaits:
        work.emit(
            WatchEvent(
                work.run.id,
                step.key,
                step.attempt,
                awaited["source"],
                awaited["detail_type"],
                awaited["event"],
                awaited["equals"],
                opened_at=step.attempt_started_at,
                lookback=int(spec.lookback.total_seconds()),
                expires_at=min(step.timeout_at, ends) if step.timeout_at else ends,
            )
        )


def release(work: Work, step: StepState) -> None:
    """The wait ended, whichever way (an event, its timeout, a skip, the run's end): take it
    out of the index, but for the kind of event that completed it (marked ``taken``), so a
    second delivery of that event is still noted on the timeline."""
    for awaited in step.awaits or []:
        if "taken" not in awaited:
            work.emit(
                UnwatchEvent(
                    work.run.id,
                    step.key,
                    awaited["source"],
                    awaited["detail_type"],
                    awaited["event"],
                    awaited["equals"],
                )
            )


def on_timer(work: Work, step: StepState) -> None:
    """Look at the kept events once more (see RECHECK); or no event in time: fail, or go on
    with no output."""
    spec = work.spec(step.key)
    assert isinstance(spec, EventStep)
    if step.timeout_at is None or work.now < step.timeout_at:
        _watch(work, step, spec)
        set_timer(work, step, step.timeout_at)
        return
    if spec.on_timeout == "continue":
        work.note("event_timed_out", step, "no event in time; going on without one")
        succeed(work, step, None)
    else:
        fail_step(work, step, "EventTimedOut", "no matching event in time")


def on_event(work: Work, received: EventReceived) -> None:
    """Complete the wait with the first event that passes its filter and schema."""
    record = work.peek(received.key)
    if record is None:
        return
    if record.waiting_for != "event" or record.attempt != received.attempt or work.run.terminal:
        taken = record.output.get("id") if isinstance(record.output, dict) else None
        again = [e["id"] for e in received.events if e.get("id") == taken]
        if again and record.status == "succeeded":
            work.note("event_duplicate", record.key, f"event {again[0]} again: changes nothing")
        return  # a delivery to a wait that ended (its index entry outlives it): nothing to do
    spec = work.spec(received.key)
    assert isinstance(spec, EventStep)
    for event in received.events:
        problems = [_refused(work, record, i, p, event) for i, p in enumerate(spec.patterns)]
        if None in problems:
            matched = problems.index(None)
            step = work.step(received.key)
            assert step is not None
            work.note("event_received", step, f"event {event.get('id')}", event=event.get("id"))
            step.awaits = [
                {**awaited, "taken": event.get("id")} if index == matched else awaited
                for index, awaited in enumerate(step.awaits or [])
            ]
            succeed(work, step, event if spec.event is not None else {**event, "matched": matched})
            return
        shown = "; ".join(str(p) for p in problems)
        work.note("event_not_matching", received.key, f"event {event.get('id')}: {shown}")


def _refused(
    work: Work, wait: StepState, index: int, pattern: EventPattern, event: dict[str, Any]
) -> str | None:
    """Why ``event`` is not the ``index``-th kind of event the wait waits for (None: it is)."""
    spec = work.spec(wait.key)
    assert isinstance(spec, EventStep) and wait.attempt_started_at is not None
    since = counts_since(wait.attempt_started_at, spec.lookback)
    equals = (wait.awaits or [])[index]["equals"]
    return refused(
        work, pattern, equals, since, event, lambda: work.driver.expression_data(work, wait.key)
    )


def refused(
    work: Work,
    pattern: EventPattern,
    equals: str,
    since: datetime,
    event: dict[str, Any],
    seen: Callable[[], dict[str, Any]],
) -> str | None:
    """Why ``event`` is not one ``pattern`` describes, carrying ``equals`` and no older than
    ``since`` (None: it is). Its ``where`` sees ``event`` and what ``seen()`` gives (read only
    when there is a ``where``)."""
    if (event.get("source"), event.get("detail_type")) != (pattern.source, pattern.detail_type):
        return "another source or detail-type"
    if happened_at(event) < since:
        return f"it happened at {event['time']}, before the wait looks back to ({since})"
    carried = correlation_key(value_at(event, pattern.correlate.event))
    if carried != equals:
        return f"{pattern.correlate.event} is {carried}, not {equals}"
    problem = schema_problem(pattern.schema_, event.get("detail"))
    if problem:
        return f"its detail does not match the schema ({problem})"
    if pattern.where is not None:
        data = {**seen(), "event": event}
        try:
            if not expressions.truthy(expressions.render(pattern.where, data, work.now)):
                return "where is false"
        except expressions.ExpressionError as exc:
            return f"where could not be evaluated ({exc})"
    return None
