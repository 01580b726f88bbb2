"""Runs with a label: labels are not indexed, so a label filter reads the listing's pages and
keeps the runs that carry it."""

from __future__ import annotations

from collections.abc import Callable

from stepwell.engine.state import RunState
from stepwell.store.port import Page

MAX_LABEL_PAGES = 10
"""Pages a label filter reads at most before it answers (with a cursor to read on)."""


def with_label(
    read: Callable[[str | None], Page], cursor: str | None, label: str, limit: int
) -> Page:
    """The runs carrying ``label`` (``key=value``, or ``key`` for any value), read page by page
    from ``read(cursor)`` until ``limit`` are found or :data:`MAX_LABEL_PAGES` were read."""
    key, _, value = label.partition("=")
    found: list[RunState] = []
    for _ in range(MAX_LABEL_PAGES):
        page = read(cursor)
        found += [
            run
            for run in page.items
            if key in run.labels and (not value or run.labels[key] == value)
        ]
        cursor = page.cursor
        if cursor is None or len(found) >= limit:
            break
    return Page(found, cursor)
