"""Throttle, debounce and singleton workflows on the local stack under virtual time, started
through the HTTP API: what each does is read back from the recorded runs."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest
from conftest import local_stack, workflows_folder

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

WORKFLOWS = {
    "throttled-hold": """\
name: throttled-hold
throttle: {key: "${input.customer}", limit: 5, period: 1m}
steps:
  hold: {type: delay, duration: 10s}
""",
    "debounced-index": """\
name: debounced-index
debounce: {key: "${input.document}", period: 30s}
steps:
  index: {type: delay, duration: 1s}
""",
    "single-skip": """\
name: single-skip
singleton: {key: "${input.account}", mode: skip}
steps:
  hold: {type: delay, duration: 10m}
""",
    "single-newest": """\
name: single-newest
singleton: {key: "${input.account}", mode: cancel_previous}
steps:
  hold: {type: delay, duration: 10m}
""",
}


@pytest.fixture(scope="module")
def flows(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    for name, text in WORKFLOWS.items():
        Path(folder, f"{name}.yaml").write_text(text)
    with local_stack(folder) as started:
        yield started


def ended(stack: LocalStack, ids: set[str]) -> int:
    return sum(e["detail"]["run_id"] in ids for e in stack.events("run.completed"))


def test_30_throttled_starts_start_at_most_5_in_any_minute_and_none_is_dropped(
    flows: LocalStack,
) -> None:
    api = Client(flows.url)
    with flows.hold():
        ids = [
            api.start_run("throttled-hold", {"customer": "acme"}).body["run_id"] for _ in range(30)
        ]
    assert flows.run_until(lambda: ended(flows, set(ids)) >= 30, 300)
    runs = [api.run(i)["run"] for i in ids]
    assert {r["status"] for r in runs} == {"succeeded"}
    starts = sorted(datetime.fromisoformat(r["started_at"]) for r in runs)
    assert min(b - a for a, b in zip(starts, starts[5:], strict=False)) >= timedelta(minutes=1)


def test_20_debounced_starts_within_10s_make_one_run_with_the_last_input(
    flows: LocalStack,
) -> None:
    api = Client(flows.url)
    with flows.hold():
        ids = {
            api.start_run("debounced-index", {"document": "d1", "n": n}).body["run_id"]
            for n in range(20)
        }
    assert len(ids) == 1
    [run_id] = ids
    assert flows.run_until(lambda: ended(flows, ids) >= 1, 120)
    shown = api.run(run_id)
    assert shown["run"]["status"] == "succeeded" and shown["run"]["input"]["n"] == 19
    timeline = api.get(f"/runs/{run_id}/timeline?limit=100").body["entries"]
    [last] = [e for e in timeline if e["type"] == "run_debounced"][-1:]
    started = datetime.fromisoformat(shown["run"]["started_at"])
    assert started - datetime.fromisoformat(last["at"]) >= timedelta(seconds=30)
    listed = api.get("/runs?workflow=debounced-index&limit=100").body["runs"]
    assert [r["id"] for r in listed] == [run_id]


def test_a_singleton_skips_or_replaces_as_its_mode_says(flows: LocalStack) -> None:
    api = Client(flows.url)
    with flows.hold():
        skip = [api.start_run("single-skip", {"account": "a"}).body["run_id"] for _ in range(3)]
        newest = [api.start_run("single-newest", {"account": "a"}).body["run_id"] for _ in range(3)]
        assert flows.run_until(
            lambda: (
                [api.run(i)["run"]["status"] for i in newest]
                == ["cancelled", "cancelled", "waiting"]
            ),
            60,
        )
        assert [api.run(i)["run"]["status"] for i in skip] == ["waiting", "cancelled", "cancelled"]
        skipped = api.run(skip[1])["run"]["error"]
        assert skipped["type"] == "Skipped" and skip[0] in skipped["message"]
    for a, b in itertools.pairwise(newest):
        assert b in api.run(a)["run"]["error"]["message"]
