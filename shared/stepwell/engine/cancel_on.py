"""A workflow's ``cancel_on``: events that cancel the run.

They use the event waits' index: as the run begins, each ``cancel_on`` is indexed under its
(source, detail-type, correlation value) like a step's wait, under the run's own key
(``CANCEL_ON_KEY``); a matching event cancels the run as ``POST /runs/{id}/cancel`` does. The
decision that ends the run, whichever way, takes its entries out of the index, so an event
after the run's end reaches nothing; one that still finds the run ended leaves it alone.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from stepwell import expressions
from stepwell.definition.models import EventPattern
from stepwell.engine.commands import UnwatchEvent, WatchEvent, counts_since
from stepwell.engine.decision import Work
from stepwell.engine.events import CANCEL_ON_KEY, CancelOnEvent
from stepwell.engine.kinds.event import correlation_key, refused


def _values(work: Work) -> list[tuple[EventPattern, str | None]]:
    """Each cancel_on with the run's value (from its input and context, so the same at its
    start and at its end); None when it gives none (nothing cancels by it)."""
    run = work.run
    data = {"input": run.input, "context": run.context}
    found: list[tuple[EventPattern, str | None]] = []
    for pattern in work.definition.cancel_on:
        try:
            rendered = expressions.render(pattern.correlate.equals, data, work.now)
        except expressions.ExpressionError:
            rendered = None
        found.append((pattern, correlation_key(rendered)))
    return found


def watch(work: Work) -> None:
    """Index the run's cancel_on (as it begins; again at its first watch, for an event kept
    by a process that did not know the path yet: see ``engine.kinds.event.RECHECK``)."""
    run = work.run
    if run.started_at is None or run.deadline is None:
        return
    for index, (pattern, value) in enumerate(_values(work)):
        if value is None:
            work.note(
                "cancel_on_unwatched",
                None,
                f"cancel_on[{index}].correlate.equals gave no value: no event cancels by it",
            )
            continue
        work.emit(
            WatchEvent(
                run.id,
                CANCEL_ON_KEY,
                0,
                pattern.source,
                pattern.detail_type,
                pattern.correlate.event,
                value,
                opened_at=run.started_at,
                lookback=0,
                expires_at=run.deadline,
            )
        )


def release(work: Work) -> None:
    """The run ended: take its cancel_on out of the index (a run that never began has none)."""
    if work.run.started_at is None:
        return
    for pattern, value in _values(work):
        if value is None:
            continue
        work.emit(
            UnwatchEvent(
                work.run.id,
                CANCEL_ON_KEY,
                pattern.source,
                pattern.detail_type,
                pattern.correlate.event,
                value,
            )
        )


def reason(work: Work, received: CancelOnEvent) -> str | None:
    """Why the run is cancelled: the first of ``received`` that is one of its cancel_on; None
    when none is (each noted), or the run ended or is being cancelled already (left alone)."""
    run = work.run
    if run.terminal or run.cancelling is not None or run.started_at is None:
        return None
    since = counts_since(run.started_at, timedelta(0))
    values = [(p, value) for p, value in _values(work) if value is not None]

    def seen() -> dict[str, Any]:
        return {"input": run.input, "context": run.context}

    for event in received.events:
        problems = [refused(work, p, value, since, event, seen) for p, value in values]
        if None in problems:
            pattern = values[problems.index(None)][0]
            return f"event {event.get('id')} ({pattern.source} {pattern.detail_type})"
        shown = "; ".join(str(p) for p in problems)
        work.note("event_not_matching", None, f"cancel_on: event {event.get('id')}: {shown}")
    return None
