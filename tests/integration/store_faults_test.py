"""Runs that survive DynamoDB faults: calls failing before they take effect and after (the
answer lost), transactions cancelled for a conflict, read timeouts, a due-index shard that
cannot be read.

Each defect has a test that injects its fault; the last test is a seeded suite that plays the
order example (YAML and code) with a fifth of every DynamoDB call failing (before they take
effect, or after: their answers lost), a few invocations lost and a few deliveries doubled,
runs started by a careful client through the API and approved through signed links, and checks
every run for the fault-free ending, each step's effect recorded once, each dispatch owed
carried out and dispatched once, no attempt charged that never ran, every start acknowledged,
every approval decided by finance's clicks, and a TTL on every item.
"""

from __future__ import annotations

import itertools
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from helpers import ORDER, ORDER_FILES, order_world
from helpers.fault_play import FAULTS, FaultPlay, check_runs, faulty
from helpers.faults import WRITES, DynamoFaults, conflict, internal, read_timeout
from stepwell.api.claims import DynamoUsedTokens, Use, claim_once
from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt
from stepwell.engine.events import StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.faults import TRIES
from stepwell.store.port import Conflict, WriteInDoubt


def world_on(store: DynamoStore, name: str) -> InProcessWorld:
    world: InProcessWorld = order_world(name)
    world.store = store  # type: ignore[assignment]
    world.orchestrator.store = store
    return world


# -- a TransactionConflict while creating a run -------------------------------------------------


def test_a_transaction_conflict_while_creating_a_run_does_not_lose_it(store: DynamoStore) -> None:
    world = world_on(store, "order-fulfilment")
    faults = faulty(store)
    faults.next("TransactWriteItems", conflict)  # another request held an item for a moment
    run_id = world.start("order-fulfilment", ORDER, run_id="r-conflict")
    assert store.get_run(run_id) is not None  # created: not taken for "it exists already"


def test_a_run_that_cannot_be_created_is_an_error_not_a_started_run(store: DynamoStore) -> None:
    world = world_on(store, "order-fulfilment")
    faults = faulty(store)
    for _ in range(10):
        faults.next("TransactWriteItems", conflict)
    with pytest.raises(Conflict):
        world.start("order-fulfilment", ORDER, run_id="r-busy")
    assert store.get_run("r-busy") is None


# -- commands owed by a committed decision, when DynamoDB's answer was lost ------------------


def lost_answers(faults: DynamoFaults, operation: str, times: int = 1) -> None:
    """The next ``times`` ``operation`` calls that take effect lose their answers."""
    for _ in range(times):
        faults.next(operation, internal, when="after")


def answerless(faults: DynamoFaults, operation: str) -> None:
    """The next ``operation`` call takes effect and loses its answer, and so does every sending
    of it again (none reaches DynamoDB): the store cannot tell whether it was applied."""

    def make(name: str) -> Exception:
        for _ in range(TRIES - 1):
            faults.next(operation, internal)
        return internal(name)

    faults.next(operation, make, when="after")


def counted_dispatches(world: InProcessWorld) -> Counter[tuple[str, str, int]]:
    """Every attempt the orchestrator dispatches from now on, counted."""
    dispatched: Counter[tuple[str, str, int]] = Counter()
    real_dispatch = world.dispatch

    def dispatch(command: DispatchAttempt) -> None:
        dispatched[(command.run_id, command.key, command.attempt)] += 1
        real_dispatch(command)

    world.dispatch = dispatch  # type: ignore[method-assign]
    world.orchestrator.ports.invoker = world  # the wrapped dispatch
    return dispatched


def timeline_types(store: DynamoStore, run_id: str) -> list[str]:
    return [e.type for e in store.timeline(run_id, limit=10_000).items]


def test_a_start_whose_answer_was_lost_dispatches_its_first_step(store: DynamoStore) -> None:
    world = world_on(store, "order-fulfilment")
    lost_answers(faulty(store), "TransactWriteItems")  # the run is written; the answer is lost
    run_id = world.start("order-fulfilment", ORDER, run_id="r-lost-start")
    assert [(c.key, c.attempt) for c in world.dispatched] == [("validate", 1)]
    world.run_until_idle()
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert "attempt_lost" not in timeline_types(store, run_id)


def test_writes_of_steps_whose_answers_were_lost_still_carry_out_what_they_owe(
    store: DynamoStore,
) -> None:
    world = world_on(store, "order-fulfilment")
    dispatched = counted_dispatches(world)
    run_id = world.start("order-fulfilment", ORDER, run_id="r-lost-steps")
    faults = faulty(store)
    lost_answers(faults, "UpdateItem", times=16)  # writes of one step, counts, replay wakes
    world.run_until_idle()
    assert faults.injected["UpdateItem after"] == 16
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert "attempt_lost" not in timeline_types(store, run_id)  # nothing left to a lease
    assert len(dispatched) == 7 and set(dispatched.values()) == {1}


def test_a_start_left_in_doubt_is_carried_out_when_the_client_retries(store: DynamoStore) -> None:
    world = world_on(store, "order-fulfilment")
    answerless(faulty(store), "TransactWriteItems")
    with pytest.raises(WriteInDoubt):
        world.start("order-fulfilment", ORDER, run_id="r-doubt-start")
    assert store.get_run("r-doubt-start") is not None and not world.dispatched
    # The client sends its request again: the run is there, and its first step goes out.
    assert world.start("order-fulfilment", ORDER, run_id="r-doubt-start") == "r-doubt-start"
    assert [(c.key, c.attempt) for c in world.dispatched] == [("validate", 1)]


def test_a_step_write_left_in_doubt_is_carried_out_by_the_next_call(store: DynamoStore) -> None:
    world = world_on(store, "order-fulfilment")
    run_id = world.start("order-fulfilment", ORDER, run_id="r-doubt-step")
    (validate,) = list(world.dispatched)
    world.dispatched.clear()
    result = StepSucceeded("validate", 1, {"total": 1130.0}, token=validate.token)
    answerless(faulty(store), "UpdateItem")
    with pytest.raises(WriteInDoubt):
        world.orchestrator.handle(run_id, result)
    assert not world.dispatched
    # The result path sends the result again: its end is written (a duplicate now), and what
    # it owed (reserve's start, its first items) is carried out.
    world.orchestrator.handle(run_id, result)
    assert sorted(c.key for c in world.dispatched) == [f"reserve[{i}]" for i in range(3)]


# -- a read timeout -----------------------------------------------------------------------------


def test_a_read_timeout_is_handled_and_logged_as_what_it_is(
    store: DynamoStore, caplog: pytest.LogCaptureFixture
) -> None:
    world = world_on(store, "order-fulfilment")
    run_id = world.start("order-fulfilment", ORDER, run_id="r-timeout")
    faults = faulty(store)
    faults.next("UpdateItem", read_timeout, when="after")  # a step's write: applied, no answer
    faults.next("BatchGetItem", read_timeout)  # a read
    world.run_until_idle()
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert faults.injected == {"UpdateItem after": 1, "BatchGetItem before": 1}
    assert store.faults["ReadTimeoutError"] == 2
    assert "DynamoDB ReadTimeoutError on" in caplog.text and "AttributeError" not in caplog.text


# -- a callback token's single use under a lost answer --------------------------------------


def test_a_claim_whose_answer_was_lost_is_still_this_requests(store: DynamoStore) -> None:
    tokens = DynamoUsedTokens(store.table, store.m.client)
    use = Use("n-lost", 1_900_000_000, "approval", "r-1", "approve")
    assert tokens.claim(use)
    # botocore sends the PutItem again after a lost answer: it finds the item, which is its own.
    assert tokens.claim(use)
    assert not tokens.claim(Use("n-lost", 1_900_000_000, "approval", "r-1", "approve"))


def test_a_claim_that_fails_after_it_was_written_does_not_burn_the_link(
    store: DynamoStore,
) -> None:
    tokens = DynamoUsedTokens(store.table, store.m.client)
    faults = faulty(store)
    faults.next("PutItem", internal, when="after")
    first = Use("n-burn", 1_900_000_000, "approval", "r-1", "approve")
    with pytest.raises(Exception, match="injected"):
        claim_once(tokens, first)
    assert not tokens.used("n-burn")  # released: the person's next click counts
    assert claim_once(tokens, Use("n-burn", 1_900_000_000, "approval", "r-1", "approve"))


# -- one unreadable shard of the due index -----------------------------------------------------


def test_a_due_index_shard_that_fails_does_not_hide_the_others(store: DynamoStore) -> None:
    worlds = [world_on(store, "order-fulfilment") for _ in range(6)]
    for n, world in enumerate(worlds):
        world.start("order-fulfilment", ORDER, run_id=f"r-due-{n}")
    later = worlds[0].clock.now() + timedelta(days=400)
    every = store.due(later, limit=1000)
    assert {d.run_id for d in every} == {f"r-due-{n}" for n in range(6)}
    faults = faulty(store)
    for _ in range(TRIES):
        faults.next("Query", internal)  # the first shard's Query (shard 0), each time it is sent
    found = store.due(later, limit=1000)
    # Exactly the timers of the other shards still come back.
    assert found == [d for d in every if codec.shard(d.run_id, store.due_shards) != 0]
    assert found  # (the six runs do not all sit in shard 0)


# -- a read error inside a code-first replay --------------------------------------------------


def test_a_failed_read_of_a_replays_journal_is_tried_again_not_counted_as_a_failed_replay(
    store: DynamoStore,
) -> None:
    world = world_on(store, "order-fulfilment-code")
    run_id = world.start("order-fulfilment-code", ORDER, run_id="r-journal")
    faults = faulty(store)
    faults.next("Query", internal)  # the first replay reads the whole run: that read fails
    world.run_until_idle()
    assert faults.injected == {"Query before": 1}
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    failed = [e for e in store.timeline(run_id, limit=1000).items if e.step == "$workflow"]
    assert not [e for e in failed if "fail" in e.type or "retry" in e.type], failed


# -- the seeded suite ---------------------------------------------------------------------------


class FaultyWorld(FaultPlay):
    """The order example (YAML or code) played with seeded faults (:class:`FaultPlay`):
    finance approves through the signed link it is sent."""

    def __init__(
        self,
        store: DynamoStore,
        name: str,
        seed: int,
        faults: DynamoFaults,
        concurrency: dict[str, Any] | None = None,
        steps: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        world: InProcessWorld = order_world(name)
        if concurrency is not None or steps is not None:
            plain = world.workflows[name].model_dump(mode="json", exclude_unset=True)
            for step_id, fields in (steps or {}).items():
                plain["steps"][step_id] |= fields
            limits = {"concurrency": concurrency} if concurrency is not None else {}
            world.workflows[name] = Workflow.model_validate({**plain, **limits})
        super().__init__(store, world, seed, faults)
        self.name = name

    def start(self, order_id: str) -> None:  # type: ignore[override]
        super().start(self.name, {**ORDER, "order_id": order_id}, key=order_id)


@pytest.mark.parametrize("name", sorted(ORDER_FILES))
@pytest.mark.parametrize("kind", sorted(FAULTS))
@pytest.mark.parametrize("seed", [1, 2])
def test_runs_end_as_without_faults_when_a_fifth_of_dynamodb_calls_fail(
    store: DynamoStore,
    dynamodb: Any,
    monkeypatch: pytest.MonkeyPatch,
    name: str,
    kind: str,
    seed: int,
) -> None:
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # backoffs pass at once
    faults = faulty(store, seed=seed, **FAULTS[kind])
    if kind == "after":
        # The runs make few PutItems: the first one's answer is lost whatever the seed.
        faults.next("PutItem", read_timeout, when="after")
    play = FaultyWorld(store, name, seed, faults)
    orders = [f"{name}-{kind}-{seed}-{n}" for n in range(3)]
    try:
        for order_id in orders:
            play.start(order_id)
        play.play()
    finally:
        play.close()
    runs = check_runs(play, dynamodb, dict.fromkeys(orders, "succeeded"))
    assert all(run.output["reservations"] and run.output["charge_id"] for run in runs)
    assert len({r.id for r in store.runs(name).items}) == 3  # one run per start
    # Every approval was decided by finance's clicks: 200 at last, or 409 for a decision
    # recorded by an earlier click whose answer was lost.
    assert play.clicks and all(a[-1] in (200, 409) for a in play.clicks.values()), play.clicks
    if kind == "after":  # answers were lost on every kind of write the runs made
        writes = {op for op in WRITES if play.faults.calls[op]}
        assert writes <= {op.split()[0] for op in faults.injected}, (writes, faults.injected)


def limited_orders(
    store: DynamoStore,
    monkeypatch: pytest.MonkeyPatch,
    kind: str,
    seed: int,
    count: int,
    limit: dict[str, Any],
    steps: dict[str, dict[str, Any]] | None = None,
) -> list[Any]:
    """``count`` orders of one customer under the seeded faults of ``kind``, the workflow
    limited per customer (and its ``steps`` given more fields): every run succeeds."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    faults = faulty(store, seed=seed, **FAULTS[kind])
    play = FaultyWorld(store, "order-fulfilment", seed, faults, limit, steps)
    try:
        for n in range(count):
            play.start(f"limited-{kind}-{seed}-{n}")
        play.play()
    finally:
        play.close()
    faults.enabled = False
    assert sum(faults.injected.values()) > 0
    runs = [store.get_run(run_id) for run_id in play.acknowledged.values()]
    assert len(runs) == count and all(r is not None and r.status == "succeeded" for r in runs)
    return runs


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_runs_queued_for_one_slot_leak_none_and_never_overlap_under_faults(
    store: DynamoStore, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Four orders of one customer, one at a time (``concurrency.limit: 1``), with a fifth of
    DynamoDB calls failing: every run succeeds, no two ever held the slot at once, and the
    key's slot and queue are empty at the end."""
    name = "order-fulfilment"
    limit = {"key": "${input.customer}", "limit": 1}
    runs = limited_orders(store, monkeypatch, kind, 3, 4, limit)
    spans = sorted((r.started_at, r.ended_at) for r in runs if r is not None)
    assert all(s is not None and e is not None for s, e in spans)
    assert all(ended <= begun for (_, ended), (begun, _) in itertools.pairwise(spans))
    key = f"{name}#{ORDER['customer']}"
    slots = store.slots(key)
    assert slots.held == () and slots.head is None


@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_attempts_limited_per_key_leak_no_slot_and_never_pass_the_limit_under_faults(
    store: DynamoStore, monkeypatch: pytest.MonkeyPatch, kind: str
) -> None:
    """Six orders of one customer, at most 2 at once and at most 2 item reservations of the
    customer at once across them (a step's ``concurrency`` on the for_each), with a fifth of
    DynamoDB calls failing, invokes lost and results doubled: every run succeeds, neither
    limit is ever passed (from the recorded times), and both keys are free at the end."""
    name = "order-fulfilment"
    limit = {"key": "${input.customer}", "limit": 2}
    runs = limited_orders(
        store, monkeypatch, kind, 5, 6, limit, {"reserve": {"concurrency": limit}}
    )
    items = {f"reserve[{n}]" for n in range(len(ORDER["items"]))}
    attempts = [
        (step.attempt_started_at, step.ended_at)
        for r in runs
        if r is not None
        for step in store.load(r.id, items).steps.values()
    ]
    assert len(attempts) == 6 * len(items)
    waited = [
        e
        for r in runs
        if r is not None
        for e in store.timeline(r.id, limit=1000).items
        if e.type == "step_queued"
    ]
    assert waited  # reservations did wait for a slot
    for spans in ([(r.started_at, r.ended_at) for r in runs if r is not None], attempts):
        # An end and a start at one instant: the slot changed hands (the end counts first).
        moments = sorted([(b, 1) for b, _ in spans] + [(e, -1) for _, e in spans])  # type: ignore[type-var]
        holding = peak = 0
        for _, change in moments:
            holding += change
            peak = max(peak, holding)
        assert peak <= 2, spans
    for key in (f"{name}#{ORDER['customer']}", f"{name}/reserve#{ORDER['customer']}"):
        slots = store.slots(key)
        assert slots.held == () and slots.head is None, key
