"""What ``make bench`` judges and prints of W1 against its storage floor
(``benchmarks/report.py``): the ceiling beside the 0.35 target."""

from __future__ import annotations

from typing import Any

from report import ceiling, ceiling_lines, targets


def _w1(steps_per_cpu_s: float, requests_ms: float | None) -> dict[str, Any]:
    w1: dict[str, Any] = {
        "steps_per_s": 100.0,
        "steps_per_cpu_s": steps_per_cpu_s,
        "floor": {"steps_per_s": 500.0, "steps_per_cpu_s": 800.0},  # 1.25 ms a step
    }
    if requests_ms is not None:
        w1["requests_alone"] = {"W1 step (3 requests)": requests_ms, "floor step (2 requests)": 1.3}
    return w1


def _results(w1: dict[str, Any]) -> dict[str, Any]:
    return {
        "date": "2026-12-07 00:00 UTC",
        "commit": "abc1234",
        "machine": {"cpus": 2, "python": "3.11.7"},
        "workloads": {"W1": w1},
    }


def test_the_ceiling_is_the_floors_step_over_w1s_requests_sent_bare() -> None:
    bare = ceiling(_w1(steps_per_cpu_s=160.0, requests_ms=3.5))  # 6.25 ms a step
    assert bare == {
        "step_ms": 6.25,
        "requests_ms": 3.5,
        "floor_ms": 1.25,
        "overhead_ms": 2.75,
        "ceiling_ratio": 0.357,
        "allowed_overhead_ms": 0.071,  # 1.25 / 0.35 - 3.5
    }


def test_no_ceiling_without_the_requests_measured() -> None:
    assert ceiling(_w1(steps_per_cpu_s=160.0, requests_ms=None)) is None
    assert not [t for t in targets(_results(_w1(160.0, None))) if "overhead" in t["target"]]


def test_the_overhead_row_keeps_the_floor_and_fails_past_what_the_target_leaves() -> None:
    found = {t["target"]: t for t in targets(_results(_w1(160.0, 3.5)))}
    ratio = found["W1: steps/s >= 0.35x the storage floor's (same process)"]
    assert ratio["measured"] == 0.2 and ratio["met"] is False  # the floor as it was: 100 / 500
    (overhead,) = [t for k, t in found.items() if k.startswith("W1: overhead beyond")]
    assert overhead["measured"] == 2.75 and overhead["met"] is False
    assert "would be 0.357" in overhead["note"] and "leaves 0.071 ms" in overhead["note"]
    # A step whose rest costs less than the target leaves passes: 1.25 / 0.35 = 3.571 ms.
    cheap = {t["target"]: t for t in targets(_results(_w1(1000 / 3.55, 3.5)))}
    assert [t["met"] for k, t in cheap.items() if k.startswith("W1: overhead beyond")] == [True]
    # Requests that cost more than the target allows a whole step: out of reach, said so.
    dear = targets(_results(_w1(100.0, 4.0)))
    (note,) = [t["note"] for t in dear if t["target"].startswith("W1: overhead beyond")]
    assert "out of reach whatever the rest costs (the requests alone are 0.429 ms over it)" in note


def test_make_bench_prints_the_ceiling_under_the_floor_table() -> None:
    assert ceiling_lines(_w1(160.0, None)) == []
    printed = "\n".join(ceiling_lines(_w1(160.0, 3.5)))
    assert "W1/floor by CPU time is at most 0.357" in printed
    assert "costs 2.75 ms of its 6.25 ms" in printed
