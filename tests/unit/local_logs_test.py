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


def test_the_log_book_keeps_the_newest_attempts_and_a_bounded_number_of_lines() -> None:
    from datetime import UTC, datetime

    from stepwell.local.logs import LogBook

    book = LogBook(lambda: datetime(2026, 1, 1, tzinfo=UTC))
    book.ATTEMPTS, book.LINES = 2, 3
    for n in range(5):
        book.add(("r", "a", 1), {"level": "INFO", "message": f"line {n}", "function_name": "f"})
    book.add(("r", "b", 1), {"level": "ERROR", "message": "boom", "exception": "Traceback"})
    lines = book.attempt("r", "a", 1, None, None).lines
    assert [line["message"] for line in lines or []] == ["line 0", "line 1", "line 2"]
    assert book.attempt("r", "b", 1, None, None).lines == [
        {
            "at": "2026-01-01T00:00:00+00:00",
            "level": "ERROR",
            "message": "boom\nTraceback",
            "source": "",
        }
    ]
    book.add(("r", "c", 1), {"message": "third attempt"})
    assert book.attempt("r", "a", 1, None, None).lines == []  # the oldest attempt went
