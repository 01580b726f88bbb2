"""A run of a keyed workflow started again (an operator's retry of a failed run, a rerun from a
step) waits for a slot of its key like a new start: never one run too many at once."""

from __future__ import annotations

from typing import Any

from stepwell.definition.models import Workflow
from stepwell.engine.events import RetryRequested
from stepwell.local.inprocess import InProcessWorld

KEY = "orders#acme"


def world() -> InProcessWorld:
    definition = Workflow.model_validate(
        {
            "name": "orders",
            "concurrency": {"key": "${input.customer}", "limit": 1},
            "steps": {
                "check": {"function": "Check"},
                "ship": {"function": "Ship", "depends_on": "check"},
            },
        }
    )
    failing: set[str] = set()

    def ship(input: Any, context: Any) -> Any:
        if context.run_id in failing:
            failing.discard(context.run_id)
            raise RuntimeError("the carrier is down")
        return {"shipped": True}

    played = InProcessWorld(
        {"orders": definition}, {"Check": lambda input, context: {}, "Ship": ship}
    )
    played.failing = failing  # type: ignore[attr-defined]
    return played


def two_runs(played: InProcessWorld) -> tuple[str, str]:
    """A fails at ``ship``; B then holds the key's one slot, its first step not yet answered."""
    a = played.start("orders", {"customer": "acme"})
    played.failing.add(a)  # type: ignore[attr-defined]
    b = played.start("orders", {"customer": "acme"})
    assert played.store.get_run(b).status == "queued"  # type: ignore[union-attr]
    while played.store.get_run(a).status != "failed":  # type: ignore[union-attr]
        played._run_attempt(played.dispatched.popleft())
    assert played.store.get_run(b).status == "running"  # type: ignore[union-attr]
    assert played.store.slots(KEY).held == (b,)
    return a, b


def test_a_retry_of_a_failed_run_waits_for_a_slot_while_another_run_holds_it() -> None:
    played = world()
    a, b = two_runs(played)
    played.send(a, RetryRequested("ship", by="ops"))
    assert played.store.get_run(a).status == "queued"  # type: ignore[union-attr]
    assert played.store.slots(KEY).held == (b,) and played.store.slots(KEY).head == a
    assert all(c.run_id == b for c in played.dispatched)  # nothing of A runs meanwhile
    played.run_until_idle()
    runs = [played.store.get_run(i) for i in (a, b)]
    assert [r.status for r in runs if r is not None] == ["succeeded", "succeeded"]
    b_ended, a_again = runs[1].ended_at, runs[0].started_at  # type: ignore[union-attr]
    assert a_again is not None and b_ended is not None and a_again >= b_ended
    kinds = [e.type for e in played.store.timeline(a).items]
    assert kinds.count("run_queued") == 1 and kinds[-1] == "run_status"  # the retry waited
    assert played.store.slots(KEY).held == () and played.store.slots(KEY).head is None


def test_a_rerun_waits_for_a_slot_and_then_starts_from_its_step() -> None:
    played = world()
    a, b = two_runs(played)
    again = played.orchestrator.rerun(a, "ship")
    run = played.store.get_run(again)
    assert run is not None and run.status == "queued" and run.started_at is None
    assert played.store.slots(KEY).head == again
    assert all(c.run_id == b for c in played.dispatched)
    played.run_until_idle()
    run = played.store.get_run(again)
    assert run is not None and run.status == "succeeded"
    ended_b = played.store.get_run(b).ended_at  # type: ignore[union-attr]
    assert run.started_at is not None and ended_b is not None and run.started_at >= ended_b
    steps = played.store.load(again, {"check", "ship"}).steps
    assert steps["check"].copied_from == a and steps["ship"].attempt == 1
    [started] = [e for e in played.store.timeline(again).items if e.type == "run_started"]
    assert started.message == f"rerun of {a} from ship"
    assert played.store.slots(KEY).held == () and played.store.slots(KEY).head is None
