"""The run's inbox on DynamoDB: posted without a condition, read in the step records' request,
emptied by the commit that folds it, found by the sweep when every folder died."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from stepwell.engine import core
from stepwell.engine.events import OutboxDelivered, StepFailed, StepSucceeded
from stepwell.engine.state import Usage
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.meter import RequestMeter
from stepwell.store.port import Conflict, Due, Posted

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def started(store: DynamoStore, make_workflow: Any) -> Any:
    # Four parallel branches: their results race on the run (a for_each's children do not).
    definition = make_workflow("inboxed", {f"b{i}": {"function": "Work"} for i in range(4)})
    store.save_definition(definition)
    start = core.start_run(definition, "in-1", {"items": [0, 1, 2, 3]}, T0)
    store.create(start)
    state = store.load("in-1", [])  # the start's outbox carried out: nothing due on the run
    store.commit(core.decide(definition, state, OutboxDelivered(tuple(start.outbox_sent)), T0), 1)
    return definition


def test_events_round_trip_through_inbox_entries() -> None:
    events = [
        StepSucceeded("b0", 1, {"a": [1, 2.5, None]}, Usage(0.5, 3, 4), token="t"),
        StepFailed("b1", 2, "Boom", "it broke", None, False, "u"),
        OutboxDelivered(("3.0", "3.1")),
    ]
    for event in events:
        assert codec.decode_posted(codec.encode_posted(event, T0, "n")) == event


def test_posting_never_conflicts_and_the_fold_removes_exactly_its_entries(
    store: DynamoStore, make_workflow: Any
) -> None:
    definition = started(store, make_workflow)
    first = store.post("in-1", StepSucceeded("b0", 1, "a"), T0)
    second = store.post("in-1", StepSucceeded("b1", 1, "b"), T0 + timedelta(seconds=1))
    assert first is not None and second is not None
    inbox: list[Posted] = []
    state = store.load("in-1", ["b0"], inbox)
    assert [p.entry for p in inbox] == [first, second]
    assert [p.event for p in inbox] == [
        StepSucceeded("b0", 1, "a"),
        StepSucceeded("b1", 1, "b"),
    ]
    # A third arrives after the folder read the inbox: the fold must leave it there.
    third = store.post("in-1", StepSucceeded("b2", 1, "c"), T0)
    events = [p.event for p in inbox]
    store.load_more(state, frozenset(core.reads_for_all(definition, events)))
    decision = core.decide_all(definition, state, events, T0)
    store.commit(decision, state.run.seq, [first, second])
    left: list[Posted] = []
    store.load("in-1", [], left)
    assert [p.entry for p in left] == [third]
    store.tidy_inbox("in-1")  # not empty: kept, still due
    assert Due("in-1", None, T0 + timedelta(minutes=1)) in store.due(T0 + timedelta(minutes=2))
    steps = {s.key: s for s in store.steps("in-1")}
    assert (steps["b0"].status, steps["b1"].status) == ("succeeded", "succeeded")


def test_a_fold_on_a_stale_seq_conflicts_and_keeps_the_inbox(
    store: DynamoStore, make_workflow: Any
) -> None:
    definition = started(store, make_workflow)
    entry = store.post("in-1", StepSucceeded("b0", 1, "a"), T0)
    assert entry is not None
    inbox_event = StepSucceeded("b0", 1, "a")
    inbox: list[Posted] = []
    state = store.load("in-1", core.reads_for(definition, inbox_event), inbox)
    other = store.load("in-1", core.reads_for(definition, StepSucceeded("b1", 1)))
    store.commit(core.decide(definition, other, StepSucceeded("b1", 1), T0), other.run.seq)
    decision = core.decide_all(definition, state, [inbox_event], T0)
    try:
        store.commit(decision, state.run.seq, [entry])
        raise AssertionError("a stale fold committed")
    except Conflict:
        pass
    left: list[Posted] = []
    store.load("in-1", [], left)
    assert [p.entry for p in left] == [entry]


def test_the_sweep_finds_an_inbox_and_an_emptied_one_is_no_longer_due(
    store: DynamoStore, make_workflow: Any
) -> None:
    started(store, make_workflow)
    assert store.due(T0 + timedelta(minutes=4)) == []  # (the run's watch is due at 5 minutes)
    entry = store.post("in-1", StepSucceeded("b0", 1, "a"), T0)
    store.post("in-1", StepSucceeded("b1", 1, "b"), T0 + timedelta(seconds=30))
    # Due a minute after the first post (a later post does not push it back).
    assert store.due(T0 + timedelta(minutes=4)) == [Due("in-1", None, T0 + timedelta(minutes=1))]
    inbox: list[Posted] = []
    state = store.load("in-1", [], inbox)
    definition = store.get_definition("inboxed", state.run.version)
    assert definition is not None and entry is not None
    events = [p.event for p in inbox]
    store.load_more(state, frozenset(core.reads_for_all(definition, events)))
    store.commit(
        core.decide_all(definition, state, events, T0), state.run.seq, [p.entry for p in inbox]
    )
    store.tidy_inbox("in-1")
    assert store.due(T0 + timedelta(minutes=4)) == []
    left = [s for s in store.m.item.query(codec.run_pk("in-1")) if s.sk == codec.INBOX_SK]
    assert [(s.due_pk, s.due_us) for s in left] == [(None, None)]
    store.tidy_inbox("no-such-run")  # creates nothing
    assert list(store.m.item.query(codec.run_pk("no-such-run"))) == []


def test_the_hot_path_reads_the_inbox_in_the_step_records_request(
    store: DynamoStore, make_workflow: Any
) -> None:
    started(store, make_workflow)
    meter = RequestMeter()
    for client in store.clients:
        meter.attach(client)
    inbox: list[Posted] = []
    before = meter.reading()
    store.load("in-1", ["b0", "b1", "b4"], inbox)
    spent = meter.reading() - before
    assert dict(spent.calls) == {"dynamodb:GetItem": 1, "dynamodb:BatchGetItem": 1}
    assert inbox == []


def test_an_event_too_large_for_the_inbox_is_not_posted(
    store: DynamoStore, make_workflow: Any
) -> None:
    started(store, make_workflow)
    assert store.post("in-1", StepSucceeded("b0", 1, "x" * 10_000), T0) is None
