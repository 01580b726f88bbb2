"""Runs of a workflow with ``concurrency`` on the local stack under virtual time: 200 runs over
10 keys with a limit of 2, each holding its slot while a 10-minute delay passes. Checked from
the recorded start and end of every run: never more than 2 runs of a key at once, all succeed,
within a key the queued ones start by priority then in start order, and every key's slots are
free at the end."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path

import pytest
from conftest import local_stack, workflows_folder

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

LIMITED = """\
name: limited-hold
description: At most 2 runs per customer at once (tests of concurrency keys).
concurrency:
  key: "${input.customer}"
  limit: 2
priority: "${input.priority}"
steps:
  hold:
    type: delay
    duration: 10m
"""
RUNS, KEYS, LIMIT = 200, 10, 2


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    Path(folder, "limited-hold.yaml").write_text(LIMITED)
    with local_stack(folder) as started:
        yield started


def test_200_runs_over_10_keys_never_pass_the_limit_and_start_by_priority(
    limited: LocalStack,
) -> None:
    api = Client(limited.url)
    draw = random.Random(28)
    started: list[tuple[str, str, int]] = []  # run id, key, priority, in start order
    with limited.hold():  # every run is queued before the first delay can end
        for n in range(RUNS):
            key, priority = f"c{n % KEYS}", draw.randint(0, 3)
            reply = api.start_run("limited-hold", {"customer": key, "priority": priority})
            assert reply.status == 201, reply.body
            started.append((reply.body["run_id"], key, priority))
        queued = api.get("/runs?status=queued&workflow=limited-hold&limit=100").body["runs"]
        assert len(queued) == 100  # a page of the 180 waiting
    ids = {run_id for run_id, _, _ in started}

    def ended() -> int:
        return sum(e["detail"]["run_id"] in ids for e in limited.events("run.completed"))

    assert limited.run_until(lambda: ended() >= RUNS, 600)
    store = limited._runtime_for(limited.functions[0]).store
    runs = {i: store.get_run(i) for i in ids}
    assert {r.status for r in runs.values() if r is not None} == {"succeeded"}
    spans: dict[str, list[tuple[datetime, datetime, int, str]]] = defaultdict(list)
    for order, (run_id, key, priority) in enumerate(started):
        run = runs[run_id]
        assert run is not None and run.started_at is not None and run.ended_at is not None
        spans[key].append((run.started_at, run.ended_at, priority, str(order)))
    for key, held in spans.items():
        # At an instant a run ends and the next starts, the slot changed hands.
        moments = sorted(
            [(b, 1) for b, _, _, _ in held] + [(e, -1) for _, e, _, _ in held],
            key=lambda m: (m[0], m[1]),
        )
        holding = peak = 0
        for _, change in moments:
            holding += change
            peak = max(peak, holding)
        assert peak == LIMIT, key
        # The first two took the free slots as they came; the rest start by priority, then
        # in start order.
        waiting = sorted(held, key=lambda s: int(s[3]))[LIMIT:]
        expected = sorted(waiting, key=lambda s: (-s[2], int(s[3])))
        begins = [b for b, _, _, _ in expected]
        assert begins == sorted(begins), key
        slots = store.slots(f"limited-hold#{key}")
        assert slots.held == () and slots.head is None
