"""Compensation (a saga) in YAML: when a run fails, is cancelled or times out, the steps that
succeeded and name a ``compensate`` are undone one at a time, newest first, each under its own
retry policy, and the run then ends as it was headed, its error saying how the undoing went."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from helpers import EngineDriver, task, workflow
from stepwell.engine.events import CancelRequested


def trip(**book_car: Any) -> dict[str, Any]:
    """Book a flight, then a hotel, then a car; each booking has its undo."""
    return {
        "flight": task(compensate="CancelFlightFunction"),
        "hotel": task(
            "flight",
            compensate={
                "function": "CancelHotelFunction",
                "input": {"booking": "${steps.hotel.output.id}"},
                "retry": {"max_attempts": 3, "interval": "1s", "jitter": "none"},
            },
        ),
        "note": task("hotel"),  # nothing to undo
        "car": task("note", **book_car),
    }


def booked(run: EngineDriver) -> None:
    run.succeed("flight", {"id": "F1"})
    run.advance(timedelta(seconds=1))
    run.succeed("hotel", {"id": "H7"})
    run.advance(timedelta(seconds=1))
    run.succeed("note")


def test_a_failure_undoes_what_succeeded_newest_first_then_fails_the_run() -> None:
    run = EngineDriver(trip())
    booked(run)
    run.fail("car", "NoCarsLeft", message="none in Lisbon")
    assert run.run.status == "running"  # not ended yet: undoing first
    assert run.status("hotel:compensate") == "running"
    assert run.dispatches("hotel:compensate")[0].input == {"booking": "H7"}
    assert run.dispatches("hotel:compensate")[0].function == "CancelHotelFunction"
    assert run.status("flight:compensate") is None  # one at a time
    run.succeed("hotel:compensate")
    assert run.status("flight:compensate") == "running"
    flight = run.dispatches("flight:compensate")[0]
    assert flight.input == {"input": None, "output": {"id": "F1"}}  # the default input
    run.succeed("flight:compensate")
    assert run.run.status == "failed"
    error = run.run.error
    assert error["type"] == "NoCarsLeft" and error["step"] == "car"
    assert error["compensation"]["status"] == "succeeded"
    assert set(error["compensation"]["steps"]) == {"hotel", "flight"}
    assert "run_compensating" in run.types() and "compensation_ended" in run.types()


def test_a_compensation_is_retried_and_a_failed_one_does_not_stop_the_others() -> None:
    run = EngineDriver(trip())
    booked(run)
    run.fail("car", "NoCarsLeft")
    run.fail("hotel:compensate", "HotelApiDown")
    assert run.status("hotel:compensate") == "retrying"  # its own policy: 3 attempts
    run.fire("hotel:compensate")
    run.fail("hotel:compensate", "HotelApiDown")
    run.fire("hotel:compensate")
    run.fail("hotel:compensate", "HotelApiDown")
    assert run.status("hotel:compensate") == "failed"
    assert run.status("flight:compensate") == "running"
    run.succeed("flight:compensate")
    assert run.run.status == "failed"
    summary = run.run.error["compensation"]
    assert summary["status"] == "failed"
    assert summary["steps"]["hotel"]["error"]["type"] == "HotelApiDown"
    assert summary["steps"]["flight"]["status"] == "succeeded"


def test_a_cancel_undoes_too_and_the_run_ends_cancelled() -> None:
    run = EngineDriver(trip())
    run.succeed("flight", {"id": "F1"})
    run.send(CancelRequested("trip called off", by="ops@x"))
    assert run.status("hotel") == "cancelled"  # what ran is cancelled first
    assert run.status("flight:compensate") == "running"
    run.succeed("flight:compensate")
    assert run.run.status == "cancelled"
    assert run.run.error["compensation"]["status"] == "succeeded"


def test_no_step_starts_while_the_run_undoes_its_steps() -> None:
    steps = trip()
    steps["side"] = task("flight")  # runs beside hotel
    run = EngineDriver(steps)
    run.succeed("flight", {"id": "F1"})
    run.fail("hotel", "Overbooked")  # fails the run: side is cancelled, flight undone
    assert run.status("side") == "cancelled"
    assert run.status("flight:compensate") == "running"
    run.succeed("flight:compensate")
    assert run.run.status == "failed" and run.status("note") is None


def test_a_run_that_succeeds_undoes_nothing_and_one_with_nothing_done_ends_at_once() -> None:
    run = EngineDriver(trip())
    booked(run)
    run.succeed("car")
    assert run.run.status == "succeeded" and run.run.error is None
    assert not run.dispatches("flight:compensate")
    run = EngineDriver(trip())
    run.fail("flight", "SoldOut")
    assert run.run.status == "failed" and "compensation" not in run.run.error


def test_a_cancel_while_undoing_ends_the_run_at_once() -> None:
    run = EngineDriver(trip())
    booked(run)
    run.fail("car", "NoCarsLeft")
    run.send(CancelRequested("stop"))
    assert run.run.status == "cancelled"
    assert run.status("hotel:compensate") == "cancelled"


def test_a_run_that_times_out_still_undoes_what_succeeded() -> None:
    run = EngineDriver(workflow(trip(), timeout="1h"))
    run.succeed("flight", {"id": "F1"})
    run.advance(timedelta(hours=1))
    run.fire(None)  # the run's timeout
    assert run.run.status == "running" and run.status("flight:compensate") == "running"
    assert run.run.due_at is None  # the timeout is spent: nothing cuts the undoing short
    run.succeed("flight:compensate")
    assert run.run.status == "timed_out"
    assert run.run.error["compensation"]["status"] == "succeeded"


def test_cancelling_many_open_steps_goes_on_in_continues_and_keeps_the_compensation() -> None:
    from stepwell.engine.commands import ContinueRun
    from stepwell.engine.events import Continue

    steps = trip()
    for i in range(50):  # fifty steps running beside hotel
        steps[f"side{i}"] = task("flight")
    run = EngineDriver(steps)
    run.succeed("flight", {"id": "F1"})
    run.fail("hotel", "Overbooked")
    assert any(isinstance(c, ContinueRun) for d in run.decisions for c in d.commands)
    open_sides = [f"side{i}" for i in range(50) if run.status(f"side{i}") == "running"]
    assert open_sides  # a bounded number per decision
    run.send(Continue())
    assert all(run.status(f"side{i}") == "cancelled" for i in range(50))
    assert run.status("flight:compensate") == "running"  # the undoing is not cancelled
