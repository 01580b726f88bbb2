"""``stepwell dev`` reads groups.yaml again when it changes: the waits that open after the edit
take its people (the functions' cached copy is forgotten), the waits already open keep theirs."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from conftest import groups_stack
from e2e_helpers import approval_requested, steps_of

from stepwell.local.client import Client
from stepwell.local.groups import PARAMETER
from stepwell.local.stack import LocalStack

WORKFLOW = """\
name: group-approval
steps:
  approve:
    type: approval
    approvers: {group: finance}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    with groups_stack(
        tmp_path_factory,
        "finance: [ann@example.com]\n",
        WORKFLOW,
        on_reload=lambda *_: None,  # as `stepwell dev`: the files are watched
    ) as started:
        yield started


def _asked(stack: LocalStack, api: Client) -> tuple[str, list[str]]:
    run_id = api.start_run("group-approval", {}).body["run_id"]
    return run_id, sorted(link["approver"] for link in approval_requested(stack, run_id)["links"])


def test_an_edited_groups_file_gives_the_next_waits_its_people(stack: LocalStack) -> None:
    api = Client(stack.url)
    with stack.hold():
        first, people = _asked(stack, api)
        assert people == ["ann@example.com"]
        path = Path(stack.project) / "groups.yaml"
        aside = path.with_name(".groups.yaml.tmp")
        aside.write_text("finance: [bob@example.com, cy@example.com]\n", encoding="utf-8")
        os.replace(aside, path)
        ssm = boto3.client("ssm", region_name="us-east-1")
        assert stack.run_until(
            lambda: "bob" in ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"], 30
        )
        # The functions forget their copy just after the parameter changes: a run started in
        # between may still get Ann; the next ones get the file's new people.
        asked: list[tuple[str, list[str]]] = []
        assert stack.run_until(lambda: asked.append(_asked(stack, api)) or asked[-1][1] != people)
        second, people = asked[-1]
        assert people == ["bob@example.com", "cy@example.com"]
    # The wait opened before the edit keeps the people it was given.
    assert steps_of(api.run(first))["approve"]["input"]["approvers"] == ["ann@example.com"]
    assert steps_of(api.run(second))["approve"]["input"]["groups"] == {
        "finance": ["bob@example.com", "cy@example.com"]
    }
