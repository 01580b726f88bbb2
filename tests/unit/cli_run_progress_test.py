"""`stepwell run`'s progress: the steps of the run as the user wrote them. A code-first run's
replay step (`$workflow`) is Stepwell's machinery, as on the dashboard: its replays are not
lines of their own (the run's end says how the code ended)."""

from __future__ import annotations

from typing import Any

from rich.console import Console

from stepwell.cli.run import _print_changes, progress_table, step_rows

STARTED = "2026-12-07T00:00:00Z"


def _detail(*steps: dict[str, Any]) -> dict[str, Any]:
    run = {"id": "r1", "workflow": "onboarding", "status": "waiting", "started_at": STARTED}
    return {"run": run, "steps": list(steps)}


def _step(key: str, status: str, attempt: int, at: str | None) -> dict[str, Any]:
    return {"key": key, "status": status, "attempt": attempt, "started_at": at, "ended_at": None}


def test_a_code_first_runs_replays_are_not_progress_lines() -> None:
    console = Console(record=True, width=120)
    seen: dict[str, str] = {}
    for replay in (1, 2, 3):
        detail = _detail(
            {**_step("$workflow", "waiting", replay, None), "waiting_for": "steps"},
            _step("create", "running", 1, "2026-12-07T00:00:01Z"),
        )
        _print_changes(detail, seen, console)
    lines = console.export_text().splitlines()
    assert lines == ["t+      1.00s  create           running    try 1"]


def test_nor_rows_of_the_live_table() -> None:
    detail = _detail(_step("$workflow", "waiting", 4, None), _step("create", "running", 1, None))
    assert [row["key"] for row in step_rows(detail, [])] == ["create"]
    assert progress_table(detail, [], "t+1s").row_count == 1


def test_a_step_that_runs_no_function_says_no_try() -> None:
    console = Console(record=True, width=120)
    detail = _detail(_step("invite", "running", 0, "2026-12-07T00:00:02Z"))
    _print_changes(detail, {}, console)
    assert console.export_text().splitlines() == ["t+      2.00s  invite           running"]
