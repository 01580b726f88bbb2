"""``stepwell show``: a run and its steps rendered for a person."""

from __future__ import annotations

from stepwell.cli.show import summary


def detail(error: dict[str, object]) -> dict[str, object]:
    run = {"id": "r1", "workflow": "w", "version": "v1", "status": "failed", "error": error}
    step = {"key": "$workflow", "status": "failed", "attempt": 1, "error": error}
    return {"run": run, "steps": [step]}


def test_a_named_failure_shows_its_name_and_message() -> None:
    shown = summary(detail({"type": "OrderRejected", "message": "no stock"}))
    assert "error     OrderRejected: no stock" in shown


def test_a_failure_with_no_name_says_so_rather_than_none() -> None:
    shown = summary(detail({"type": None, "message": "gave up"}))
    assert "error     no error name: gave up" in shown
    assert "None" not in shown


def test_a_failure_with_neither_name_nor_cause_says_so() -> None:
    shown = summary(detail({"type": None, "message": ""}))
    assert "error     no error name, no cause" in shown
