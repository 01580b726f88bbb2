"""The store codec round-trips records exactly, and large payloads move out and back (no AWS)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from stepwell.engine.decision import TimelineEntry
from stepwell.engine.state import ParentRef, RunState, StepState, Usage
from stepwell.store import codec
from stepwell.store.models import RunItem, StepItem
from stepwell.store.payloads import MemoryPayloadStore, Offloader, PayloadTooLarge

T = datetime(2026, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63)
    | st.floats(allow_nan=False)
    | st.text(),
    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
    max_leaves=20,
)


def full_run() -> RunState:
    return RunState(
        id="run-1",
        workflow="orders",
        version="abc123",
        status="succeeded",
        input={"order": [1, 2.5, "x", None, True], "ü": "é"},
        created_at=T,
        started_at=T + timedelta(microseconds=1),
        ended_at=T + timedelta(hours=1),
        output=[{"a": 1}],
        error={"type": "Boom", "message": "no"},
        context={"region": "eu"},
        labels={"team": "shop"},
        due_at=T + timedelta(days=3),
        open_steps=3,
        waiting_steps=1,
        parent=ParentRef("parent-run", "child_step", 2),
        rerun_of="old-run",
        dry_run=True,
        usage=Usage(cost_usd=0.1 + 0.2, input_tokens=10, output_tokens=20),
        outbox=[{"id": "3.0", "kind": "emit", "detail": {"x": 1}}],
        outbox_due=T + timedelta(minutes=1),
        nonce="s3cr3t",
        seq=42,
    )


def full_step() -> StepState:
    return StepState(
        key="charge[3]",
        status="retrying",
        attempt=2,
        token="t0k3n",
        pending_deps=0,
        skipped_deps=1,
        input={"amount": 12.5},
        output="done",
        error={"type": "Declined"},
        item={"sku": "A"},
        started_at=T,
        attempt_started_at=T + timedelta(seconds=1),
        ended_at=None,
        due_at=T + timedelta(seconds=30),
        waiting_for="retry",
        heartbeat_due=T + timedelta(minutes=1),
        timeout_at=T + timedelta(minutes=2),
        decisions=[{"approver": "a@example.com", "decision": "approve"}],
        early_signal={"status": "success"},
        child_run_id="child",
        items_total=10,
        next_child=5,
        children_succeeded=1,
        children_failed=1,
        counted_at=T + timedelta(seconds=3),
        usage=Usage(cost_usd=1e-7, input_tokens=1, output_tokens=2),
        dry_run=True,
        copied_from="source-run",
        lost_attempts=1,
        retry_base=1,
        name="charge",
        spec={"type": "task", "function": "ChargeCardFunction"},
        position=4,
        after=["validate", "reserve.0.reserve"],
        wake=True,
        created_seq=7,
    )


def test_run_round_trips_exactly() -> None:
    for run in (full_run(), RunState("r", "w", "v", "running", None, T)):
        back = codec.run_from_attrs(codec.run_to_attrs(run))
        assert back == run
        assert type(back.usage.cost_usd) is float


def test_step_round_trips_exactly() -> None:
    for step in (full_step(), StepState(key="validate")):
        assert codec.step_from_attrs(codec.step_to_attrs(step)) == step


def test_times_keep_microseconds_and_offset() -> None:
    step = StepState(key="a", due_at=datetime(2026, 1, 1, 9, tzinfo=timezone(timedelta(hours=2))))
    back = codec.step_from_attrs(codec.step_to_attrs(step))
    assert back.due_at == step.due_at and back.due_at.utcoffset() == timedelta(hours=2)


def test_none_is_never_stored() -> None:
    attrs = codec.step_to_attrs(StepState(key="a"))
    assert None not in attrs.values()
    assert "output" not in attrs and "pending_deps" not in attrs


def test_every_field_is_stored_and_every_attribute_is_modelled() -> None:
    assert set(codec.RUN_FIELDS) == {f.name for f in dataclasses.fields(RunState)}
    assert set(codec.STEP_FIELDS) == {f.name for f in dataclasses.fields(StepState)}
    assert set(codec.run_to_attrs(full_run())) <= set(RunItem.get_attributes())
    assert set(codec.step_to_attrs(full_step())) <= set(StepItem.get_attributes())


def test_timeline_entries_round_trip() -> None:
    entries = [
        TimelineEntry(T, "run_started", None, None, "orders version abc", {"version": "abc"}),
        TimelineEntry(T, "step_dispatched", "charge[2]", 3, "attempt 3", {}),
        TimelineEntry(T + timedelta(seconds=1), "note"),
    ]
    assert codec.decode_entries(codec.encode_entries(entries)) == entries


@given(json_values)
def test_any_json_payload_round_trips_and_never_reads_as_a_pointer(value: object) -> None:
    text = codec.encode_payload(value)
    assert codec.pointer_uri(text) is None
    assert codec.decode_payload(text) == value


@pytest.mark.parametrize(
    "value",
    [
        {"$ref": "s3://bucket/key"},
        {"$inline": 1},
        {"$inline": {"$ref": "s3://x/y"}},
        {"$ref": "#/definitions/a", "type": "object"},
    ],
)
def test_values_shaped_like_pointers_stay_values(value: object) -> None:
    text = codec.encode_payload(value)
    assert codec.pointer_uri(text) is None
    assert codec.decode_payload(text) == value


def test_keys_sort_as_intended() -> None:
    assert codec.timeline_sk(9) < codec.timeline_sk(10) < codec.TIMELINE_END
    assert codec.step_sk("zzz") < codec.timeline_sk(0)
    old = dataclasses.replace(full_run(), created_at=T)
    new = dataclasses.replace(full_run(), created_at=T + timedelta(microseconds=1))
    assert codec.list_sk(old) < codec.list_sk(new)
    assert codec.shard("run-1", 16) == codec.shard("run-1", 16) < 16


def test_item_size_counts_names_and_utf8_bytes() -> None:
    assert codec.item_size({"ab": "é"}) == 2 + 2
    assert codec.item_size({"n": 12345}) == 1 + 3


def test_large_payloads_move_out_and_back() -> None:
    payloads = MemoryPayloadStore()
    offloader = Offloader(payloads, threshold=1024)
    big = {"blob": "x" * 5000}
    attrs = codec.step_to_attrs(StepState(key="a", attempt=2, input={"small": 1}, output=big))
    offloader.offload(attrs, codec.STEP_PAYLOADS, "runs/r/a/2")
    assert codec.pointer_uri(attrs["output"]) is not None
    assert codec.pointer_uri(attrs["input"]) is None
    (key,) = payloads.objects
    assert key.startswith("runs/r/a/2/output-") and key.endswith(".json")
    back = codec.step_from_attrs(offloader.resolve(attrs, codec.STEP_PAYLOADS))
    assert back.output == big


def test_an_unchanged_payload_is_uploaded_once_and_downloaded_never() -> None:
    payloads = MemoryPayloadStore()
    offloader = Offloader(payloads, threshold=10)
    for _ in range(3):
        attrs = {"output": codec.encode_payload("y" * 100)}
        offloader.offload(attrs, ["output"], "runs/r/a/1")
        offloader.resolve(attrs, ["output"])
    assert offloader.uploads == 1 and offloader.downloads == 0
    fresh = Offloader(payloads, threshold=10)
    assert codec.decode_payload(fresh.resolve(attrs, ["output"])["output"]) == "y" * 100
    assert fresh.downloads == 1


def test_items_are_kept_under_the_size_limit_whatever_the_threshold() -> None:
    offloader = Offloader(MemoryPayloadStore(), threshold=10**9, max_item_bytes=50_000)
    attrs = {f: codec.encode_payload("z" * 20_000) for f in ("input", "output", "item")}
    offloader.offload(attrs, ["input", "output", "item"], "runs/r/a/1")
    assert codec.item_size(attrs) <= 50_000
    assert sum(codec.pointer_uri(v) is not None for v in attrs.values()) == 1


def test_without_a_bucket_a_large_payload_is_a_clear_error() -> None:
    offloader = Offloader(None, threshold=10)
    with pytest.raises(PayloadTooLarge, match="STEPWELL_BUCKET"):
        offloader.offload({"output": codec.encode_payload("q" * 100)}, ["output"], "runs/r/a/1")


def test_a_record_classs_fields_are_read_once_not_per_record(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every step write encodes two records and every read decodes one per item: the class's
    defaults and required fields do not change between them."""
    asked: list[type] = []
    fields = dataclasses.fields

    def counted(cls: type) -> tuple[dataclasses.Field[object], ...]:
        asked.append(cls)
        return fields(cls)

    monkeypatch.setattr(codec.dataclasses, "fields", counted)
    codec.step_from_attrs(codec.step_to_attrs(StepState(key="warm", status="pending")))
    asked.clear()
    for n in range(5):
        step = StepState(key=f"s{n}", status="succeeded", attempt=1, output={"n": n})
        assert codec.step_from_attrs(codec.step_to_attrs(step)) == step
    assert asked == []
    # An empty list equal to its field's default is still left out, and read back as a fresh one.
    first = codec.step_from_attrs(codec.step_to_attrs(StepState(key="a", status="pending")))
    first.deps_ended.append("x")
    assert codec.step_from_attrs({"step_key": "b", "status": "pending"}).deps_ended == []
