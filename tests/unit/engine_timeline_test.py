"""The timeline: an entry for every transition, read here through the order example."""

from __future__ import annotations

import itertools
from pathlib import Path

import orders
import pytest
from ruamel.yaml import YAML

from helpers import EngineDriver, task
from stepwell.definition.models import Workflow
from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def order_flow():
    source = YAML(typ="safe").load((ROOT / "statemachines" / "order-fulfilment.yaml").read_text())
    return Workflow.model_validate(source)


def order_world(order_flow, approve=True):
    return InProcessWorld(
        {order_flow.name: order_flow},
        orders.HANDLERS,
        approver=lambda c: ApprovalDecided(c.key, c.attempt, approve, "finance@example.com", "ok"),
    )


ITEMS = [{"sku": "A", "qty": 10, "price": 60}, {"sku": "B", "qty": 2, "price": 300}]


def test_the_timeline_of_a_large_order(order_flow):
    world = order_world(order_flow)
    run_id = world.start(
        "order-fulfilment", {"order_id": "o-1", "customer": "a@b.c", "items": ITEMS}
    )
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "succeeded"
    entries = world.store.timeline(run_id, limit=1000).items
    assert [(e.type, e.step, e.attempt) for e in entries] == [
        ("run_started", None, None),
        ("step_dispatched", "validate", 1),
        ("step_completed", "validate", 1),
        ("fanout_started", "reserve", None),
        ("step_dispatched", "reserve[0]", 1),
        ("step_dispatched", "reserve[1]", 1),
        ("step_completed", "reserve[0]", 1),
        ("step_completed", "reserve[1]", 1),
        ("step_completed", "reserve", None),
        ("condition_evaluated", "is_large", None),
        ("step_completed", "is_large", None),
        ("step_waiting", "approve", 1),
        ("step_approved", "approve", 1),
        ("step_completed", "approve", 1),
        ("step_dispatched", "charge", 1),
        ("step_retrying", "charge", 1),
        ("step_dispatched", "charge", 2),
        ("step_completed", "charge", 2),
        ("step_delay_started", "cool_off", 1),
        ("step_completed", "cool_off", 1),
        ("step_dispatched", "announce", 1),
        ("step_completed", "announce", 1),
        ("run_status", None, None),
    ]
    assert entries[-1].message == "succeeded"
    assert entries[0].data == {"version": order_flow.version}
    cool_off = [e.at for e in entries if e.step == "cool_off"]
    assert (cool_off[1] - cool_off[0]).total_seconds() == 3600
    assert all(a.at <= b.at for a, b in itertools.pairwise(entries))
    assert run.output["total"] == 1200
    assert len(run.output["reservations"]) == 2


def test_a_small_order_skips_the_approval(order_flow):
    world = order_world(order_flow)
    items = [{"sku": "A", "qty": 1, "price": 5}]
    run_id = world.start(
        "order-fulfilment", {"order_id": "o-2", "customer": "a@b.c", "items": items}
    )
    world.run_until_idle()
    entries = world.store.timeline(run_id, limit=1000).items
    assert [(e.type, e.step) for e in entries if e.step in ("is_large", "approve", "charge")][
        :4
    ] == [
        ("condition_evaluated", "is_large"),
        ("step_completed", "is_large"),
        ("step_skipped", "approve"),
        ("step_dispatched", "charge"),
    ]
    assert not world.approvals
    assert world.store.get_run(run_id).status == "succeeded"


def test_a_rejected_order_ends_at_the_approval(order_flow):
    world = order_world(order_flow, approve=False)
    run_id = world.start(
        "order-fulfilment", {"order_id": "o-3", "customer": "a@b.c", "items": ITEMS}
    )
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "failed"
    assert run.error["step"] == "approve"
    types = [e.type for e in world.store.timeline(run_id, limit=1000).items]
    assert types[-4:] == ["step_waiting", "step_rejected", "step_failed", "run_status"]
    assert "step_dispatched" not in types[types.index("step_rejected") :]


def test_every_entry_carries_the_decision_time_and_attempt():
    run = EngineDriver({"a": task(retry={"interval": "1s", "jitter": "none"})})
    run.fail("a", "Flaky")
    run.fire("a")
    run.succeed("a")
    entries = [
        (e.type, e.attempt, (e.at - run.timeline[0].at).total_seconds()) for e in run.timeline
    ]
    assert entries == [
        ("run_started", None, 0),
        ("step_dispatched", 1, 0),
        ("step_retrying", 1, 0),
        ("step_dispatched", 2, 1),
        ("step_completed", 2, 1),
        ("run_status", None, 1),
    ]
