"""stepwell dev prints the functions' Powertools log lines as short human lines by default."""

from __future__ import annotations

from stepwell.local.logs import human_line


def test_a_powertools_line_reads_as_one_human_line() -> None:
    log = {
        "level": "INFO",
        "location": "handler:27",
        "message": "step attempt",
        "timestamp": "2026-12-01 22:10:03,123+0000",
        "service": "stepwell",
        "function_name": "stepwell-local-ChargeCard",
        "cold_start": False,
        "run_id": "r-1",
        "step_id": "charge",
        "attempt": 2,
        "order": "o-9",
    }
    assert human_line(log) == (
        "22:10:03,123 INFO  ChargeCard  step attempt  run_id=r-1 step_id=charge attempt=2 order=o-9"
    )


def test_an_exception_follows_its_line() -> None:
    log = {"level": "ERROR", "message": "boom", "exception": "Traceback ...\nValueError: x"}
    assert human_line(log).endswith("boom\nTraceback ...\nValueError: x")
