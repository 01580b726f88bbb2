"""Many invocations on one run at once: conditional commits let exactly one win each time, so
every attempt is dispatched once, and a stale attempt's result loses."""

from __future__ import annotations

import queue
import threading
from collections import Counter
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stepwell.definition.models import Workflow
from stepwell.engine import core
from stepwell.engine.commands import DispatchAttempt
from stepwell.engine.events import StepFailed, StepSucceeded, TimerFired
from stepwell.engine.state import RunStart
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.port import Conflict

T0 = datetime(2026, 1, 1, tzinfo=UTC)
THREADS = 16


class World:
    """Thread-safe fake ports: records every dispatch and queues it for the workers."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.dispatched: list[DispatchAttempt] = []
        self.work: queue.Queue[tuple[DispatchAttempt, bool]] = queue.Queue()

    def dispatch(self, command: DispatchAttempt) -> None:
        with self.lock:
            self.dispatched.append(command)
        self.work.put((command, False))

    def schedule(self, command: Any) -> None:
        pass

    def emit(self, command: Any) -> None:
        pass

    def request(self, command: Any) -> None:
        pass


def orchestrator(store: DynamoStore, world: World, definition: Workflow, clock: Any) -> Any:
    ports = Ports(invoker=world, timers=world, bus=world, approvals=world)
    return Orchestrator(store, ports, clock, {definition.name: definition}.get)


def echo(command: DispatchAttempt) -> Any:
    """A step function's output: what it was given."""
    return {"i": command.input.get("i"), "count": command.input.get("count")}


def result_of(
    command: DispatchAttempt, answer: Callable[[DispatchAttempt], Any]
) -> StepSucceeded | StepFailed:
    """What the step function answers: its output, or the exception it raised."""
    try:
        output = answer(command)
    except Exception as exc:
        retryable = bool(getattr(exc, "retryable", True))
        return StepFailed(
            command.key, command.attempt, type(exc).__name__, str(exc), retryable=retryable
        )
    return StepSucceeded(command.key, command.attempt, output)


def race(
    store: DynamoStore,
    definition: Workflow,
    run_input: Any,
    twice: Callable[[str], bool] = lambda key: key.endswith(("0]", "5]", "b0", "b5")),
    answers: Callable[[Orchestrator, str], Callable[[DispatchAttempt], Any]] = lambda o, r: echo,
) -> tuple[World, Counter[str]]:
    """Start a run, then let THREADS invocations (one orchestrator each, as in Lambda) deliver
    every dispatched attempt's result (``answers(orchestrator, run_id)`` gives them), those
    ``twice`` names twice (the second to another thread), until the run ended."""
    world, clock = World(), FakeClock(T0)
    run_id = orchestrator(store, world, definition, clock).start(
        definition.name, run_input, run_id=f"{definition.name}-1"
    )
    done = threading.Event()
    start = threading.Barrier(THREADS)
    duplicates = Counter[str]()
    errors: list[BaseException] = []

    def worker() -> None:
        mine = orchestrator(store, world, definition, clock)
        answer = answers(mine, run_id)
        start.wait()
        try:
            while not done.is_set():
                try:
                    command, again = world.work.get(timeout=0.05)
                except queue.Empty:
                    continue
                mine.handle(run_id, result_of(command, answer))
                if not again and twice(command.key):
                    with world.lock:
                        duplicates[command.key] += 1
                    world.work.put((command, True))  # a duplicate delivery, to another thread
                ended = store.get_run(run_id)
                if ended is not None and ended.terminal:
                    done.set()
        except BaseException as exc:
            errors.append(exc)
            done.set()

    threads = [threading.Thread(target=worker) for _ in range(THREADS)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert not errors, errors
    while not world.work.empty():  # duplicates left when the run ended: deliver them too
        command, _ = world.work.get()
        orchestrator(store, world, definition, clock).handle(
            run_id, StepSucceeded(command.key, command.attempt, {})
        )
    return world, duplicates


def test_sixteen_invocations_on_one_fan_out_dispatch_every_attempt_once(
    store: DynamoStore, make_workflow: Any
) -> None:
    items = 32
    definition = make_workflow(
        "race",
        {
            "fan": {
                "function": "Work",
                "for_each": "${input.items}",
                "max_parallel": 16,
                "input": {"i": "${item}"},
            },
            "after": {
                "function": "Work",
                "depends_on": "fan",
                "input": {"count": "${$count(steps.fan.output)}"},
            },
        },
    )
    world, duplicates = race(store, definition, {"items": list(range(items))})
    run_id = "race-1"
    attempts = Counter((c.key, c.attempt) for c in world.dispatched)
    assert set(attempts) == {(f"fan[{i}]", 1) for i in range(items)} | {("after", 1)}
    assert set(attempts.values()) == {1}, [a for a, n in attempts.items() if n > 1]
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert run.output == {"after": {"i": None, "count": items}}
    steps = {s.key: s for s in store.steps(run_id)}
    assert steps["fan"].output == [{"i": i, "count": None} for i in range(items)]
    assert steps["fan"].children_succeeded == items and steps["fan"].children_active == 0
    assert all(s.status == "succeeded" for s in steps.values())
    assert all(s.attempt == 1 for k, s in steps.items() if k != "fan")
    timeline = store.timeline(run_id, limit=10_000).items
    ignored = [e for e in timeline if "ignored" in e.type]
    assert sorted(e.step or "" for e in ignored) == sorted(duplicates.elements())
    # Every attempt's result is recorded exactly once.
    completed = Counter(e.step for e in timeline if e.type == "step_completed")
    assert completed == Counter([*(f"fan[{i}]" for i in range(items)), "fan", "after"])
    print("commits", store.commits, "conflicts", store.conflicts)
    # A child's result is written on the child alone and counted on the parent by an atomic
    # add: the width of the fan-out adds no conflicts (a repeated delivery's may).
    assert store.conflicts <= len(duplicates)
    assert [d for d in store.due(T0 + timedelta(hours=1)) if d.key is None] == []


class InvoiceRejected(Exception):
    """A payment refused for good."""

    retryable = False


def test_a_catch_handler_started_while_a_fan_outs_children_race_is_dispatched(
    store: DynamoStore, make_workflow: Any
) -> None:
    # One child fails for good, the fan-out fails and its catch hands over to a handler, while
    # the other children's results (and a second result of the failed one) race in. Deciding
    # the children still running skipped (a duplicate noted, nothing to write) must not send
    # DynamoDB an update with nothing in it, and nothing must drop the handler's dispatch.
    definition = make_workflow(
        "invoices",
        {
            "load": {"function": "Work"},
            "pay": {
                "depends_on": "load",
                "for_each": "${steps.load.output.invoices}",
                "max_parallel": 10,
                "function": "Work",
                "input": {"i": "${item}"},
                "retry": {"max_attempts": 2, "non_retryable": ["InvoiceRejected"]},
                "catch": [{"errors": "ForEachFailed", "then": "alert"}],
            },
            "alert": {"function": "Work", "input": {"errors": "${steps.pay.error.errors}"}},
            "report": {"function": "Work", "depends_on": "pay"},
        },
    )

    def answer(command: DispatchAttempt) -> Any:
        if command.key == "load":
            return {"invoices": list(range(20))}
        if command.key == "pay[3]":
            raise InvoiceRejected("vendor blocked")
        return echo(command)

    world, _ = race(
        store,
        definition,
        {},
        twice=lambda key: key == "pay[3]",  # a second result of the failed child
        answers=lambda mine, run_id: answer,
    )
    run = store.get_run("invoices-1")
    assert run is not None and run.status == "succeeded", run
    attempts = Counter((c.key, c.attempt) for c in world.dispatched)
    assert attempts[("alert", 1)] == 1
    assert set(attempts.values()) == {1}, [a for a, n in attempts.items() if n > 1]
    steps = {s.key: s for s in store.steps("invoices-1")}
    assert steps["pay"].status == "failed" and steps["alert"].status == "succeeded"
    assert steps["alert"].output == {"i": None, "count": None}
    assert steps["report"].status == "skipped"
    lost = [e for e in store.timeline("invoices-1", limit=1000).items if e.type == "attempt_lost"]
    assert lost == []


def test_sixteen_branches_ending_at_once_start_their_join_once(
    store: DynamoStore, make_workflow: Any
) -> None:
    branches = {f"b{i}": {"function": "Work", "input": {"i": i}} for i in range(THREADS)}
    after = {
        "function": "Work",
        "depends_on": list(branches),
        "input": {"count": "${$count(steps.*.output)}"},
    }
    definition = make_workflow("join", {**branches, "after": after})
    world, _ = race(store, definition, {})
    attempts = Counter((c.key, c.attempt) for c in world.dispatched)
    assert set(attempts) == {(k, 1) for k in branches} | {("after", 1)}
    assert set(attempts.values()) == {1}
    steps = {s.key: s for s in store.steps("join-1")}
    assert steps["after"].pending_deps == 0 and sorted(steps["after"].deps_ended) == sorted(
        branches
    )
    run = store.get_run("join-1")
    assert run is not None and run.status == "succeeded"
    completed = Counter(
        e.step for e in store.timeline("join-1", limit=1000).items if e.type == "step_completed"
    )
    assert completed == Counter([*branches, "after"])
    print("commits", store.commits, "conflicts", store.conflicts)


def test_two_commits_of_one_state_one_wins(store: DynamoStore, make_workflow: Any) -> None:
    definition = make_workflow("pair", {"a": {"function": "Work"}, "b": {"function": "Work"}})
    store.save_definition(definition)
    store.create(core.start_run(definition, RunStart("pair-1", {}), T0))
    outcomes: list[str] = []
    barrier = threading.Barrier(2)

    def invocation(key: str) -> None:
        state = store.load("pair-1", [key])
        decision = core.decide(definition, state, StepSucceeded(key, 1, key), T0)
        barrier.wait()
        try:
            store.commit(decision, state.run.seq)
            outcomes.append(f"won {key}")
        except Conflict:
            outcomes.append(f"lost {key}")

    threads = [threading.Thread(target=invocation, args=(k,)) for k in ("a", "b")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(o.split()[0] for o in outcomes) == ["lost", "won"]
    run = store.get_run("pair-1")
    assert run is not None and run.seq == 2
    winner = next(o.split()[1] for o in outcomes if o.startswith("won"))
    steps = {s.key: s.status for s in store.steps("pair-1")}
    assert steps == {"a": "running", "b": "running", winner: "succeeded"}


@pytest.fixture
def retried(store: DynamoStore, make_workflow: Any) -> tuple[Any, World, FakeClock, str]:
    """A step whose first attempt timed out and whose second attempt is running."""
    definition = make_workflow(
        "fenced",
        {"call": {"function": "Work", "timeout": "30s", "retry": {"max_attempts": 3}}},
    )
    world, clock = World(), FakeClock(T0)
    run_id = orchestrator(store, world, definition, clock).start("fenced", {}, run_id="f-1")

    def fire() -> None:
        step = store.load(run_id, ["call"]).steps["call"]
        assert step.due_at is not None
        clock.set(step.due_at)
        orchestrator(store, world, definition, clock).handle(
            run_id, TimerFired("call", step.due_at)
        )

    fire()  # attempt 1 times out: a retry is due after a backoff
    fire()  # the backoff ends: attempt 2 is dispatched
    assert [(c.key, c.attempt) for c in world.dispatched] == [("call", 1), ("call", 2)]
    return (lambda: orchestrator(store, world, definition, clock)), world, clock, run_id


def test_a_stale_attempts_result_is_ignored(
    store: DynamoStore, retried: tuple[Any, World, FakeClock, str]
) -> None:
    new, world, clock, run_id = retried
    first, second = world.dispatched
    assert first.token != second.token
    clock.advance(timedelta(seconds=1))
    new().handle(run_id, StepSucceeded("call", 1, "late"))
    step = store.load(run_id, ["call"]).steps["call"]
    assert (step.status, step.attempt, step.token, step.output) == (
        "running",
        2,
        second.token,
        None,
    )
    new().handle(run_id, StepSucceeded("call", 2, "fresh"))
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert run.output == {"call": "fresh"}
    stale = [e for e in store.timeline(run_id, limit=100).items if e.type == "stale_result_ignored"]
    assert [(e.step, e.data) for e in stale] == [("call", {"attempt": 1})]
    assert len(world.dispatched) == 2


def test_a_stale_result_racing_the_current_one_loses(
    store: DynamoStore, retried: tuple[Any, World, FakeClock, str]
) -> None:
    new, _, _, run_id = retried
    barrier = threading.Barrier(2)

    def deliver(attempt: int, output: str) -> None:
        mine = new()
        barrier.wait()
        mine.handle(run_id, StepSucceeded("call", attempt, output))

    threads = [
        threading.Thread(target=deliver, args=(1, "late")),
        threading.Thread(target=deliver, args=(2, "fresh")),
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    step = store.load(run_id, ["call"]).steps["call"]
    assert (step.status, step.attempt, step.output) == ("succeeded", 2, "fresh")
    run = store.get_run(run_id)
    assert run is not None and run.output == {"call": "fresh"}


def race_code(ctx: Any, input: Any) -> Any:
    """A code-first fan-out: 32 items, 16 at a time, then one step given the count."""

    def each(item_ctx: Any, item: Any) -> Any:
        return item_ctx.task("work", function="Work", input={"i": item})

    outputs = ctx.map("items", input["items"], each, max_concurrency=THREADS)
    return ctx.task("after", function="Work", input={"count": len(outputs)})


def test_sixteen_invocations_on_one_code_first_map_replay_and_dispatch_each_attempt_once(
    store: DynamoStore,
) -> None:
    from stepwell.runtime.journals import Journals
    from stepwell.runtime.replays import replay_journal

    definition = Workflow(name="race-code", steps={}, code="race.py:race_code", code_version="1")

    def answers(mine: Orchestrator, run_id: str) -> Callable[[DispatchAttempt], Any]:
        journals = Journals()  # each invocation's container keeps its own

        def answer(command: DispatchAttempt) -> Any:
            if command.key != "$workflow":
                return echo(command)
            replayed = replay_journal(
                store, journals, mine, run_id, command.attempt, lambda run: race_code, T0
            )
            return replayed.to_dict()

        return answer

    world, _ = race(
        store,
        definition,
        {"items": list(range(32))},
        twice=lambda key: key.startswith(("items.0.", "items.5.")),
        answers=answers,
    )
    run_id = "race-code-1"
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.output == {"i": None, "count": 32}
    attempts = Counter((c.key, c.attempt) for c in world.dispatched)
    assert set(attempts.values()) == {1}, [a for a, n in attempts.items() if n > 1]
    steps = [k for k, _ in attempts if k != "$workflow"]
    assert sorted(steps) == sorted([*(f"items.{i}.work" for i in range(32)), "after"])
    completed = Counter(
        e.step for e in store.timeline(run_id, limit=10_000).items if e.type == "step_completed"
    )
    assert completed == Counter([*steps, "$workflow"])
    replays = sum(1 for k, _ in attempts if k == "$workflow")
    print("replays", replays, "commits", store.commits, "conflicts", store.conflicts)
    assert replays <= 34  # ends that come together share a replay
