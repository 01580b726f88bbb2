"""ctx.wait_for_event in the in-process world: the real engine, replay and event waits, with
the same semantics as a YAML event step (kept events of its lookback, broadcast, once)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from stepwell.code.workflow import workflow
from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld

T0 = datetime(2026, 5, 4, 9, 0, tzinfo=UTC)
PAYMENT = {"source": "payments", "detail_type": "payment.settled"}


@workflow(name="pay-then-ship")
def pay_then_ship(ctx: Any, input: Any) -> Any:
    paid = ctx.wait_for_event(
        "settled",
        correlate={"event": "detail.order_id", "equals": input["order_id"]},
        where="${event.detail.amount >= 10}",
        lookback="10s",
        timeout="1h",
        **PAYMENT,
    )
    either = ctx.wait_for_event(
        "shipped-or-lost",
        events=[
            {
                "source": "shipping",
                "detail_type": kind,
                "correlate": {"event": "detail.order_id", "equals": input["order_id"]},
            }
            for kind in ("parcel.shipped", "parcel.lost")
        ],
        timeout="1d",
        on_timeout="continue",
    )
    return {"paid": paid["id"], "parcel": either and either["detail_type"]}


def world() -> InProcessWorld:
    definition = Workflow(
        name="pay-then-ship", steps={}, code="t.py:pay_then_ship", code_version="1"
    )
    play = InProcessWorld({definition.name: definition}, {}, code={definition.name: pay_then_ship})
    play.clock.set(T0)
    return play


def event(
    id: str, order_id: str, at: datetime, source="payments", detail_type="payment.settled", **detail
):
    return {
        "id": id,
        "source": source,
        "detail_type": detail_type,
        "time": at.isoformat(),
        "detail": {"order_id": order_id, **detail},
    }


def waiting_on(play: InProcessWorld, run_id: str, key: str) -> bool:
    return any(s.key == key and s.status == "waiting" for s in play.store.steps(run_id))


def test_a_code_first_run_waits_for_its_events_as_a_yaml_step_does() -> None:
    play = world()
    early = event("e-0", "o-1", T0, amount=50)
    play.orchestrator.receive_event(early)  # before the run: kept for its lookback
    play.clock.set(T0 + timedelta(seconds=5))
    run_id = play.start("pay-then-ship", {"order_id": "o-1"})
    other = play.start("pay-then-ship", {"order_id": "o-2"})
    play.run_until_idle(virtual_time=False)
    assert waiting_on(play, run_id, "shipped-or-lost")  # the kept event completed its first
    assert waiting_on(play, other, "settled")
    shipped = event("s-1", "o-1", play.clock.now(), "shipping", "parcel.shipped")
    assert [w.run_id for w in play.orchestrator.receive_event(shipped).waiters] == [run_id]
    assert play.orchestrator.receive_event(shipped).duplicate
    play.run_until_idle(virtual_time=False)
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.output == {"paid": "e-0", "parcel": "parcel.shipped"}
    [step] = [s for s in play.store.steps(run_id) if s.key == "shipped-or-lost"]
    assert step.output["matched"] == 0
    types = [entry.type for entry in play.store.timeline(run_id).items]
    assert types.count("event_duplicate") == 1


def test_where_refuses_a_small_payment_and_a_timeout_goes_on_without_an_event() -> None:
    play = world()
    run_id = play.start("pay-then-ship", {"order_id": "o-3"})
    play.run_until_idle(virtual_time=False)
    play.orchestrator.receive_event(event("e-1", "o-3", play.clock.now(), amount=5))
    play.orchestrator.receive_event(event("e-2", "o-3", play.clock.now(), amount=15))
    play.run_until_idle()  # virtual time: the second wait times out after a day
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run
    assert run.output == {"paid": "e-2", "parcel": None}


CORRELATE = {"correlate": {"event": "detail.id", "equals": "x"}}


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({}, "wait_for_event 'settled': give source, detail_type and correlate"),
        ({**CORRELATE, "lookback": "soon"}, "step 'settled': lookback"),
        ({"correlate": {"event": "order id", "equals": "x"}}, "detail.order_id"),
    ],
)
def test_a_mistake_in_the_call_fails_the_run_naming_the_step_and_the_fix(
    fields: dict[str, Any], says: str
) -> None:
    @workflow(name="careless")
    def careless(ctx: Any, input: Any) -> Any:
        return ctx.wait_for_event("settled", **PAYMENT, **fields)

    definition = Workflow(name="careless", steps={}, code="t.py:careless", code_version="1")
    play = InProcessWorld({"careless": definition}, {}, code={"careless": careless})
    run_id = play.start("careless", None)
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "failed"
    assert says in str(run.error)
