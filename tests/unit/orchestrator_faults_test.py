"""What one failing effect or one failing run does to the others: an effect that raised is
carried out again (in the call, then at the process's next call) and never recorded as
delivered before it is; a dead process's is sent again by the sweep, which fires every other
timer when one fails."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from helpers import task, workflow
from stepwell.engine.commands import EmitEvent
from stepwell.engine.events import CancelRequested, StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.runtime.owed import ROUNDS
from stepwell.runtime.timers import sweep


class BusDown(Exception):
    """EventBridge refused the event."""


def one_step_world() -> InProcessWorld:
    definition = workflow({"a": task()}, name="one")
    return InProcessWorld({"one": definition}, {"Fn": lambda value, ctx: {"ok": True}})


def failing_bus(world: InProcessWorld, detail_type: str, times: int) -> None:
    """The bus refuses the next ``times`` events of ``detail_type``."""
    real_emit, left = world.emit, [times]

    def emit(command: EmitEvent) -> None:
        if command.detail_type == detail_type and left[0] > 0:
            left[0] -= 1
            raise BusDown(command.detail_type)
        real_emit(command)

    world.emit = emit  # type: ignore[method-assign]
    world.orchestrator.ports.bus = world


def ended_with_one_step(world: InProcessWorld) -> tuple[str, StepSucceeded]:
    run_id = world.start("one", {})
    (attempt,) = list(world.dispatched)
    world.dispatched.clear()
    return run_id, StepSucceeded("a", attempt.attempt, {"ok": True})


def test_an_effect_that_raised_once_is_carried_out_again_in_the_same_call() -> None:
    world = one_step_world()
    run_id, result = ended_with_one_step(world)
    failing_bus(world, "run.completed", times=1)
    world.send(run_id, result)
    assert [e.detail_type for e in world.events].count("run.completed") == 1
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded" and run.outbox == []


def test_an_effect_that_keeps_failing_stays_owed_and_the_next_call_carries_it_out() -> None:
    world = one_step_world()
    run_id, result = ended_with_one_step(world)
    failing_bus(world, "run.completed", times=ROUNDS)
    with pytest.raises(BusDown):
        world.send(run_id, result)
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert [e["kind"] for e in run.outbox] == ["emit"]  # not taken as delivered
    # The result path sends the result again (a duplicate): the call first carries out what
    # the failed one still owes, and clears it from the outbox.
    world.send(run_id, result)
    assert [e.detail_type for e in world.events].count("run.completed") == 1
    run = world.store.get_run(run_id)
    assert run is not None and run.outbox == []


def test_an_effect_a_dead_process_owed_is_sent_again_by_the_sweep() -> None:
    world = one_step_world()
    run_id, result = ended_with_one_step(world)
    failing_bus(world, "run.completed", times=ROUNDS)
    with pytest.raises(BusDown):
        world.send(run_id, result)
    # The process died with what it owed: the sweep runs in another.
    other = Orchestrator(world.store, world.orchestrator.ports, world.clock, world.workflows.get)
    world.clock.advance(timedelta(minutes=2))
    sweep(other, world.store)
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


class StoreDown(Exception):
    """DynamoDB refused a write (before it took effect)."""


def test_a_command_that_fails_does_not_drop_the_rest_of_the_queue() -> None:
    # a's end owes two follow-ups (b and c counting it, each then dispatched): the first one's
    # write fails once; c is still dispatched, and b once its follow-up is carried out again.
    definition = workflow({"a": task(), "b": task("a"), "c": task("a")}, name="fork")
    world = InProcessWorld({"fork": definition}, {"fn": lambda value, ctx: {"ok": True}})
    run_id = world.start("fork", {})
    (attempt,) = list(world.dispatched)
    world.dispatched.clear()
    real_write, failing = world.store.write_step, ["b"]

    def write_step(run: Any, decision: Any) -> None:
        if decision.single_step in failing:
            failing.remove(decision.single_step)
            raise StoreDown(decision.single_step)
        real_write(run, decision)

    world.store.write_step = write_step  # type: ignore[method-assign]
    world.send(run_id, StepSucceeded("a", attempt.attempt, {"ok": True}))
    assert sorted((c.key, c.attempt) for c in world.dispatched) == [("b", 1), ("c", 1)]
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    lost = [e for e in world.store.timeline(run_id, limit=100).items if e.type == "attempt_lost"]
    assert lost == []


class InvokeRefused(Exception):
    """Lambda did not take the invoke (its own retries ran out)."""


def test_an_attempt_whose_invoke_failed_is_sent_again_without_using_a_retry() -> None:
    # One attempt allowed by the retry policy: an invoke that failed twice does not use it up.
    definition = workflow({"a": task(retry={"max_attempts": 1})}, name="once")
    world = InProcessWorld({"once": definition}, {"fn": lambda value, ctx: {"ok": True}})
    refusals = [2]

    def dispatch(command: Any) -> None:
        if refusals[0] > 0:
            refusals[0] -= 1
            raise InvokeRefused("Rate exceeded")
        world.dispatched.append(command)

    world.dispatch = dispatch  # type: ignore[method-assign]
    run_id = world.start("once", {})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run.error if run else None
    (step,) = world.store.steps(run_id)
    assert (step.attempt, step.lost_attempts) == (3, 2)
    types = [e.type for e in world.store.timeline(run_id, limit=100).items]
    assert types.count("attempt_lost") == 2 and "step_retrying" not in types


def test_a_step_whose_function_could_not_start_is_sent_again_without_using_a_retry() -> None:
    import json

    from stepwell.runtime.envelope import StepEnvelope
    from stepwell.runtime.results import record_lost_invocation

    definition = workflow({"a": task(retry={"max_attempts": 1})}, name="once")
    world = InProcessWorld({"once": definition}, {"fn": lambda value, ctx: {"ok": True}})
    run_id = world.start("once", {})
    (first,) = list(world.dispatched)
    world.dispatched.clear()
    # Lambda's on-failure record: the function's module could not be imported.
    record_lost_invocation(
        world.orchestrator,
        {
            "requestPayload": json.loads(StepEnvelope.from_dispatch(first).to_payload()),
            "requestContext": {"condition": "RetriesExhausted", "approximateInvokeCount": 1},
            "responseContext": {"statusCode": 200, "functionError": "Unhandled"},
            "responsePayload": {
                "errorType": "Runtime.ImportModuleError",
                "errorMessage": "Unable to import module 'app': No module named 'stripe'",
            },
        },
    )
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run.error if run else None
    (step,) = world.store.steps(run_id)
    assert (step.attempt, step.lost_attempts) == (2, 1)


def test_a_clearing_on_a_run_another_process_changed_meanwhile_reads_it_again() -> None:
    """The outbox's clearing starts from the run as its own commit wrote it; a commit of
    another process in between makes that stale, and the clearing decides again on a read."""
    world = one_step_world()
    other = Orchestrator(
        world.store,
        Ports(invoker=world, timers=world, bus=world, approvals=world),
        world.clock,
        world.workflows.get,
    )
    real_emit = world.emit

    def emit(command: EmitEvent) -> None:
        real_emit(command)
        if command.detail_type == "run.started":
            other.handle(command.detail["run_id"], CancelRequested("changed meanwhile"))

    world.emit = emit  # type: ignore[method-assign]
    world.orchestrator.ports.bus = world
    run_id = world.start("one", {})
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "cancelled"
    # Both commits' entries are cleared: the start's (on a read after its stale try) and the
    # cancel's (by the other process).
    assert run.outbox == [] and run.outbox_due is None
    assert [e.detail_type for e in world.events].count("run.started") == 1


def test_a_catch_after_a_fan_out_failure_the_watch_found_reads_the_failure() -> None:
    # The count of the failed item is lost: the parent's watch finds it (a write of the parent
    # alone), and its failure, caught, is a run-level commit. The handler's start is decided
    # after both: on the failed parent, not on the records the watch's write had kept.
    definition = workflow(
        {
            "pack": task(
                for_each="${input.items}",
                catch=[{"errors": "ForEachFailed", "then": "refund"}],
            ),
            "refund": task(input={"failed": "${steps.pack.error.errors[0].index}"}),
        },
        name="pack",
    )

    def fn(value: Any, ctx: Any) -> Any:
        if value == "X":
            raise ValueError("out of stock")
        return value

    world = InProcessWorld({"pack": definition}, {"fn": fn})
    real_count, lost = world.store.count_item, [1]

    def count_item(run_id: str, count: Any, now: Any) -> Any:
        if count.index in lost:
            lost.remove(count.index)
            raise StoreDown("count")
        return real_count(run_id, count, now)

    world.store.count_item = count_item  # type: ignore[method-assign]
    run_id = world.start("pack", {"items": ["A", "X"]})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    timeline = [e.type for e in world.store.timeline(run_id, limit=100).items]
    assert "fanout_recounted" in timeline
    assert run.output == {"refund": {"failed": 1}}
