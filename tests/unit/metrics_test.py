"""Run and step metrics are read off committed decisions' timelines."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.state import RunState, StepState
from stepwell.runtime.metrics import CountingMetrics, Measure, measures_of

T0 = datetime(2026, 1, 1, tzinfo=UTC)


def entry(type_: str, step: str | None = None, at: datetime = T0, **data) -> TimelineEntry:
    return TimelineEntry(at, type_, step, None, "", data)


def test_a_start_counts_the_run_and_its_first_dispatches() -> None:
    decision = Decision(
        timeline=[
            entry("run_started"),
            entry("step_dispatched", "a"),
            entry("step_dispatched", "b"),
        ]
    )
    names = [m.name for m in measures_of(decision)]
    assert names == ["RunsStarted", "StepsDispatched", "StepsDispatched"]


def test_a_result_gives_the_attempt_duration_and_a_run_end_its_duration() -> None:
    run = RunState("r", "w", "v", "succeeded", None, T0, started_at=T0)
    step = StepState(key="a", attempt_started_at=T0 + timedelta(seconds=1))
    end = T0 + timedelta(seconds=3)
    decision = Decision(
        run=run,
        steps={"a": step},
        timeline=[
            entry("step_completed", "a", end),
            entry("run_status", at=end, status="succeeded"),
        ],
    )
    assert measures_of(decision) == [
        Measure("StepsSucceeded", "Count", 1),
        Measure("StepDuration", "Milliseconds", 2000.0),
        Measure("RunsCompleted", "Count", 1),
        Measure("RunDuration", "Milliseconds", 3000.0),
    ]


def test_failures_retries_and_lost_attempts_are_counted_apart() -> None:
    decision = Decision(
        timeline=[
            entry("step_retrying", "a"),
            entry("attempt_lost", "b"),
            entry("step_failed", "c"),  # no record in the decision: no duration
            entry("run_status", status="failed"),
            entry("run_status", status="timed_out"),
            entry("run_status", status="cancelled"),
            entry("run_status", status="running"),  # a redrive reopening the run
        ]
    )
    names = [m.name for m in measures_of(decision)]
    assert names == [
        "StepsRetried",
        "AttemptsLost",
        "StepsFailed",
        "RunsFailed",
        "RunsFailed",
        "RunsCancelled",
    ]


def test_ignored_results_and_notes_are_not_counted() -> None:
    decision = Decision(timeline=[entry("stale_result_ignored", "a"), entry("heartbeat", "b")])
    assert measures_of(decision) == []


def test_counting_metrics_sum_counts_and_keep_values() -> None:
    metrics = CountingMetrics()
    metrics.add("RunsStarted", "Count", 2)
    metrics.add("StepDuration", "Milliseconds", 15.0)
    metrics.add("StepDuration", "Milliseconds", 5.0)
    assert metrics.counts["RunsStarted"] == 2 and metrics.counts["StepDuration"] == 2
    assert metrics.values["StepDuration"] == [15.0, 5.0]
