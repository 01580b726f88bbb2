"""``stepwell dev`` reads workflow files again when they change: new runs take the new version,
runs in flight keep theirs, and a file broken by the edit breaks only itself."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import finished

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

GREET = """\
name: greet
description: {description}
steps:
  wait:
    type: callback
    timeout: 1h
"""


class Reloads:
    """What the stack reported after each reload."""

    def __init__(self) -> None:
        self.seen: list[tuple[set[str], list[str]]] = []
        self.changed = threading.Event()

    def __call__(self, workflows: Mapping[str, Any], broken: list[str]) -> None:
        self.seen.append((set(workflows), broken))
        self.changed.set()

    def next(self) -> tuple[set[str], list[str]]:
        assert self.changed.wait(10), "the stack did not read the changed files again"
        self.changed.clear()
        return self.seen[-1]


def callback_url(stack: LocalStack, run_id: str) -> str:
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id
    )
    assert event is not None
    url: str = event["detail"]["url"]
    return url


def test_edited_files_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalStack, "WATCH_EVERY_S", 0.05)
    folder = workflows_folder(tmp_path)
    greet = folder / "greet.yaml"
    reloads = Reloads()
    with local_stack(folder, on_reload=reloads) as stack:
        api = Client(stack.url)
        assert api.start_run("greet", {}).status == 404

        greet.write_text(GREET.format(description="the first version"))
        names, broken = reloads.next()
        assert "greet" in names and broken == []
        with stack.hold():
            first = api.start_run("greet", {}).body
            first_url = callback_url(stack, first["run_id"])

            greet.write_text(GREET.format(description="the second version"))
            reloads.next()
            second = api.start_run("greet", {}).body
            assert second["version"] != first["version"]  # new runs take the new version
            second_url = callback_url(stack, second["run_id"])
            for url in (first_url, second_url):
                answer = {"status": "success", "output": {"ok": True}}
                assert api.request("POST", url, json_body=answer).status == 200
        # The run in flight kept the version it started with, to its end.
        done = finished(stack, api, first["run_id"])
        assert done["run"]["status"] == "succeeded" and done["run"]["version"] == first["version"]
        assert finished(stack, api, second["run_id"])["run"]["status"] == "succeeded"

        greet.write_text("name: greet\nsteps:\n  pause: {type: delay}\n")  # no duration
        names, broken = reloads.next()
        assert "greet" not in names and any("greet" in line for line in broken)
        listing = api.get("/workflows").body
        assert "greet" in {b["name"] for b in listing["broken"]}
        refused = api.start_run("greet", {})
        assert refused.status == 422 and "duration" in refused.text
        assert api.start_run("await-callback", {}).status == 201  # the others still run
