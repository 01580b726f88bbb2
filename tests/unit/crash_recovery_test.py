"""Crash injection: a crash between any two writes, or between a write and its effects, loses
no run and records no attempt's effect twice; the due-time sweep brings every run home.

A "crash" here is what a dying Lambda leaves behind: either the decision was never committed
(the event that caused it is lost), or it was committed and none of its commands were carried
out (no invoke, no timer message, no bus event). Recovery uses only what AWS would have: the
records, and the sweep over due times.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest

from helpers import ORDER, ORDER_FILES, order_world
from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.timers import sweep
from stepwell.store.port import Conflict


class Crash(Exception):
    """The invocation died."""


def _world(crash_at: int | None, mode: str, name: str) -> tuple[InProcessWorld, Counter[str]]:
    world: InProcessWorld = order_world(name)
    commits = Counter[str]()
    store = world.store
    real_commit, real_act = store.commit, world.orchestrator._act

    def commit(decision, expected_seq):  # type: ignore[no-untyped-def]
        commits["n"] += 1
        if mode == "before-write" and commits["n"] == crash_at:
            raise Crash("died before the write")
        real_commit(decision, expected_seq)
        if mode == "after-write" and commits["n"] == crash_at:
            commits["dropped"] = 1
            raise Crash("died after the write, before its effects")

    def act(run_id, commands, outbox=None):  # type: ignore[no-untyped-def]
        if commits.pop("dropped", 0):
            return  # the commands died with the invocation
        real_act(run_id, commands, outbox)

    real_create = store.create

    def create(decision):  # type: ignore[no-untyped-def]
        commits["n"] += 1
        if mode == "before-write" and commits["n"] == crash_at:
            raise Crash("died before creating the run")
        real_create(decision)
        if mode == "after-write" and commits["n"] == crash_at:
            commits["dropped"] = 1
            raise Crash("died after creating the run, before its effects")

    real_send = world.send

    def send(run_id, event):  # type: ignore[no-untyped-def]
        try:
            real_send(run_id, event)
        except Crash:
            if isinstance(event, ApprovalDecided):
                # The person saw an error page and clicks the link again.
                world.pending_decisions.append((run_id, event))
            raise

    def crashing(real):  # type: ignore[no-untyped-def]
        """A write of one step alone, or a count on a fan-out's parent, that may crash."""

        def write(*args):  # type: ignore[no-untyped-def]
            commits["n"] += 1
            if mode == "before-write" and commits["n"] == crash_at:
                raise Crash("died before the write")
            done = real(*args)
            if mode == "after-write" and commits["n"] == crash_at:
                commits["dropped"] = 1
                raise Crash("died after the write, before its effects")
            return done

        return write

    world.send = send  # type: ignore[method-assign]
    store.commit = commit  # type: ignore[method-assign]
    store.create = create  # type: ignore[method-assign]
    store.write_step = crashing(store.write_step)  # type: ignore[method-assign]
    store.count_item = crashing(store.count_item)  # type: ignore[method-assign]
    store.wake_replay = crashing(store.wake_replay)  # type: ignore[method-assign]
    world.orchestrator._act = act  # type: ignore[method-assign]
    return world, commits


def _play(world: InProcessWorld, run_id: str) -> None:
    """Deliver what is in flight; when stuck, let time pass and sweep, as the minute rule does."""
    for _ in range(200):
        try:
            world.run_until_idle(virtual_time=False)
        except Crash:
            continue
        run = world.store.get_run(run_id)
        assert run is not None
        if run.terminal:
            return
        due = world.store.next_due()
        assert due is not None, "a run that is not finished must have something due"
        world.clock.set(due + timedelta(seconds=60))
        world.timers.clear()  # timer messages may have died too; the sweep is the backstop
        try:
            sweep(world.orchestrator, world.store)
        except (Crash, Conflict):
            continue
    raise AssertionError("the run never finished")


def _baseline_commits(name: str) -> int:
    world, commits = _world(None, "none", name)
    world.start(name, ORDER)
    world.run_until_idle()
    return commits["n"]


@pytest.mark.parametrize("name", sorted(ORDER_FILES))
@pytest.mark.parametrize("mode", ["before-write", "after-write"])
def test_a_crash_at_any_commit_still_ends_the_run_correctly(mode: str, name: str) -> None:
    total = _baseline_commits(name)
    assert total >= 10
    for crash_at in range(1, total + 1):
        world, _ = _world(crash_at, mode, name)
        try:
            run_id = world.start(name, ORDER, run_id="r-1")
        except Crash:
            if mode == "before-write":
                continue  # the start itself was lost: the caller got an error and retries
            run_id = "r-1"
        _play(world, run_id)
        run = world.store.get_run(run_id)
        assert run is not None and run.status == "succeeded", (crash_at, run)
        assert run.output["reservations"] and run.output["charge_id"], crash_at
        completed = Counter(
            e.step
            for e in world.store.timeline(run_id, limit=10_000).items
            if e.type == "step_completed"
        )
        # No step's effect is recorded twice, whatever was retried or redelivered.
        assert all(count == 1 for count in completed.values()), (crash_at, completed)
        names = {key.rsplit(".", 1)[-1] for key in completed}  # code: reserve.0.reserve ...
        assert names >= {"validate", "reserve", "charge", "cool_off", "announce"}
