"""`stepwell show`'s summary of a run's steps, as a person reads it: a waiting step says until
when it waits (what `stepwell run` says too), and a code-first run's replay step (`$workflow`,
Stepwell's machinery) is not a row, as on the dashboard."""

from __future__ import annotations

from typing import Any

from stepwell.cli.show import summary


def _step(key: str, status: str, **more: Any) -> dict[str, Any]:
    return {"key": key, "status": status, "attempt": 1, "error": None, **more}


def test_waiting_steps_say_until_when_and_the_replay_is_not_a_row() -> None:
    run = {"id": "r1", "workflow": "signup", "version": "v1", "status": "waiting"}
    steps = [
        _step("$workflow", "waiting", waiting_for="steps"),
        _step("admin_ok", "waiting", waiting_for="approval", due_at="2026-12-08T00:12:34.2Z"),
        _step("verified", "waiting", waiting_for="event", due_at=None),
    ]
    rows = summary({"run": run, "steps": steps}).splitlines()[-3:]
    assert rows == [
        "STEP      STATUS   ATTEMPT  NOTE",
        "admin_ok  waiting  1        waiting for approval until 2026-12-08 00:12:34",
        "verified  waiting  1        waiting for event",
    ]
