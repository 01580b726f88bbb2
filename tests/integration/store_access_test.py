"""Every access pattern of the DynamoDB store, against the table template.yaml defines."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from conftest import dynamo_store

from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.state import RunState, StepState
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.memory import MemoryStore
from stepwell.store.port import Conflict, Due, RunNotFound, Store

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def new_run(run_id: str = "r1", workflow: str = "orders", **fields: Any) -> RunState:
    fields.setdefault("status", "running")
    fields.setdefault("created_at", T0)
    fields.setdefault("input", {"n": 1})
    return RunState(id=run_id, workflow=workflow, version="v1", **fields)


def note(text: str, at: datetime = T0) -> TimelineEntry:
    return TimelineEntry(at, "note", None, None, text)


def create(store: Store, run: RunState, *steps: StepState, notes: int = 1) -> None:
    store.create(
        Decision(
            run=run,
            steps={s.key: s for s in steps},
            timeline=[note(f"created {i}") for i in range(notes)],
            created=True,
        )
    )


def change(store: Store, run_id: str, *steps: StepState, **fields: Any) -> RunState:
    """Load, change, commit: what the orchestrator does for one event."""
    state = store.load(run_id, [s.key for s in steps])
    run = state.run.copy()
    for name, value in fields.items():
        setattr(run, name, value)
    store.commit(
        Decision(
            run=run,
            steps={s.key: s for s in steps},
            timeline=[note("changed")],
            before={s.key: state.steps.get(s.key) for s in steps},
        ),
        state.run.seq,
    )
    found = store.get_run(run_id)
    assert found is not None
    return found


# -- runs and steps -----------------------------------------------------------------------


def test_create_then_load_reads_the_run_and_only_the_named_steps(store: DynamoStore) -> None:
    create(store, new_run(), StepState(key="a", status="running", attempt=1), StepState(key="b"))
    state = store.load("r1", ["a", "missing"])
    assert state.run == new_run(seq=1)
    assert set(state.steps) == {"a"} and state.steps["a"].attempt == 1
    assert state.absent == {"missing"} and not state.complete
    store.load_more(state, frozenset({"b"}))
    assert set(state.steps) == {"a", "b"}


def test_a_run_is_created_once(store: DynamoStore) -> None:
    create(store, new_run())
    with pytest.raises(Conflict):
        create(store, new_run(input={"other": True}))
    run = store.get_run("r1")
    assert run is not None and run.input == {"n": 1}


def test_unknown_runs(store: DynamoStore) -> None:
    with pytest.raises(RunNotFound):
        store.load("nope", ["a"])
    assert store.get_run("nope") is None
    assert store.steps("nope") == []


def test_commit_bumps_seq_and_a_stale_commit_conflicts(store: DynamoStore) -> None:
    create(store, new_run())
    stale = store.load("r1", [])
    after = change(store, "r1", StepState(key="a", status="running"), open_steps=5)
    assert after.seq == 2 and after.open_steps == 5
    with pytest.raises(Conflict):
        store.commit(Decision(run=stale.run, timeline=[note("late")]), stale.run.seq)
    run = store.get_run("r1")
    assert run is not None and run.seq == 2 and run.open_steps == 5


def test_load_more_of_everything_reads_the_whole_run(store: DynamoStore) -> None:
    keys = [f"s{i:03d}" for i in range(30)]
    create(store, new_run(), *(StepState(key=k) for k in keys))
    state = store.load("r1", ["s001"])
    store.load_more(state, None)
    assert state.complete and sorted(state.steps) == keys
    assert [s.key for s in store.steps("r1")] == keys


def test_load_reads_more_than_a_batch_of_keys(store: DynamoStore) -> None:
    keys = [f"fan[{i}]" for i in range(250)]
    # A run created with more records than one transaction holds (as a rerun copying many
    # ancestors is): the ones that do not fit are written before it.
    store.create(
        Decision(run=new_run(), steps={k: StepState(key=k, item=k) for k in keys}, created=True)
    )
    state = store.load("r1", [*keys, "fan"])
    assert len(state.steps) == 250 and state.absent == {"fan"}
    assert state.steps["fan[249]"].item == "fan[249]"


def test_a_step_written_alone_expects_the_record_it_was_decided_on(store: DynamoStore) -> None:
    create(store, new_run())
    run = store.load("r1", []).run
    created = StepState(key="fan[0]", status="running", attempt=1)
    store.write_step(run, Decision(run=run, steps={"fan[0]": created}, before={"fan[0]": None}))
    loaded = store.load_steps("r1", ["fan[0]"]).steps["fan[0]"]
    assert loaded.rev == 1 and loaded.status == "running"
    again = StepState(key="fan[0]", status="running", attempt=2)
    with pytest.raises(Conflict):  # decided on "no record": someone created it meanwhile
        store.write_step(run, Decision(run=run, steps={"fan[0]": again}, before={"fan[0]": None}))
    done = dataclasses.replace(loaded, status="succeeded", output=1)
    store.write_step(run, Decision(run=run, steps={"fan[0]": done}, before={"fan[0]": loaded}))
    with pytest.raises(Conflict):  # decided on revision 1, which is gone
        store.write_step(run, Decision(run=run, steps={"fan[0]": again}, before={"fan[0]": loaded}))
    final = store.load_steps("r1", ["fan[0]"]).steps["fan[0]"]
    assert (final.status, final.output, final.rev) == ("succeeded", 1, 2)


# -- timeline -----------------------------------------------------------------------------


def test_timeline_pages_in_order_with_an_opaque_cursor(store: DynamoStore) -> None:
    create(store, new_run(), notes=3)
    for i in range(6):
        state = store.load("r1", [])
        store.commit(
            Decision(run=state.run.copy(), timeline=[note(f"c{i}.{j}") for j in range(i % 3 + 1)]),
            state.run.seq,
        )
    everything = store.timeline("r1", limit=1000)
    assert everything.cursor is None
    messages = [e.message for e in everything.items]
    assert messages[:4] == ["created 0", "created 1", "created 2", "c0.0"]
    assert len(messages) == 3 + 1 + 2 + 3 + 1 + 2 + 3
    for limit in (1, 2, 3, 4, 5, 15):
        seen, cursor = [], None
        while True:
            page = store.timeline("r1", cursor, limit=limit)
            assert len(page.items) <= limit
            seen.extend(e.message for e in page.items)
            cursor = page.cursor
            if cursor is None:
                break
        assert seen == messages, limit


def test_a_client_follows_a_timeline(store: DynamoStore) -> None:
    create(store, new_run(), notes=2)
    page = store.timeline("r1", limit=10, follow=True)
    assert [e.message for e in page.items] == ["created 0", "created 1"]
    assert page.cursor is not None
    quiet = store.timeline("r1", page.cursor, follow=True)
    assert quiet.items == [] and quiet.cursor == page.cursor
    change(store, "r1")
    news = store.timeline("r1", quiet.cursor, follow=True)
    assert [e.message for e in news.items] == ["changed"]


def test_a_cursor_of_another_run_is_refused(store: DynamoStore) -> None:
    create(store, new_run("r1"), notes=3)
    create(store, new_run("r2"), notes=3)
    page = store.timeline("r1", limit=1)
    assert page.cursor is not None
    with pytest.raises(ValueError, match="another listing"):
        store.timeline("r2", page.cursor)
    with pytest.raises(ValueError, match="not a cursor"):
        store.timeline("r2", "%%%")


def test_long_timeline_messages_are_truncated_with_a_pointer(store: DynamoStore, scan: Any) -> None:
    long = "why " * 5000
    store.create(Decision(run=new_run(), timeline=[note(long)], created=True))
    (entry,) = store.timeline("r1").items
    assert len(entry.message) < 2300 and "truncated from 20000 characters" in entry.message
    ref = entry.data["message_ref"]
    assert ref.startswith("s3://") and ref in entry.message
    assert store.offloader.get_text(ref) == f'"{long}"'


# -- due index ----------------------------------------------------------------------------


def test_due_finds_timers_across_every_shard_oldest_first(store: DynamoStore, scan: Any) -> None:
    for i in range(24):
        due = T0 + timedelta(minutes=i)
        create(
            store,
            new_run(f"run-{i}", due_at=due),
            StepState(key="wait", status="waiting", due_at=due + timedelta(seconds=30)),
            StepState(key="idle"),
        )
    now = T0 + timedelta(minutes=20)
    found = [(d.run_id, d.key) for d in store.due(now, limit=1000)]
    expected = [(f"run-{i}", None) for i in range(21)] + [(f"run-{i}", "wait") for i in range(20)]
    assert set(found) == set(expected) and len(found) == len(expected)
    assert found[:3] == [("run-0", None), ("run-0", "wait"), ("run-1", None)]
    assert [(d.run_id, d.key) for d in store.due(now, limit=5)] == found[:5]
    assert store.due(now, limit=1)[0].at == T0
    shards = {i["due_pk"]["S"] for i in scan() if "due_pk" in i}
    assert len(shards) > 8  # spread, not one hot partition


def test_the_due_index_is_sparse(store: DynamoStore, scan: Any) -> None:
    create(store, new_run(due_at=T0), StepState(key="a", due_at=T0))
    assert len(store.due(T0)) == 2
    change(store, "r1", StepState(key="a", due_at=None), due_at=None)
    assert store.due(T0 + timedelta(days=1)) == []
    assert not any("due_pk" in item or "due_us" in item for item in scan())


# -- definitions --------------------------------------------------------------------------


def test_definitions_are_immutable_versions(
    store: DynamoStore, example: Any, scan: Any, tables: dict[str, str]
) -> None:
    definition = example("order-fulfilment")
    store.save_definition(definition)
    store.save_definition(definition)
    fresh = dynamo_store()
    fresh.save_definition(definition)  # another process: a conditional put that changes nothing
    loaded = fresh.get_definition(definition.name, definition.version)
    assert loaded == definition and loaded is not None
    assert loaded.version == definition.version
    assert fresh.get_definition(definition.name, "0000") is None
    assert len([i for i in scan() if i["kind"]["S"] == "definition"]) == 1


def test_a_workflows_saved_versions_are_listed(either: Store, example: Any) -> None:
    definition = example("order-fulfilment")
    changed = definition.model_copy(update={"version": "0" * len(definition.version)})
    other = example("data-pipeline")
    for workflow in (definition, changed, other, definition):
        either.save_definition(workflow)
    assert sorted(either.definition_versions(definition.name)) == sorted(
        {definition.version, changed.version}
    )
    assert either.definition_versions("nothing-of-that-name") == []


# -- listings -----------------------------------------------------------------------------


@pytest.fixture(params=["dynamodb", "memory"])
def either(request: pytest.FixtureRequest) -> Store:
    """Each store the port has: what the API lists through, the same on both."""
    if request.param == "memory":
        return MemoryStore()
    found: Store = request.getfixturevalue("store")
    return found


def make_runs(store: Store) -> list[RunState]:
    runs = []
    for i in range(14):
        run = new_run(
            f"run-{i:02d}",
            workflow="orders" if i % 3 else "reports",
            status="succeeded" if i % 2 else "running",
            created_at=T0 + timedelta(seconds=i),
        )
        create(store, run)
        runs.append(run)
    return runs


def page_through(fetch: Any, limit: int) -> list[str]:
    ids, cursor = [], None
    while True:
        page = fetch(cursor=cursor, limit=limit)
        assert len(page.items) <= limit
        ids.extend(r.id for r in page.items)
        cursor = page.cursor
        if cursor is None:
            return ids


@pytest.mark.parametrize("limit", [1, 3, 50])
def test_runs_by_workflow_newest_first(either: Store, limit: int) -> None:
    store = either
    runs = make_runs(store)
    newest = [r.id for r in reversed(runs)]
    orders = [i for i in newest if int(i[-2:]) % 3]
    assert page_through(lambda **kw: store.runs("orders", **kw), limit) == orders
    done = [i for i in orders if int(i[-2:]) % 2]
    assert page_through(lambda **kw: store.runs("orders", "succeeded", **kw), limit) == done
    running = [i for i in newest if not int(i[-2:]) % 2]
    assert page_through(lambda **kw: store.runs(status="running", **kw), limit) == running
    assert page_through(store.runs, limit) == newest


def test_a_listed_run_is_the_whole_run(store: DynamoStore) -> None:
    runs = make_runs(store)
    page = store.runs("reports", limit=2)
    assert (
        page.items
        == [
            RunState(**{**r.__dict__, "seq": 1}) for r in reversed(runs) if r.workflow == "reports"
        ][:2]
    )


def test_a_status_change_moves_a_run_between_listings(either: Store) -> None:
    store = either
    create(store, new_run())
    assert [r.id for r in store.runs(status="running").items] == ["r1"]
    change(store, "r1", status="failed", ended_at=T0)
    assert store.runs(status="running").items == []
    assert [r.id for r in store.runs(status="failed").items] == ["r1"]
    assert [r.id for r in store.runs("orders", "failed").items] == ["r1"]
    assert store.runs("orders", "running").items == []


def test_listing_cursors_belong_to_their_listing(store: DynamoStore) -> None:
    make_runs(store)
    page = store.runs(status="running", limit=2)
    assert page.cursor is not None
    with pytest.raises(ValueError, match="another listing"):
        store.runs(status="succeeded", cursor=page.cursor)


# -- retention ----------------------------------------------------------------------------


def test_every_item_carries_its_ttl_from_its_first_write(store: DynamoStore, scan: Any) -> None:
    # A run's records are kept until its deadline (fixed at its start) plus the retention, so
    # the TTL goes out with every write and nothing stamps the items when the run ends.
    deadline = T0 + timedelta(days=3)
    create(store, new_run("live", deadline=deadline), StepState(key="a"))
    create(store, new_run(deadline=deadline), StepState(key="a"), StepState(key="b"), notes=2)
    change(store, "r1", StepState(key="a", status="succeeded"))
    ended = T0 + timedelta(hours=5)
    change(store, "r1", StepState(key="b", status="succeeded"), status="succeeded", ended_at=ended)
    change(store, "r1")  # a late event on the ended run
    expected = int((deadline + timedelta(days=90)).timestamp())
    ttls = {
        int(item["expires_at"]["N"]) if "expires_at" in item else None
        for item in scan()
        if item["kind"]["S"] != "definition"
    }
    assert ttls == {expected}


def test_retention_is_configurable(tables: dict[str, str], scan: Any) -> None:
    store = dynamo_store(retention_days=7)
    create(store, new_run(status="succeeded", ended_at=T0, deadline=T0))
    assert {int(i["expires_at"]["N"]) for i in scan()} == {
        int((T0 + timedelta(days=7)).timestamp())
    }


def test_an_outbox_waiting_for_delivery_is_due_like_a_timer(store: DynamoStore) -> None:
    outbox = [{"id": "1.0", "kind": "emit", "detail_type": "run.started", "detail": {}}]
    later = T0 + timedelta(hours=1)
    create(store, new_run(due_at=later, outbox=outbox, outbox_due=T0 + timedelta(minutes=1)))
    assert store.due(T0) == []
    assert store.due(T0 + timedelta(minutes=1)) == [Due("r1", None, T0 + timedelta(minutes=1))]
    change(store, "r1", outbox=[], outbox_due=None)
    assert store.due(T0 + timedelta(minutes=1)) == []
    assert store.due(later) == [Due("r1", None, later)]
