"""Step-level ``concurrency``: at most ``limit`` attempts of a step per key at once, across all
runs. An attempt past the limit waits for a slot in its key's queue; every end of an attempt
(success, failure and its retry, timeout, lease run out, skip, cancel, the run's end) gives the
slot back and hands it to the next."""

from __future__ import annotations

import heapq
import random
from datetime import datetime, timedelta
from typing import Any

from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt
from stepwell.engine.events import (
    CancelRequested,
    SkipRequested,
    StepFailed,
    StepSucceeded,
    TimerFired,
)
from stepwell.local.inprocess import InProcessWorld

LIMIT = 3


def charging(**step: Any) -> Workflow:
    return Workflow.model_validate(
        {
            "name": "charge",
            "steps": {
                "charge": {
                    "function": "Charge",
                    "input": {"n": "${input.n}"},
                    "concurrency": {"key": "${input.merchant}", "limit": LIMIT},
                    **step,
                },
                "after": {"function": "Charge", "depends_on": "charge"},
            },
        }
    )


def world_of(definition: Workflow) -> InProcessWorld:
    return InProcessWorld({"charge": definition}, {"Charge": lambda input, context: input})


class Spans:
    """Attempts of ``charge`` as they run: the instants each was dispatched and answered."""

    def __init__(self) -> None:
        self.running: dict[tuple[str, int], datetime] = {}
        self.spans: list[tuple[datetime, datetime]] = []

    def started(self, world: InProcessWorld) -> list[DispatchAttempt]:
        """Attempts of ``charge`` dispatched and not answered yet."""
        for command in world.dispatched:
            if command.step_id == "charge":
                self.running.setdefault((command.run_id, command.attempt), command.dispatched_at)
        return [c for c in world.dispatched if c.step_id == "charge"]

    def answered(self, command: DispatchAttempt, at: datetime) -> None:
        self.spans.append((self.running.pop((command.run_id, command.attempt)), at))

    def peak(self) -> int:
        # An end and a start at one instant: the slot changed hands (the end counts first).
        moments = sorted([(b, 1) for b, _ in self.spans] + [(e, -1) for _, e in self.spans])
        holding = peak = 0
        for _, change in moments:
            holding += change
            peak = max(peak, holding)
        return peak


def play(world: InProcessWorld, spans: Spans, draw: random.Random, fail: float = 0.0) -> None:
    """Answer the attempts in a random order, a second apart, some with a failure."""
    while world.dispatched:
        world.clock.advance(timedelta(seconds=1))
        running = spans.started(world)
        others = [c for c in world.dispatched if c.step_id != "charge"]
        command = draw.choice(running) if running else others[0]
        world.dispatched.remove(command)
        if command.step_id != "charge":
            world._run_attempt(command)
            continue
        spans.answered(command, world.clock.now())
        if draw.random() < fail:
            event: Any = StepFailed("charge", command.attempt, "Declined", "", token=command.token)
        else:
            event = StepSucceeded("charge", command.attempt, {"ok": 1}, token=command.token)
        world.send(command.run_id, event)


def free(world: InProcessWorld, key: str) -> bool:
    slots = world.store.slots(key)
    return slots.held == () and slots.head is None


def test_a_limit_of_3_across_50_runs_never_runs_more_than_3_attempts_at_once() -> None:
    world = world_of(charging())
    ids = [world.start("charge", {"merchant": "m1", "n": n}) for n in range(50)]
    assert len([c for c in world.dispatched if c.step_id == "charge"]) == LIMIT
    waiting = world.store.load(ids[-1], {"charge"}).steps["charge"]
    assert waiting.status == "waiting" and waiting.waiting_for == "slot"
    spans = Spans()
    play(world, spans, random.Random(28))
    assert {world.store.get_run(i).status for i in ids} == {"succeeded"}  # type: ignore[union-attr]
    assert len(spans.spans) == 50 and spans.peak() == LIMIT
    assert free(world, "charge/charge#m1")


def test_failures_retried_give_the_slot_back_and_queue_again() -> None:
    world = world_of(charging(retry={"max_attempts": 5, "interval": "10s"}))
    ids = [world.start("charge", {"merchant": "m1", "n": n}) for n in range(20)]
    spans = Spans()
    draw = random.Random(7)
    while any(world.store.get_run(i).status != "succeeded" for i in ids):  # type: ignore[union-attr]
        play(world, spans, draw, fail=0.3)
        # The retries' timers: each attempt after its backoff waits for a slot again.
        while world.timers and not world.dispatched:
            due, _, timer = heapq.heappop(world.timers)
            world.clock.set(max(due, world.clock.now()))
            world.send(timer.run_id, TimerFired(timer.key, due))
    assert spans.peak() == LIMIT and len(spans.spans) > 20
    assert free(world, "charge/charge#m1")


def test_skip_cancel_and_timeout_each_give_the_slot_back_or_leave_the_queue() -> None:
    world = world_of(charging(timeout="1m"))
    a, b, c, d, e = (world.start("charge", {"merchant": "m1", "n": n}) for n in range(5))
    assert world.store.slots("charge/charge#m1").held == tuple(
        sorted(f"{i}/charge" for i in (a, b, c))
    )
    world.send(d, CancelRequested("no longer wanted"))  # queued: it leaves the queue
    world.send(a, SkipRequested("charge"))  # holding: its slot goes to e
    assert world.store.slots("charge/charge#m1").held == tuple(
        sorted(f"{i}/charge" for i in (b, c, e))
    )
    world.send(b, CancelRequested("no longer wanted"))  # holding, the run's end
    world.dispatched.clear()  # c's and e's attempts never answer: they time out
    world.clock.advance(timedelta(minutes=2))
    world.run_until_idle()
    assert world.store.get_run(c).status == "failed"  # type: ignore[union-attr]
    assert free(world, "charge/charge#m1")


def test_keys_apart_do_not_share_slots() -> None:
    world = world_of(charging())
    for n in range(8):
        world.start("charge", {"merchant": f"m{n % 2}", "n": n})
    assert len(world.dispatched) == 2 * LIMIT


def test_an_attempt_that_fails_gives_its_slot_to_the_next_during_its_backoff() -> None:
    world = world_of(charging(retry={"max_attempts": 3, "interval": "10s"}))
    a, _, _, d = (world.start("charge", {"merchant": "m1", "n": n}) for n in range(4))
    first = next(c for c in world.dispatched if c.run_id == a)
    world.dispatched.remove(first)
    world.send(a, StepFailed("charge", first.attempt, "Declined", "", token=first.token))
    assert d in {c.run_id for c in world.dispatched}  # the slot went on at once
    assert f"{a}/charge" not in world.store.slots("charge/charge#m1").held
    world.clock.advance(timedelta(seconds=30))
    [(_, _, timer)] = world.timers
    world.send(a, TimerFired(timer.key, timer.due_at))  # its backoff is over: it waits again
    step = world.store.load(a, {"charge"}).steps["charge"]
    assert step.status == "waiting" and step.waiting_for == "slot" and step.attempt == 1
    assert world.store.slots("charge/charge#m1").head == f"{a}/charge"


def test_an_attempt_whose_lease_ran_out_gives_its_slot_back_and_waits_again() -> None:
    world = world_of(charging())
    a, _, _, d = (world.start("charge", {"merchant": "m1", "n": n}) for n in range(4))
    world.dispatched.clear()  # three invocations die: no result ever comes
    world.clock.advance(timedelta(minutes=20))
    world.run_until_idle()
    assert {world.store.get_run(i).status for i in (a, d)} == {"succeeded"}  # type: ignore[union-attr]
    kinds = [e.type for e in world.store.timeline(a).items if e.step == "charge"]
    lost = kinds.index("attempt_lost")
    assert kinds[lost + 1] == "step_queued"  # the new attempt waited for a slot like any other
    assert free(world, "charge/charge#m1")


def test_a_code_first_task_takes_a_slot_of_its_key_like_a_yaml_step() -> None:
    from stepwell.code.workflow import workflow

    @workflow(name="coded")
    def coded(ctx: Any, input: Any) -> Any:
        return ctx.task("charge", "Charge", input, concurrency=(input["merchant"], 1))

    definition = Workflow(name="coded", steps={}, code="t.py:coded", code_version="1")
    world = InProcessWorld(
        {"coded": definition},
        {"Charge": lambda input, context: input},
        code={"coded": coded},
    )
    ids = [world.start("coded", {"merchant": "m1", "n": n}) for n in range(3)]
    spans = Spans()
    play(world, spans, random.Random(3))
    assert {world.store.get_run(i).status for i in ids} == {"succeeded"}  # type: ignore[union-attr]
    assert len(spans.spans) == 3 and spans.peak() == 1
    assert free(world, "coded/charge#m1")
