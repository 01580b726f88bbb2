"""A callback: the step waits for an external system's signal (a signed token), extended by
its heartbeats, until its timeout; a signal that arrives before the wait opens is kept for it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from stepwell.definition.models import CallbackStep, Step
from stepwell.engine import waiting
from stepwell.engine.attempts import set_timer
from stepwell.engine.commands import EmitEvent
from stepwell.engine.decision import Work
from stepwell.engine.events import CallbackReceived
from stepwell.engine.outcomes import fail_step, succeed
from stepwell.engine.state import StepState, parse_key

waits = True
inline = False


def parameters(spec: Step, data: dict[str, Any], now: datetime) -> Any:
    return None


def start(work: Work, step: StepState, spec: Step, data: dict[str, Any]) -> None:
    """Open the wait and announce it (the edge adds the signed token and URL)."""
    assert isinstance(spec, CallbackStep)
    waiting.open_wait(work, step)
    ends = [work.now + spec.timeout] if spec.timeout else []
    if spec.until is not None:
        until = waiting.time_of(work, step, spec.until, data)
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
        on_signal(work, CallbackReceived(key=step.key, **signal))
        return
    _callback_timer(work, step)


def _callback_timer(work: Work, step: StepState) -> None:
    dues = [d for d in (step.timeout_at, step.heartbeat_due) if d is not None]
    set_timer(work, step, min(dues) if dues else None)


def on_timer(work: Work, step: StepState) -> None:
    """No signal (or no heartbeat) in time."""
    if step.heartbeat_due is not None and step.heartbeat_due <= work.now:
        fail_step(work, step, "HeartbeatTimedOut", "no heartbeat in time")
    else:
        fail_step(work, step, "CallbackTimedOut", "no callback in time")


def on_signal(work: Work, event: CallbackReceived) -> None:
    """Complete, fail or extend a callback wait; keep a signal that arrives early."""
    if not work.driver.knows(work.definition, parse_key(event.key)[0]):
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
        step = work.driver.ahead(work, event.key)
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
