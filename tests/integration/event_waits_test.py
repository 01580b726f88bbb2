"""Event waits on DynamoDB (moto) through the real orchestrator, with virtual time: events
racing their waits, one event for 500 runs, the cost of an event no wait takes, duplicated
deliveries. Counted with the request meter."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

from conftest import metered

from stepwell.definition.models import Workflow
from stepwell.engine.commands import UnwatchEvent
from stepwell.engine.events import CANCEL_ON_KEY, CancelRequested
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.timers import sweep
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.event_waits import event_waits_for
from stepwell.store.memory import MemoryStore

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)


def awaiting(name: str, **fields: Any) -> Workflow:
    """A workflow of one step that waits for its order's payment to settle."""
    event = {
        "source": "payments",
        "detail_type": "payment.settled",
        "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
    }
    step = {"type": "event", "event": event, **fields}
    return Workflow.model_validate({"name": name, "steps": {"settled": step}})


SETTLED = awaiting("await-payment", lookback="10s", timeout="1h")


def world_on(store: DynamoStore | MemoryStore) -> InProcessWorld:
    world = InProcessWorld({SETTLED.name: SETTLED}, {})
    world.clock.set(T0)
    world.store = store
    world.orchestrator.store = store
    world.orchestrator.event_waits = event_waits_for(store)
    return world


def settled(order_id: str, event_id: str, at: datetime, **detail: Any) -> dict[str, Any]:
    return {
        "id": event_id,
        "source": "payments",
        "detail_type": "payment.settled",
        "time": at.isoformat().replace("+00:00", "Z"),
        "detail": {"order_id": order_id, **detail},
    }


def output_of(world: InProcessWorld, run_id: str) -> Any:
    [step] = [s for s in world.store.steps(run_id) if s.key == "settled"]
    return step.status, step.output


def race(world: InProcessWorld, trials: int, seed: int) -> None:
    """Each trial's wait opens 10 ms after the last one's; its order's event is sent at a
    random moment from 5 s before to 5 s after (so many orders' events and waits interleave
    inside one another's lookback). Every wait gets its own order's event, none times out."""
    rng = random.Random(seed)
    actions: list[tuple[datetime, float, str, int]] = []
    for trial in range(trials):
        opens = T0 + timedelta(seconds=10) + timedelta(milliseconds=10 * trial)
        sent = opens + timedelta(milliseconds=rng.randint(-5000, 5000))
        actions.append((opens, rng.random(), "open", trial))
        actions.append((sent, rng.random(), "send", trial))
    runs: dict[int, str] = {}
    for at, _, what, trial in sorted(actions):
        world.clock.set(at)
        if what == "open":
            runs[trial] = world.start(SETTLED.name, {"order_id": f"o-{trial}"})
        else:
            world.orchestrator.receive_event(settled(f"o-{trial}", f"e-{trial}", at))
    # A process reads a type's routes at most every 30 s: an event it kept while it did not
    # know the first waits' path yet is found by their second look, a minute after they opened.
    world.clock.set(at + timedelta(minutes=1))
    world.run_until_idle(virtual_time=False)
    for trial, run_id in runs.items():
        status, output = output_of(world, run_id)
        assert status == "succeeded", (trial, status)
        assert output["id"] == f"e-{trial}"
        assert output["detail"]["order_id"] == f"o-{trial}"
        assert world.store.get_run(run_id).status == "succeeded"


def test_events_racing_their_waits_on_dynamodb(store: DynamoStore) -> None:
    race(world_on(store), trials=30, seed=29)


def test_2000_events_racing_their_waits() -> None:
    race(world_on(MemoryStore()), trials=2000, seed=2029)


def test_one_event_completes_all_500_runs_waiting_for_it() -> None:
    broadcast(world_on(MemoryStore()), 500)


def test_one_event_completes_every_run_waiting_for_it_on_dynamodb(store: DynamoStore) -> None:
    broadcast(world_on(store), 25)


def broadcast(world: InProcessWorld, width: int) -> None:
    runs = [world.start(SETTLED.name, {"order_id": "o-all"}) for _ in range(width)]
    other = world.start(SETTLED.name, {"order_id": "o-other"})
    arrival = world.orchestrator.receive_event(settled("o-all", "e-all", T0))
    assert len(arrival.waiters) == width
    for run_id in runs:
        assert output_of(world, run_id) == ("succeeded", settled("o-all", "e-all", T0))
    assert output_of(world, other) == ("waiting", None)


def test_an_event_no_wait_takes_costs_one_read_and_one_write(store: DynamoStore) -> None:
    world = world_on(store)
    for n in range(20):
        world.start(SETTLED.name, {"order_id": f"o-{n}"})
    world.orchestrator.receive_event(settled("o-none", "e-0", T0))  # reads the routes
    meter = metered(store)
    before = meter.reading()
    arrival = world.orchestrator.receive_event(settled("o-nobody", "e-1", T0))
    spent = meter.reading() - before
    assert arrival.waiters == [] and not arrival.duplicate
    assert spent.dynamodb_calls == {"PutItem": 1, "Query": 1}
    assert (spent.reads, spent.writes) == (1, 1)
    print(f"\nan unmatched event: {dict(spent.dynamodb_calls)}")


def test_duplicated_deliveries_complete_each_wait_once() -> None:
    duplicated(world_on(MemoryStore()), 300)


def test_duplicated_deliveries_on_dynamodb(store: DynamoStore) -> None:
    duplicated(world_on(store), 20)


def duplicated(world: InProcessWorld, width: int) -> None:
    """30% of deliveries come twice (at once, or later): each wait completes once, with the
    first delivery's event; each duplicate is noted on its run's timeline."""
    rng = random.Random(30)
    runs = {n: world.start(SETTLED.name, {"order_id": f"o-{n}"}) for n in range(width)}
    events = [settled(f"o-{n}", f"e-{n}", T0) for n in runs]
    deliveries = [*events, *(e for e in events if rng.random() < 0.3)]
    rng.shuffle(deliveries)
    duplicates = len(deliveries) - len(events)
    seen: set[str] = set()
    flagged = 0
    for event in deliveries:
        arrival = world.orchestrator.receive_event(event)
        flagged += arrival.duplicate
        assert arrival.duplicate == (event["id"] in seen)
        seen.add(event["id"])
    assert flagged == duplicates > 0
    noted = 0
    for n, run_id in runs.items():
        assert output_of(world, run_id) == ("succeeded", events[n])
        types = [entry.type for entry in world.store.timeline(run_id).items]
        assert types.count("step_completed") == 1
        noted += types.count("event_duplicate")
    assert noted == duplicates


KINDS = (("payments", "payment.settled"), ("orders", "order.cancelled"))


def test_the_kinds_a_first_of_several_did_not_take_cost_nothing_later() -> None:
    either = Workflow.model_validate(
        {
            "name": "await-either",
            "steps": {
                "first": {
                    "type": "event",
                    "events": [
                        {
                            "source": source,
                            "detail_type": detail_type,
                            "correlate": {"event": "detail.order_id", "equals": "${input.id}"},
                        }
                        for source, detail_type in KINDS
                    ],
                }
            },
        }
    )
    world = world_on(MemoryStore())
    world.workflows[either.name] = either
    run_id = world.start(either.name, {"id": "o-1"})
    world.orchestrator.receive_event(settled("o-1", "e-1", T0))
    [step] = world.store.steps(run_id)
    assert step.output["matched"] == 0
    cancelled = {**settled("o-1", "e-2", T0), "source": "orders", "detail_type": "order.cancelled"}
    assert world.orchestrator.receive_event(cancelled).waiters == []


def test_a_cancelled_runs_wait_leaves_the_index_when_it_is_cancelled(store: DynamoStore) -> None:
    world = world_on(store)
    cancelled = world.start(SETTLED.name, {"order_id": "o-1"})
    still = world.start(SETTLED.name, {"order_id": "o-1"})
    world.send(cancelled, CancelRequested("the order was withdrawn"))
    assert world.store.get_run(cancelled).status == "cancelled"
    arrival = world.orchestrator.receive_event(settled("o-1", "e-1", T0))
    assert [waiter.run_id for waiter in arrival.waiters] == [still]


NO_LOOKBACK = awaiting("await-payment-now")


def test_an_event_delivered_again_completes_no_wait_that_opened_after_it() -> None:
    """A redelivery (or a re-send of the same id, which keeps its first time) is the event
    as it first happened: a wait that opened later, beyond its lookback, does not take it."""
    world = world_on(MemoryStore())
    world.workflows[NO_LOOKBACK.name] = NO_LOOKBACK
    first = world.start(NO_LOOKBACK.name, {"order_id": "o-1"})
    event = settled("o-1", "e-1", T0)
    world.orchestrator.receive_event(event)
    world.clock.set(T0 + timedelta(minutes=5))
    later = world.start(NO_LOOKBACK.name, {"order_id": "o-1"})
    arrival = world.orchestrator.receive_event(event)
    assert arrival.duplicate
    assert output_of(world, first) == ("succeeded", event)
    assert output_of(world, later) == ("waiting", None)
    types = [entry.type for entry in world.store.timeline(first).items]
    assert types.count("event_duplicate") == 1
    later_types = [entry.type for entry in world.store.timeline(later).items]
    assert "step_completed" not in later_types


def test_a_senders_id_keeps_its_first_time_on_dynamodb(store: DynamoStore) -> None:
    waits = event_waits_for(store)
    meter = metered(store)
    before = meter.reading()
    assert waits.first_sent("payments", "pay-1", T0) == T0
    assert waits.first_sent("payments", "pay-1", T0 + timedelta(minutes=3)) == T0
    assert waits.first_sent("refunds", "pay-1", T0 + timedelta(minutes=3)) > T0
    spent = meter.reading() - before
    assert spent.dynamodb_calls == {"UpdateItem": 3}


CANCELLABLE = Workflow.model_validate(
    {
        **SETTLED.model_dump(mode="json"),
        "name": "await-payment-unless-cancelled",
        "cancel_on": [
            {
                "source": "orders",
                "detail_type": "order.cancelled",
                "correlate": {"event": "detail.order_id", "equals": "${input.order_id}"},
            }
        ],
    }
)


def order_cancelled(order_id: str, event_id: str, at: datetime) -> dict[str, Any]:
    return {**settled(order_id, event_id, at), "source": "orders", "detail_type": "order.cancelled"}


def cancel_on(world: InProcessWorld) -> None:
    """An order's cancellation cancels every run of it (and leaves other orders' alone);
    the runs' ends take their cancel_on and their waits out of the index."""
    world.workflows[CANCELLABLE.name] = CANCELLABLE
    mine = [world.start(CANCELLABLE.name, {"order_id": "o-1"}) for _ in range(3)]
    other = world.start(CANCELLABLE.name, {"order_id": "o-2"})
    world.clock.set(T0 + timedelta(seconds=5))
    arrival = world.orchestrator.receive_event(order_cancelled("o-1", "c-1", world.clock.now()))
    assert sorted(w.run_id for w in arrival.waiters) == sorted(mine)
    for run_id in mine:
        assert world.store.get_run(run_id).status == "cancelled"
        assert output_of(world, run_id)[0] == "cancelled"
    assert world.store.get_run(other).status == "waiting"
    again = world.orchestrator.receive_event(order_cancelled("o-1", "c-2", world.clock.now()))
    assert again.waiters == []
    assert world.orchestrator.receive_event(settled("o-1", "e-1", world.clock.now())).waiters == []


def test_cancel_on_cancels_the_runs_of_its_value() -> None:
    cancel_on(world_on(MemoryStore()))


def test_cancel_on_on_dynamodb(store: DynamoStore) -> None:
    cancel_on(world_on(store))


def test_an_event_costs_the_same_for_each_wait_it_completes(store: DynamoStore) -> None:
    """An event's requests: a fixed part (keeping it, the routes' Query per path) and the same
    requests for every wait it completes, whatever else is open."""
    world = world_on(store)
    world.start(SETTLED.name, {"order_id": "o-warm"})  # the type's first wait: its path
    world.orchestrator.receive_event(settled("o-warm", "e-warm", T0))  # reads the routes
    spent: dict[int, Any] = {}
    for width in (1, 4):
        for _ in range(width):
            world.start(SETTLED.name, {"order_id": f"o-{width}"})
        for n in range(10):
            world.start(SETTLED.name, {"order_id": f"o-other-{width}-{n}"})
        meter = metered(store)
        before = meter.reading()
        arrival = world.orchestrator.receive_event(settled(f"o-{width}", f"e-{width}", T0))
        assert len(arrival.waiters) == width
        spent[width] = meter.reading() - before
    calls = set(spent[1].dynamodb_calls) | set(spent[4].dynamodb_calls)
    each = {c: (spent[4].dynamodb_calls[c] - spent[1].dynamodb_calls[c]) / 3 for c in calls}
    fixed = {
        c: spent[1].dynamodb_calls[c] - n
        for c, n in each.items()
        if n != spent[1].dynamodb_calls[c]
    }
    assert fixed == {"PutItem": 1, "Query": 1}  # kept, and the waits on its value
    assert all(n == int(n) for n in each.values()), each  # the same for every wait
    # Each wait completed: its run read once and two writes (the run's commit, and its outbox
    # cleared on the run as that commit wrote it: no read again).
    assert (spent[4].reads - spent[1].reads, spent[4].writes - spent[1].writes) == (3, 6)
    print(f"\nan event: fixed {fixed}; for each wait it completes {each}")
    units = {width: (r.reads, r.writes) for width, r in spent.items()}
    print(f"read/write units by waits completed: {units}")


def unwatch_lost_with_the_process(world: InProcessWorld) -> None:
    """The process that committed a run's end (cancelled while its step waits) dies before
    taking the step's wait and the run's cancel_on out of the index (its commands die with
    it): the sweep carries out what the decision's outbox holds, so no entry is left for
    later events."""
    world.workflows[CANCELLABLE.name] = CANCELLABLE
    act = world.orchestrator._act
    died: set[str] = set()

    def dies_once_after_each_end(run_id, commands, outbox=None):  # type: ignore[no-untyped-def]
        ended = {c.key for c in commands if isinstance(c, UnwatchEvent)}
        if ended - died:
            died.update(ended)
            return
        act(run_id, commands, outbox)

    world.orchestrator._act = dies_once_after_each_end  # type: ignore[method-assign]
    run_id = world.start(CANCELLABLE.name, {"order_id": "o-1"})
    world.send(run_id, CancelRequested("the order was withdrawn"))
    assert died == {"settled", CANCEL_ON_KEY}
    world.clock.set(T0 + timedelta(minutes=2))
    sweep(world.orchestrator, world.store)
    assert world.store.get_run(run_id).status == "cancelled"
    later = world.clock.now()
    assert world.orchestrator.receive_event(settled("o-1", "e-1", later)).waiters == []
    assert world.orchestrator.receive_event(order_cancelled("o-1", "c-1", later)).waiters == []
    assert world.store.get_run(run_id).outbox == []


def test_a_crash_after_a_runs_end_leaves_no_wait_in_the_index() -> None:
    unwatch_lost_with_the_process(world_on(MemoryStore()))


def test_a_crash_after_a_runs_end_leaves_no_wait_in_the_index_on_dynamodb(
    store: DynamoStore,
) -> None:
    unwatch_lost_with_the_process(world_on(store))
