"""A broken workflow file breaks only itself: the local stack starts, says what is wrong with
it, lists it as broken, refuses its runs with its problems (422), and runs the others."""

from __future__ import annotations

import shutil
from collections.abc import Iterator

import pytest
from conftest import HERE, local_stack, workflows_folder
from e2e_helpers import SMALL_ORDER, finished

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


@pytest.fixture(scope="module")
def with_broken(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    shutil.copy(HERE.parent / "definitions" / "broken" / "cycle.yaml", folder / "cycle.yaml")
    with local_stack(folder) as started:
        yield started


def test_the_stack_starts_and_says_which_file_is_broken(with_broken: LocalStack) -> None:
    (warning,) = [w for w in with_broken.warnings if "'cycle'" in w]
    assert "does not run until fixed" in warning and "cycle: a -> b -> a" in warning
    listed = Client(with_broken.url).get("/workflows").body
    (broken,) = listed["broken"]
    assert broken["name"] == "cycle" and "cycle.yaml:" in broken["problems"][0]
    assert "order-fulfilment" in {w["name"] for w in listed["workflows"]}


def test_a_run_of_the_broken_workflow_is_refused_with_its_problems(with_broken: LocalStack) -> None:
    refused = Client(with_broken.url).start_run("cycle", {})
    assert refused.status == 422, refused.text
    assert (
        "cannot run" in refused.body["message"] and "stepwell validate" in refused.body["message"]
    )
    assert "cycle: a -> b -> a" in refused.body["details"][0]["message"]


def test_the_other_workflows_run(with_broken: LocalStack) -> None:
    api = Client(with_broken.url)
    started = api.start_run("order-fulfilment", SMALL_ORDER)
    assert started.status == 201
    assert finished(with_broken, api, started.body["run_id"])["run"]["status"] == "succeeded"
