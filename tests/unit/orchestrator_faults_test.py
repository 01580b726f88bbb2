"""What one failing effect or one failing run does to the others: an effect that raised is not
recorded as delivered, and the minute sweep fires every other timer."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from helpers import task, workflow
from stepwell.engine.commands import EmitEvent
from stepwell.engine.events import StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.timers import sweep


class BusDown(Exception):
    """EventBridge refused the event."""


def one_step_world() -> InProcessWorld:
    definition = workflow({"a": task()}, name="one")
    return InProcessWorld({"one": definition}, {"Fn": lambda value, ctx: {"ok": True}})


def test_an_effect_that_raised_is_sent_again_by_the_sweep_not_taken_as_delivered() -> None:
    world = one_step_world()
    run_id = world.start("one", {})
    (attempt,) = list(world.dispatched)
    world.dispatched.clear()
    real_emit, failing = world.emit, {"run.completed"}

    def emit(command: EmitEvent) -> None:
        if command.detail_type in failing:
            failing.discard(command.detail_type)
            raise BusDown(command.detail_type)
        real_emit(command)

    world.emit = emit  # type: ignore[method-assign]
    world.orchestrator.ports.bus = world
    with pytest.raises(BusDown):
        world.send(run_id, StepSucceeded("a", attempt.attempt, {"ok": True}))
    # Lambda retries the invocation in the same container: its orchestrator must not carry
    # out what the failed one left queued (the outbox's clearing among it).
    world.send(run_id, StepSucceeded("a", attempt.attempt, {"ok": True}))  # a duplicate
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert [e["kind"] for e in run.outbox] == ["emit"]  # still waiting to be delivered
    world.clock.advance(timedelta(minutes=2))
    sweep(world.orchestrator, world.store)
    assert [e.detail_type for e in world.events].count("run.completed") == 1
    run = world.store.get_run(run_id)
    assert run is not None and run.outbox == []


def test_a_timer_that_fails_does_not_stop_the_sweep_firing_the_others(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    world = one_step_world()
    broken, healthy = world.start("one", {}), world.start("one", {})
    world.dispatched.clear()  # both attempts are lost: their leases are due
    world.clock.advance(timedelta(hours=1))
    real_handle = world.orchestrator.handle

    def handle(run_id: str, event: Any) -> Any:
        if run_id == broken:
            raise RuntimeError("this run's records cannot be read")
        return real_handle(run_id, event)

    monkeypatch.setattr(world.orchestrator, "handle", handle)
    report = sweep(world.orchestrator, world.store)
    assert report.failed >= 1 and report.fired >= 1
    assert {c.run_id for c in world.dispatched} == {healthy}  # its lost attempt went again
