"""Runs started ahead of time (``start_at``) on the local stack under virtual time: listed and
filtered as ``scheduled``, on the timeline with why, started at their time, and never started
when cancelled before it."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from typing import Any

import pytest
from conftest import ROOT
from e2e_helpers import finished

from stepwell.cli import main as cli
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

INPUT = json.loads((ROOT / "statemachines" / "examples" / "publish-report.json").read_text())


def _timeline(api: Client, run_id: str) -> list[dict[str, Any]]:
    reply = api.get(f"/runs/{run_id}/timeline")
    assert reply.ok, reply.body
    entries: list[dict[str, Any]] = reply.body["entries"]
    return entries


def test_a_run_two_days_ahead_starts_then_and_one_cancelled_before_never_starts(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():  # virtual time stands still while both are looked at
        at = stack.clock.now() + timedelta(days=2)
        kept = api.start_run("publish-report", INPUT, start_at=at.isoformat())
        dropped = api.start_run("publish-report", INPUT, start_at=at.isoformat())
        assert (kept.status, kept.body["status"]) == (201, "scheduled"), kept.body
        kept_id, dropped_id = kept.body["run_id"], dropped.body["run_id"]
        listed = api.get("/runs?status=scheduled&workflow=publish-report").body["runs"]
        assert {kept_id, dropped_id} <= {r["id"] for r in listed}
        [why] = [e for e in _timeline(api, kept_id) if e["type"] == "run_scheduled"]
        assert why["message"] == f"scheduled to start at {at.isoformat()}"
        cancelled = api.post(f"/runs/{dropped_id}/cancel", {"reason": "not needed"})
        assert cancelled.ok, cancelled.body
        assert api.run(dropped_id)["run"]["status"] == "cancelled"
    detail = finished(stack, api, kept_id)
    assert detail["run"]["status"] == "succeeded"
    assert datetime.fromisoformat(detail["run"]["started_at"]) >= at
    gone = api.run(dropped_id)
    assert gone["run"]["status"] == "cancelled" and gone["run"].get("started_at") is None
    assert gone["steps"] == []
    assert "run_started" not in [e["type"] for e in _timeline(api, dropped_id)]


def test_a_start_at_without_its_offset_or_a_year_ahead_is_a_422_naming_the_field(
    stack: LocalStack, api: Client
) -> None:
    naive = api.start_run("publish-report", INPUT, start_at="2030-01-01T09:00:00")
    assert naive.status == 422 and "start_at" in json.dumps(naive.body), naive.body
    far = (stack.clock.now() + timedelta(days=400)).isoformat()
    ahead = api.start_run("publish-report", INPUT, start_at=far)
    assert ahead.status == 422 and "365 days" in ahead.body["message"], ahead.body


def test_stepwell_start_at_schedules_the_run(
    stack: LocalStack, api: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with stack.hold():
        at = (stack.clock.now() + timedelta(hours=3)).isoformat()
        argv = ["start", "publish-report", "--input", json.dumps(INPUT), "--start-at", at]
        assert cli.main([*argv, "--api", stack.url]) == 0
        out = capsys.readouterr().out
        assert out.startswith("scheduled publish-report run "), out
        run_id = out.split()[3]
        assert api.run(run_id)["run"]["status"] == "scheduled"
        assert api.post(f"/runs/{run_id}/cancel", {}).ok
