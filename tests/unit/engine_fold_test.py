"""Folding: ``core.decide_all`` applies several events in one decision, with the same records,
timeline and commands as deciding them one after the other. Runs fold results of parallel
branches (and code-first steps); a for_each's children never commit on the run."""

from __future__ import annotations

import dataclasses
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from helpers import EngineDriver, task, workflow
from stepwell.engine import core
from stepwell.engine.commands import DispatchAttempt
from stepwell.engine.events import Event, StepFailed, StepSucceeded, TimerFired

RETRY = {"max_attempts": 2, "interval": "1s", "jitter": "none"}


def branches(n: int) -> dict[str, Any]:
    """``n`` parallel branches and a side step, all joined by one step."""
    steps: dict[str, Any] = {f"b{i}": task(retry=RETRY, input={"i": i}) for i in range(n)}
    steps["side"] = task()
    steps["join"] = task(*steps, input={"n": "${steps.b0.output}"})
    return steps


def twins(definition: dict[str, Any]) -> tuple[EngineDriver, EngineDriver]:
    flow = workflow(definition, name="fold")
    return EngineDriver(flow, {}), EngineDriver(flow, {})


def assert_same(one: EngineDriver, other: EngineDriver) -> None:
    # A dependent counts an end after the decision that made it (its own write): once the run
    # ended it counts nothing, so a pending record may exist on one side only.
    def started(run: EngineDriver) -> dict[str, Any]:
        return {k: s for k, s in run.steps.items() if s.status != "pending"}

    assert started(one) == started(other)
    assert dataclasses.replace(one.run, seq=0) == dataclasses.replace(other.run, seq=0)
    assert one.timeline == other.timeline
    assert one.commands == other.commands


def test_two_results_at_once_equal_one_after_the_other() -> None:
    one, both = twins(branches(4))
    first = StepSucceeded("b0", 1, "a")
    second = StepFailed("b1", 1, "Flaky")
    one.send(first)
    one.send(second)
    decision = both.send_all([first, second])
    assert decision.applied == 2
    assert_same(one, both)
    assert both.status("b1") == "retrying"
    assert both.step("join").pending_deps == 4


def test_a_duplicate_and_a_stale_result_in_one_fold_are_noted_and_ignored() -> None:
    one, both = twins(branches(2))
    events: list[Event] = [
        StepSucceeded("b0", 1, "a"),
        StepSucceeded("b0", 1, "a"),
        StepSucceeded("b1", 7, "stale"),
        StepSucceeded("side", 1, "s"),
    ]
    for event in events:
        one.send(event)
    both.send_all(events)
    assert_same(one, both)
    assert {"duplicate_ignored", "stale_result_ignored"} <= set(both.types())


def test_the_fold_that_ends_the_last_branch_starts_the_join() -> None:
    one, both = twins(branches(3))
    events: list[Event] = [StepSucceeded(f"b{i}", 1, i) for i in (2, 0, 1)]
    events.append(StepSucceeded("side", 1))
    for event in events:
        one.send(event)
    both.send_all(events)
    assert_same(one, both)
    assert both.status("join") == "running"
    assert both.step("join").input == {"n": 0}


def test_a_fold_stops_within_its_budget_and_says_how_many_it_applied() -> None:
    _, both = twins(branches(10))
    events: list[Event] = [StepSucceeded(f"b{i}", 1, i) for i in range(10)]
    state = both.load(core.reads_for_all(both.definition, events))
    both._fill(state, None)
    decision = core.decide_all(both.definition, state, events, both.now, budget=4)
    assert decision.applied == 4  # 4 branches make 4 records (the join counts them later)
    assert {k for k, s in decision.steps.items() if s.status == "succeeded"} == {
        f"b{i}" for i in range(4)
    }


@st.composite
def rounds(draw: Any) -> tuple[int, list[Any]]:
    items = draw(st.integers(1, 7))
    plan = draw(
        st.lists(
            st.tuples(
                st.randoms(use_true_random=False),
                st.lists(st.sampled_from(["ok", "ok", "flaky", "fatal", "dup"]), max_size=8),
            ),
            min_size=1,
            max_size=30,
        )
    )
    return items, plan


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(rounds())
def test_folding_any_batch_of_results_equals_deciding_them_in_turn(
    case: tuple[int, list[Any]],
) -> None:
    items, plan = case
    one, both = twins(branches(items))
    answered: set[tuple[str, int]] = set()
    sent: list[Event] = []
    for rng, outcomes in plan:
        if one.run.terminal:
            break
        pending = [
            c for c in one.dispatches() if (c.key, c.attempt) not in answered
        ]  # attempts in flight, in dispatch order
        rng.shuffle(pending)
        batch: list[Event] = []
        for outcome, command in zip(outcomes, pending, strict=False):
            event = result(command, outcome, sent, rng)
            if outcome != "dup":
                answered.add((command.key, command.attempt))
            batch.append(event)
            sent.append(event)
        if not batch:  # nothing in flight: a retry's backoff ends
            due = sorted((s.due_at, k) for k, s in one.steps.items() if s.due_at is not None)
            if not due:
                break
            at, key = due[0]
            one.send(TimerFired(key, at), at=at)
            both.send(TimerFired(key, at), at=at)
            assert_same(one, both)
            continue
        for event in batch:
            one.send(event)
        assert both.send_all(batch).applied == len(batch)
        assert_same(one, both)


def result(command: DispatchAttempt, outcome: str, sent: list[Event], rng: Any) -> Event:
    if outcome == "dup" and sent:
        return sent[rng.randrange(len(sent))]
    if outcome == "flaky":
        return StepFailed(command.key, command.attempt, "Flaky")
    if outcome == "fatal":
        return StepFailed(command.key, command.attempt, "Fatal", retryable=False)
    return StepSucceeded(command.key, command.attempt, {"key": command.key})
