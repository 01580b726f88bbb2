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
import random
import time
from collections import Counter
from datetime import timedelta
from typing import Any

import pytest

from helpers import ORDER, ORDER_FILES, order_world
from helpers.apigw import (
    API_URL,
    KEY,
    ApiResponse,
    LambdaContext,
    http_event,
    load_handler,
    to_response,
)
from helpers.faults import WRITES, DynamoFaults, conflict, internal, read_timeout
from stepwell import signing
from stepwell.api import deps
from stepwell.api.approvals import link_id
from stepwell.api.claims import DynamoUsedTokens, Use, claim_once
from stepwell.catalog import Catalog
from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt
from stepwell.engine.events import Event, StepFailed, StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks
from stepwell.runtime.orchestrator import Ports
from stepwell.runtime.publishing import Workflows
from stepwell.runtime.results import deliver
from stepwell.runtime.timers import sweep
from stepwell.runtime.wiring import Runtime
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.faults import TRIES
from stepwell.store.port import Conflict, WriteInDoubt


def faulty(store: DynamoStore, **rates: Any) -> DynamoFaults:
    faults = DynamoFaults(**rates)
    faults.attach(store.client)
    return faults


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


class FaultyWorld:
    """The order example (YAML or code) on the DynamoDB store with seeded faults, driven as
    AWS drives it: a careful client starts runs through the API (an ``Idempotency-Key``,
    retried on errors), finance approves through the signed link it is sent (clicking again
    after an error), step results go through the runner's result path, a few invokes are lost
    and a few results delivered twice, and the minute sweep is the backstop."""

    def __init__(
        self,
        store: DynamoStore,
        name: str,
        seed: int,
        faults: DynamoFaults,
        concurrency: dict[str, Any] | None = None,
        steps: dict[str, dict[str, Any]] | None = None,
    ) -> None:
        self.store, self.name, self.faults = store, name, faults
        world: InProcessWorld = order_world(name)
        if concurrency is not None or steps is not None:
            plain = world.workflows[name].model_dump(mode="json", exclude_unset=True)
            for step_id, fields in (steps or {}).items():
                plain["steps"][step_id] |= fields
            limits = {"concurrency": concurrency} if concurrency is not None else {}
            world.workflows[name] = Workflow.model_validate({**plain, **limits})
        world.store = store  # type: ignore[assignment]
        world.approver = None
        orchestrator = world.orchestrator
        orchestrator.store = store
        links = ApprovalLinks(world, lambda: [KEY], API_URL, world.clock)
        orchestrator.ports = Ports(world, world, world, links)
        runtime = Runtime(
            orchestrator,
            store,
            world.clock,
            Workflows(store, world.clock),
            Catalog.of(world.workflows),
        )
        wiring.use(runtime)
        deps.use(deps.for_runtime(runtime, {}))
        self.handler = load_handler()
        self.world = world
        self.dispatched: Counter[tuple[str, str, int]] = Counter()
        self.lost: set[tuple[str, str, int]] = set()
        self.clicks: dict[tuple[str, str, int], list[int]] = {}
        self.acknowledged: dict[str, str] = {}
        deliveries = random.Random(seed)
        real_dispatch, real_run = world.dispatch, world._run_attempt

        def dispatch(command: DispatchAttempt) -> None:
            self.dispatched[(command.run_id, command.key, command.attempt)] += 1
            real_dispatch(command)

        def run_attempt(command: DispatchAttempt) -> None:
            roll = deliveries.random()
            if roll < 0.03:
                self.lost.add((command.run_id, command.key, command.attempt))
                return  # the invoke was lost: the attempt's lease finds it
            real_run(command)
            if roll > 0.97:
                real_run(command)  # delivered twice (Lambda's at-least-once): a duplicate result

        def send(run_id: str, event: Event) -> None:
            if isinstance(event, StepSucceeded | StepFailed):
                deliver(orchestrator, run_id, event)  # the step side's result path
            else:
                orchestrator.handle(run_id, event)

        world.dispatch = dispatch  # type: ignore[method-assign]
        world._run_attempt = run_attempt  # type: ignore[method-assign]
        world.send = send  # type: ignore[method-assign]

    def close(self) -> None:
        wiring.use(None)
        deps.use(None)

    def post(self, path: str, body: Any = None, **options: Any) -> ApiResponse:
        event = http_event("POST", path, body=body, **options)
        return to_response(self.handler(event, LambdaContext()))

    def start(self, order_id: str) -> None:
        """A careful client: the same request (and key) until the API acknowledges it."""
        body = {"input": {**ORDER, "order_id": order_id}}
        for _ in range(30):
            response = self.post(
                f"/workflows/{self.name}/runs", body, headers={"Idempotency-Key": order_id}
            )
            if response.status == 201:
                self.acknowledged[order_id] = response.json()["run_id"]
                return
            assert response.status >= 500, response.text  # only an error is worth retrying
        raise AssertionError(f"the start of {order_id} was never acknowledged")

    def click(self) -> None:
        """Finance clicks the newest link of each approval not decided yet (again after an
        error); a 409 must mean the link's decision is recorded, or the approval closed."""
        newest: dict[tuple[str, str, int], str] = {}
        for event in self.world.events:
            if event.detail_type == "approval.requested":
                d = event.detail
                url = d["links"][0]["approve_url"]
                newest[(d["run_id"], d["step"], d["attempt"])] = url.rsplit("/", 1)[-1]
        for approval, token in newest.items():
            answers = self.clicks.setdefault(approval, [])
            if answers and answers[-1] in (200, 409):
                continue
            response = self.post(f"/approvals/{token}", form={}, headers=JSON)
            answers.append(response.status)
            if response.status == 409:
                self.faults.enabled = False
                step = self.store.load(approval[0], [approval[1]]).steps[approval[1]]
                self.faults.enabled = True
                claims = signing.verify(token, [KEY], self.world.clock.now())
                recorded = any(d.get("link") == link_id(claims) for d in step.decisions)
                assert recorded or step.waiting_for != "approval", (approval, response.text)

    def play(self) -> None:
        """Deliver what is in flight (an invocation that raises loses what it did not write);
        finance clicks; when nothing is left, time passes to the next due time and the minute
        sweep runs."""
        for _ in range(400):
            try:
                self.world.run_until_idle(virtual_time=False)
            except Exception:
                continue
            self.click()
            if self.world.dispatched or self.world.pending_decisions:
                continue
            self.faults.enabled = False
            runs = [self.store.get_run(r) for r in self.acknowledged.values()]
            due = self.world.next_due()
            self.faults.enabled = True
            if all(r is not None and r.terminal for r in runs):
                return
            assert due is not None, "an unfinished run must have something due"
            self.world.clock.set(max(due, self.world.clock.now()) + timedelta(seconds=60))
            self.world.timers.clear()  # timer messages may be lost too: the sweep is the backstop
            try:
                sweep(self.world.orchestrator, self.store)
            except Exception:
                continue
        raise AssertionError("the runs never finished")


FAULTS = {"before": {"before": 0.2}, "after": {"after": 0.2}}
JSON = {"accept": "application/json"}


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
    try:
        for n in range(3):
            play.start(f"{name}-{kind}-{seed}-{n}")
        play.play()
    finally:
        play.close()
    faults.enabled = False
    assert sum(faults.injected.values()) > 0
    for order_id, run_id in play.acknowledged.items():
        run = store.get_run(run_id)
        assert run is not None and run.status == "succeeded", (order_id, run, faults.injected)
        assert run.output["reservations"] and run.output["charge_id"]
        timeline = store.timeline(run_id, limit=10_000).items
        completed = Counter(e.step for e in timeline if e.type == "step_completed")
        assert all(count == 1 for count in completed.values()), completed
        # Every dispatch a committed decision owed was carried out ...
        owed = {(run_id, e.step, e.attempt) for e in timeline if e.type == "step_dispatched"}
        assert owed <= set(play.dispatched), owed - set(play.dispatched)
        # ... so an attempt is lost, or charged a timeout, only if its invoke was lost.
        charged = {
            (run_id, e.step, e.attempt)
            for e in timeline
            if e.type == "attempt_lost" or (e.data or {}).get("error") == "StepTimedOut"
        }
        assert charged <= play.lost, charged - play.lost
        items = dynamodb.query(
            TableName=store.table,
            KeyConditionExpression="pk = :pk",
            ExpressionAttributeValues={":pk": {"S": f"RUN#{run_id}"}},
        )["Items"]
        assert items and all("expires_at" in item for item in items), run_id
    assert len(play.acknowledged) == 3  # every start acknowledged, one run each
    assert len({r.id for r in store.runs(name).items}) == 3
    # Every approval was decided by finance's clicks: 200 at last, or 409 for a decision
    # recorded by an earlier click whose answer was lost.
    assert play.clicks and all(a[-1] in (200, 409) for a in play.clicks.values()), play.clicks
    # Each attempt was sent once; a lost one is sent again as a new attempt, never the same.
    assert set(play.dispatched.values()) == {1}, [k for k, v in play.dispatched.items() if v > 1]
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
