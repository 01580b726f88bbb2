"""``ctx.saga()``: compensations registered as the code goes run newest first when an
exception leaves the block, each a durable task, and the exception goes on."""

from __future__ import annotations

from typing import Any

from code_fake_engine import Fail, FakeRun

from stepwell.code.context import Context
from stepwell.code.protocol import Issue


def booking(ctx: Context, _: Any) -> dict[str, Any]:
    with ctx.saga() as saga:
        flight = ctx.task("flight", function="BookFlightFunction")
        saga.add("cancel_flight", function="CancelFlightFunction", input=flight)
        hotel = ctx.task("hotel", function="BookHotelFunction")
        saga.add(
            "cancel_hotel", function="CancelHotelFunction", input=hotel, retry={"max_attempts": 4}
        )
        saga.add_step("note", lambda: {"noted": True})
        car = ctx.task("car", function="BookCarFunction")
    return {"flight": flight, "hotel": hotel, "car": car}


def answers(fail: set[str]) -> Any:
    def answer(issue: Issue) -> Any:
        if issue.name in fail:
            return Fail("Unavailable", f"no {issue.name}")
        return {"id": issue.name}

    return answer


def test_a_failure_runs_the_compensations_newest_first_and_fails_the_run() -> None:
    run = FakeRun(booking)
    result = run.drive(answers({"car"}))
    assert result.status == "failed" and result.error is not None
    assert "car" in result.error["message"] and "no car" in result.error["message"]
    issued = list(run.issues)
    assert issued == ["flight", "hotel", "car", "cancel_hotel", "cancel_flight"]
    assert run.issues["cancel_hotel"].input == {"id": "hotel"}
    assert run.issues["cancel_hotel"].spec["retry"]["max_attempts"] == 4
    assert run.journal["note"].output == {"noted": True}  # the inline undo ran (and recorded)


def test_a_failed_compensation_does_not_stop_the_others() -> None:
    run = FakeRun(booking)
    result = run.drive(answers({"car", "cancel_hotel"}))
    assert result.status == "failed"
    assert list(run.issues)[-2:] == ["cancel_hotel", "cancel_flight"]


def test_success_undoes_nothing() -> None:
    run = FakeRun(booking)
    result = run.drive(answers(set()))
    assert result.status == "completed", result
    assert "cancel_flight" not in run.issues and "note" not in run.journal
