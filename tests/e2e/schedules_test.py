"""The template's schedules fire on the stack's clock: the sweep every minute, the daily trigger."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from e2e_helpers import completed

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
START = datetime(2026, 3, 2, 5, 58, 30, tzinfo=UTC)


@pytest.fixture
def stack() -> Iterator[LocalStack]:
    """Virtual time from 05:58:30 UTC with every schedule on.

    The daily trigger's input names a webhook under example.com, a name reserved never to be
    anyone's (RFC 2606): the http step's lookup finds no address and no request leaves.
    """
    with LocalStack(ROOT, virtual_time=True, start_time=START, schedules=True) as started:
        yield started


def invoked_by_schedule(stack: LocalStack, function: str) -> list[str]:
    assert stack.emulator is not None
    return [
        record.source
        for record in list(stack.emulator.history)
        if record.function == function and record.source.startswith("schedule ")
    ]


def test_the_sweep_runs_every_minute(stack: LocalStack) -> None:
    assert invoked_by_schedule(stack, "stepwell-local-Stepwell-scheduler") == []
    stack.advance(timedelta(seconds=61))
    assert stack.run_until(
        lambda: len(invoked_by_schedule(stack, "stepwell-local-Stepwell-scheduler")) == 1
    )
    stack.advance(timedelta(minutes=1))
    assert stack.run_until(
        lambda: len(invoked_by_schedule(stack, "stepwell-local-Stepwell-scheduler")) == 2
    )


def test_the_daily_trigger_starts_the_pipeline_at_six(stack: LocalStack) -> None:
    stack.advance(to=datetime(2026, 3, 2, 6, 0, tzinfo=UTC))
    started = stack.wait_for_event(
        lambda e: e["detail-type"] == "run.started" and e["detail"]["workflow"] == "data-pipeline"
    )
    assert started is not None
    assert started["time"].startswith("2026-03-02T06:00:")  # the trigger ran at six
    run_id = started["detail"]["run_id"]
    completed(stack, run_id)
    run = Client(stack.url).run(run_id)["run"]
    assert run["labels"] == {"trigger": "schedule"}
    assert run["input"] == {
        "source": "s3://example-data/daily/",
        "webhook": "https://hooks.example.com/pipeline",
    }
