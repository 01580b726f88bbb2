"""Runs of a workflow with ``concurrency`` on the local stack under virtual time: 200 runs over
10 keys with a limit of 2, each holding its slot while a 10-minute delay passes. Checked from
the recorded start and end of every run: never more than 2 runs of a key at once, all succeed,
within a key the queued ones start by priority then in start order, and every key's slots are
free at the end. And a step-level limit: runs whose step has ``concurrency: {key, limit: 2}``,
each attempt (a child run holding it for 10 minutes) waiting for a slot of its key, read back
from every run's steps and timeline."""

from __future__ import annotations

import random
from collections import defaultdict
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import steps_of, timeline_types

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
STEP_LIMITED = {
    "charge-by-merchant": """\
name: charge-by-merchant
steps:
  charge:
    type: workflow
    workflow: hold-charge
    input: {merchant: "${input.merchant}"}
    concurrency: {key: "${input.merchant}", limit: 2}
""",
    "hold-charge": """\
name: hold-charge
steps:
  hold: {type: delay, duration: 10m}
""",
}


@pytest.fixture(scope="module")
def limited(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    Path(folder, "limited-hold.yaml").write_text(LIMITED)
    for name, text in STEP_LIMITED.items():
        Path(folder, f"{name}.yaml").write_text(text)
    with local_stack(folder) as started:
        yield started


def peak(spans: list[tuple[datetime, datetime]]) -> int:
    """The most spans open at one instant (at an instant one ends and the next begins, the
    slot changed hands)."""
    moments = sorted([(begin, 1) for begin, _ in spans] + [(end, -1) for _, end in spans])
    holding = most = 0
    for _, change in moments:
        holding += change
        most = max(most, holding)
    return most


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
        assert peak([(begin, end) for begin, end, _, _ in held]) == LIMIT, key
        # The first two took the free slots as they came; the rest start by priority, then
        # in start order.
        waiting = sorted(held, key=lambda s: int(s[3]))[LIMIT:]
        expected = sorted(waiting, key=lambda s: (-s[2], int(s[3])))
        begins = [b for b, _, _, _ in expected]
        assert begins == sorted(begins), key
        slots = store.slots(f"limited-hold#{key}")
        assert slots.held == () and slots.head is None


def test_runs_of_a_step_limited_to_2_per_key_never_run_more_than_2_attempts_at_once(
    limited: LocalStack,
) -> None:
    api = Client(limited.url)
    merchants = ["acme"] * 6 + ["bolt"] * 2
    with limited.hold():  # every attempt asks for its slot before the first hold can end
        started = [
            (api.start_run("charge-by-merchant", {"merchant": m}).body["run_id"], m)
            for m in merchants
        ]
    ids = {run_id for run_id, _ in started}

    def ended() -> int:
        return sum(e["detail"]["run_id"] in ids for e in limited.events("run.completed"))

    assert limited.run_until(lambda: ended() >= len(ids), 300)
    spans: dict[str, list[tuple[datetime, datetime]]] = defaultdict(list)
    for run_id, merchant in started:
        detail = api.run(run_id)
        assert detail["run"]["status"] == "succeeded", detail["run"]
        charge = steps_of(detail)["charge"]
        assert (charge["attempt"], charge["output"]) == (1, {"hold": {"merchant": merchant}})
        begin, end = charge["attempt_started_at"], charge["ended_at"]
        spans[merchant].append((datetime.fromisoformat(begin), datetime.fromisoformat(end)))
    # Two at a time: acme's six attempts in three rounds of 10 minutes, bolt's two at once.
    assert {merchant: peak(held) for merchant, held in spans.items()} == {"acme": 2, "bolt": 2}
    assert all("step_queued" in timeline_types(api, run_id) for run_id in ids)
    acme = sorted(spans["acme"])
    assert acme[-1][0] - acme[0][0] >= timedelta(minutes=20)
    store = limited._runtime_for(limited.functions[0]).store
    for merchant in spans:
        slots = store.slots(f"charge-by-merchant/charge#{merchant}")
        assert slots.held == () and slots.head is None
