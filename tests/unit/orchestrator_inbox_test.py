"""The run's inbox: a result that loses a run-level commit race is posted (a write that never
conflicts) and folded into a later commit, by its own invocation or by whoever commits next; the
sweep folds what every folder left behind. (A YAML step's result is written on the step alone;
these tests drive the run-level path, which code-first runs take, directly.)"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpers import task, workflow
from stepwell.engine.events import OutboxDelivered, StepFailed, StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import timers
from stepwell.runtime.orchestrator import may_race
from stepwell.store.port import Conflict, Posted


def branches(n: int) -> Any:
    """``n`` parallel branches ``b0``.. joined by one step: their results race on the run."""
    steps: dict[str, Any] = {f"b{i}": task() for i in range(n)}
    steps["join"] = task(*steps, input={"all": [f"${{steps.b{i}.output}}" for i in range(n)]})
    return workflow(steps, name="fan")


FAN = branches(4)


def started(items: int = 4) -> tuple[InProcessWorld, str]:
    world = InProcessWorld({"fan": branches(items)}, {})
    run_id = world.start("fan", {})
    world.dispatched.clear()
    return world, run_id


def inbox_due(world: InProcessWorld, run_id: str, at: Any) -> list[Any]:
    """The run's own due times at ``at`` other than its watch: its inbox's."""
    run = world.store.get_run(run_id)
    assert run is not None
    return [d for d in world.store.due(at) if d.key is None and d.at != run.watch_at]


def inbox_of(world: InProcessWorld, run_id: str) -> list[Posted]:
    found: list[Posted] = []
    world.store.load(run_id, [], found)
    return found


def completed(world: InProcessWorld, run_id: str) -> list[str]:
    entries = world.store.timeline(run_id, limit=1000).items
    return [e.step or "" for e in entries if e.type == "step_completed"]


def test_a_loser_posts_its_result_and_folds_it_itself() -> None:
    world, run_id = started()
    store = world.store
    real = store.commit
    calls: list[int] = []

    def commit(decision: Any, seq: int, folded: Any = ()) -> None:
        calls.append(len(folded))
        if len(calls) == 1:
            world.orchestrator.store = store  # (the same store: only the first commit loses)
            raise Conflict("someone else won")
        real(decision, seq, folded)

    store.commit = commit  # type: ignore[method-assign]
    decision = world.orchestrator._handle_run(run_id, StepSucceeded("b0", 1, "a"))
    assert decision is not None
    assert calls == [0, 1]  # lost, then committed the fold of its own entry
    assert inbox_of(world, run_id) == []
    later = world.clock.now() + timedelta(hours=1)
    assert inbox_due(world, run_id, later) == []  # tidied: the inbox is not due
    assert completed(world, run_id) == ["b0"]


def test_whoever_commits_next_folds_the_inbox_in_the_same_commit() -> None:
    world, run_id = started()
    store = world.store
    for i in (1, 2):
        assert store.post(run_id, StepSucceeded(f"b{i}", 1, i), world.clock.now())
    commits: list[Any] = []
    real = store.commit
    store.commit = lambda *a: commits.append(a) or real(*a)  # type: ignore[method-assign]
    world.orchestrator._handle_run(run_id, StepSucceeded("b0", 1, 0))
    assert len(commits) == 1  # one run-level commit folded all three
    assert inbox_of(world, run_id) == []
    assert completed(world, run_id) == ["b0", "b1", "b2"]


def test_an_event_already_folded_by_another_ends_the_losers_call() -> None:
    world, run_id = started()
    store = world.store
    real = store.commit

    def commit(decision: Any, seq: int, folded: Any = ()) -> None:
        if not folded and decision.timeline[0].step == "b3":
            # While this invocation decided, another one committed b1 and folded b3's
            # entry: that one's commit lands first, this one loses.
            store.commit = real  # type: ignore[method-assign]
            world.orchestrator._handle_run(run_id, StepSucceeded("b1", 1, 1))
            raise Conflict("lost")
        real(decision, seq, folded)

    real_post = store.post

    def post(run_id_: str, event: Any, now: Any) -> str | None:
        store.commit = real  # type: ignore[method-assign]
        return real_post(run_id_, event, now)

    store.commit = commit  # type: ignore[method-assign]
    store.post = post  # type: ignore[method-assign]
    world.orchestrator._handle_run(run_id, StepSucceeded("b3", 1, 3))
    assert sorted(completed(world, run_id)) == ["b1", "b3"]
    assert inbox_of(world, run_id) == []


def test_the_sweep_folds_an_inbox_every_folder_left_behind() -> None:
    world, run_id = started(2)
    store = world.store
    now = world.clock.now()
    store.post(run_id, StepSucceeded("b0", 1, 0), now)  # posted, then the poster died
    store.post(run_id, StepFailed("b1", 7, "Late"), now)  # a stale one too
    assert inbox_due(world, run_id, now) == []
    world.clock.advance(timedelta(minutes=1))
    report = timers.sweep(world.orchestrator, store)
    assert report.fired == 1
    assert inbox_of(world, run_id) == []
    assert completed(world, run_id) == ["b0"]
    types = [e.type for e in store.timeline(run_id, limit=1000).items]
    assert "stale_result_ignored" in types
    assert inbox_due(world, run_id, world.clock.now() + timedelta(minutes=3)) == []


def test_folding_an_event_twice_changes_nothing_more() -> None:
    world, run_id = started(2)
    store = world.store
    event = StepSucceeded("b0", 1, 0)
    world.orchestrator._handle_run(run_id, event)
    store.post(run_id, event, world.clock.now())
    store.post(run_id, OutboxDelivered(("nope",)), world.clock.now())
    world.orchestrator._handle_run(run_id, StepSucceeded("b1", 1, 1))
    assert inbox_of(world, run_id) == []
    assert completed(world, run_id) == ["b0", "b1"]
    assert world.store.load(run_id, ["join"]).steps["join"].input == {"all": [0, 1]}


def test_only_runs_with_results_in_flight_at_once_read_the_inbox() -> None:
    chain = workflow({"a": task(), "b": task("a"), "c": task("b")})
    assert not may_race(chain)
    assert may_race(FAN)
    assert may_race(workflow({"a": task(), "b": task("a"), "c": task("a")}))
    assert may_race(workflow({"a": task(), "b": task()}))
