"""``ctx.wait_for_condition``: check something until it holds, on one record.

A loop of a step and a sleep costs two records a check, and every replay reads them all again
(O(n^2) over n checks). Here the replay runs the check itself; while it is not met, the one
record of the wait is issued again as a ``poll``: the engine updates it in place (the last
value, the checks so far, when the next is due) and wakes the replay at that time, with no
Lambda running meanwhile. When the check is met, the record ends with the value.

While the wait is open its record's output is ``{"value", "deadline", "checks"}`` (the last
value seen, when it gives up, how many checks so far); once it ended, the value that was done.
A replay that reaches the wait before its next check is due suspends without checking.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any, Literal

from stepwell.code.errors import StepFailed
from stepwell.code.protocol import POLL, Checkpoint, Issue, Recorded
from stepwell.code.replay import Replay, error_of, to_json

Pacing = tuple[timedelta, float, timedelta, timedelta]
"""interval, backoff, max_interval, timeout."""


def poll(
    state: Replay,
    key: str,
    name: str,
    position: int,
    after: list[str],
    record: Recorded | None,
    check: Callable[[], Any],
    done: Callable[[Any], bool],
    pacing: Pacing,
) -> Any:
    """One check of the wait ``key`` (or a suspension until it is due)."""
    interval, backoff, max_interval, timeout = pacing
    now = state.now
    held = record.output if record is not None and isinstance(record.output, dict) else {}
    state.interrupt()  # a cancelled run is told at its next step
    due = record.expires_at if record is not None else None
    if due is not None and datetime.fromisoformat(due) > now:
        raise state.suspend(key)  # the next check is not due yet
    checks = int(held.get("checks", 0)) + 1
    deadline = datetime.fromisoformat(held["deadline"]) if "deadline" in held else now + timeout

    def end(
        status: Literal["succeeded", "failed"], output: Any, error: dict[str, Any] | None
    ) -> None:
        state.checkpoints.append(
            Checkpoint(key, name, POLL, position, status, output, error, None, after)
        )

    state.inside_step = key
    try:
        value = check()
        met = bool(done(value))
    except Exception as exc:
        error = error_of(exc)
        end("failed", None, error)
        raise StepFailed(key, error["type"], error["message"]) from exc
    finally:
        state.inside_step = None
    value = to_json(value, f"the value of wait_for_condition {key!r}")
    if met:
        end("succeeded", value, None)
        return value
    if now >= deadline:
        message = f"not met after {checks} checks within {timeout}"
        end("failed", None, {"type": "ConditionTimedOut", "message": message})
        raise StepFailed(key, "ConditionTimedOut", message)
    # The last wait is cut to the time left, so the last check is at the deadline itself.
    wait = min(interval * backoff ** (checks - 1), max_interval, deadline - now)
    progress = {"value": value, "deadline": deadline.isoformat(), "checks": checks}
    spec = {"next": (now + wait).isoformat(), "checks": checks}
    state.issued.append(Issue(key, name, POLL, position, progress, spec, after))
    raise state.suspend(key)
