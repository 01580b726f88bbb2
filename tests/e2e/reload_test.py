"""``stepwell dev`` reads workflow files again when they change: new runs take the new version,
runs in flight keep theirs, and a file broken by the edit breaks only itself."""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import pytest
from conftest import HERE, local_stack, workflows_folder
from e2e_helpers import callback_url, finished

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.local.template import with_functions

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
        self.seen: list[tuple[dict[str, Any], list[str]]] = []
        self.changed = threading.Event()

    def __call__(self, workflows: Mapping[str, Any], broken: list[str]) -> None:
        self.seen.append((dict(workflows), broken))
        self.changed.set()

    def until(self, holds: Any) -> tuple[dict[str, Any], list[str]]:
        """The first reload from now on whose workflows and problems ``holds`` accepts (an
        edit may be seen in more than one poll)."""
        deadline = time.monotonic() + 30  # (a loaded machine polls late)
        while time.monotonic() < deadline:
            if self.seen and holds(*self.seen[-1]):
                return self.seen[-1]
            self.changed.wait(0.1)
            self.changed.clear()
        raise AssertionError(f"no reload as expected; the last: {self.seen[-1:]}")


def write(path: Path, text: str) -> None:
    """Replace the file at once, as an editor saving it does (never seen half written)."""
    aside = path.with_name(f".{path.name}.tmp")
    aside.write_text(text)
    os.replace(aside, path)


def test_edited_files_are_read_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(LocalStack, "WATCH_EVERY_S", 0.05)
    folder = workflows_folder(tmp_path)
    greet = folder / "greet.yaml"
    reloads = Reloads()
    with local_stack(folder, on_reload=reloads) as stack:
        api = Client(stack.url)
        assert api.start_run("greet", {}).status == 404

        write(greet, GREET.format(description="the first version"))
        _, broken = reloads.until(lambda names, broken: "greet" in names)
        assert broken == []
        with stack.hold():
            first = api.start_run("greet", {}).body
            first_url = callback_url(stack, first["run_id"])

            write(greet, GREET.format(description="the second version"))
            reloads.until(
                lambda names, broken: (
                    "greet" in names and names["greet"].description == "the second version"
                )
            )
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

        write(greet, "name: greet\nsteps:\n  pause: {type: delay}\n")  # no duration
        names, broken = reloads.until(lambda names, broken: any("greet" in b for b in broken))
        assert any("duration" in line for line in broken)
        # As a deploy whose publication fails: the version in force stays, the problem shows.
        assert names["greet"].description == "the second version"
        listing = api.get("/workflows").body
        (shown,) = [b for b in listing["broken"] if b["name"] == "greet"]
        assert "duration" in shown["problems"][0]
        kept = api.start_run("greet", {})
        assert kept.status == 201 and kept.body["version"] == second["version"]
        assert api.start_run("await-callback", {}).status == 201  # the others still run


def test_a_changed_template_says_to_restart(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(LocalStack, "WATCH_EVERY_S", 0.05)
    template = with_functions(HERE.parents[1], {}, tmp_path)
    notes: list[str] = []
    with local_stack(
        workflows_folder(tmp_path),
        template=template,
        on_reload=Reloads(),
        on_template_change=notes.append,
    ) as stack:
        write(template, template.read_text() + "\n")
        assert stack.run_until(lambda: bool(notes), 60)
    assert notes == [
        f"{template.name} changed: restart to pick up its functions and resources "
        "(workflow files are read again as they change)"
    ]
