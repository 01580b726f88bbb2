"""Listings the indexes do not hold as one: every run (merged over the workflows' listings),
and runs with a label (a filter over the pages read).

Runs are indexed per workflow and per status. The dashboard's first view is every run, newest
first: it is the merge of each workflow's listing (one Query per workflow and listing shard),
and its cursor keeps, for each workflow, where its next run is. A workflow's runs never move to
another workflow's listing, so paging through the merge neither repeats nor misses a run.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from stepwell.engine.state import RunState
from stepwell.store.port import Page

Fetch = Callable[[str, str | None, int], Page]
"""``(workflow, cursor, limit) -> Page`` of that workflow's runs, newest first."""

MAX_LABEL_PAGES = 10
"""Pages a label filter reads at most before it answers (with a cursor to read on)."""


@dataclass
class _Head:
    workflow: str
    cursor: str | None
    skip: int
    page: Page

    @property
    def candidates(self) -> list[RunState]:
        return list(self.page.items[self.skip :])


def _order(run: RunState) -> tuple[Any, str]:
    return (run.created_at, run.id)


def merged(workflows: Sequence[str], fetch: Fetch, cursor: str | None, limit: int) -> Page:
    """Every workflow's runs, newest first. A page may hold fewer than ``limit`` runs (never
    none while runs are left): a run is only given once no unread run can be newer."""
    state: dict[str, Any] = (
        _decode(cursor) if cursor else {"n": limit, "w": {w: [None, 0] for w in workflows}}
    )
    size = int(state["n"])
    if not 1 <= size <= 100:
        raise ValueError("bad page size")
    heads = []
    for workflow, (at, skip) in dict(state["w"]).items():
        if not isinstance(skip, int) or skip < 0 or skip >= size:
            raise ValueError("bad position")
        heads.append(_Head(str(workflow), at, skip, fetch(str(workflow), at, size)))
    # Runs older than the oldest one read of a workflow with more unread may not be given yet.
    horizon = max(
        (_order(h.page.items[-1]) for h in heads if h.page.cursor and h.page.items), default=None
    )
    pool = sorted(
        ((run, head) for head in heads for run in head.candidates),
        key=lambda pair: _order(pair[0]),
        reverse=True,
    )
    taken = [pair for pair in pool if horizon is None or _order(pair[0]) >= horizon][:limit]
    for _, head in taken:
        head.skip += 1
    left: dict[str, list[Any]] = {}
    for head in heads:
        if head.skip < len(head.page.items):
            left[head.workflow] = [head.cursor, head.skip]
        elif head.page.cursor:
            left[head.workflow] = [head.page.cursor, 0]
    return Page([run for run, _ in taken], _encode({"n": size, "w": left}) if left else None)


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


def _encode(state: dict[str, Any]) -> str:
    raw = json.dumps({"merged": state}, separators=(",", ":")).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _decode(cursor: str) -> dict[str, Any]:
    raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
    state = json.loads(raw)["merged"]
    if not isinstance(state, dict) or not isinstance(state.get("w"), dict):
        raise ValueError("not a cursor of this listing")
    return state
