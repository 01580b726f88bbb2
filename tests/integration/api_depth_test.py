"""Deeply nested JSON through the API's Lambda handler (moto): every body that brings a value
in answers a located 422 past the one limit, and a run's view never fails on a value."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from helpers.apigw import ApiWorld, api_workflows
from stepwell.api.callbacks import callback_token
from stepwell.intake import MAX_DEPTH

JSON = {"content-type": "application/json"}


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def nested(depth: int) -> str:
    """JSON text of ``depth`` nested arrays."""
    return "[" * depth + "]" * depth


def too_deep(response: Any, *where: str | int) -> None:
    assert response.status == 422, response.text
    body = response.json()
    assert f"nests deeper than {MAX_DEPTH} levels" in body["message"]
    assert "Traceback" not in response.text
    if where:
        assert body["details"][0]["loc"][: len(where)] == [str(w) for w in where]


@pytest.mark.parametrize("depth", [MAX_DEPTH + 1, 256, 900, 10_000])
def test_a_start_body_too_deep_is_a_located_422(world: ApiWorld, depth: int) -> None:
    body = '{"input": {"n": 1, "x": ' + nested(depth) + "}}"
    response = world.post("/workflows/simple/runs", body, headers=JSON)
    # Past what Python's parser reaches (10,000 levels) there is no path to tell.
    too_deep(response, *(["body", "input", "x"] if depth < 1000 else ["body"]))


def test_an_input_at_the_limit_starts_and_shows(world: ApiWorld) -> None:
    body = '{"input": {"n": 1, "x": ' + nested(MAX_DEPTH - 1) + "}}"
    started = world.post("/workflows/simple/runs", body, headers=JSON)
    assert started.status == 201, started.text
    shown = world.get(f"/runs/{started.json()['run_id']}")
    assert shown.status == 200 and shown.json()["run"]["input"]["x"] == json.loads(
        nested(MAX_DEPTH - 1)
    )


def test_every_route_that_takes_a_value_refuses_one_too_deep(world: ApiWorld) -> None:
    deep = nested(MAX_DEPTH + 1)
    run_id = world.start("callback-flow")
    world.succeed(run_id, "prepare")
    token = callback_token(world.keys, run_id, "wait", 1, world.clock.now() + timedelta(days=1))
    for path, body, where in [
        (f"/callbacks/{token}", '{"status": "success", "output": ' + deep + "}", "output"),
        (
            f"/runs/{run_id}/steps/wait/callback",
            '{"status": "success", "output": ' + deep + "}",
            "output",
        ),
        (f"/runs/{run_id}/steps/wait/skip", '{"output": ' + deep + "}", "output"),
        (f"/runs/{run_id}/rerun", '{"from_step": "wait", "input": ' + deep + "}", "input"),
    ]:
        too_deep(world.post(path, body, headers=JSON), "body", where)
    # Step Functions' SendTaskSuccess sends the output as a string of JSON.
    sent = world.post("/tasks/success", {"taskToken": token, "output": deep})
    too_deep(sent, "body", "output")
    assert "output nests deeper" in sent.json()["message"]
    assert world.step(run_id, "wait").waiting_for == "callback"  # nothing got through


def test_a_run_shows_even_with_a_value_stored_before_the_limit(world: ApiWorld) -> None:
    # A run written before the limit existed (or by anything else) holds a value 300 deep:
    # the view leaves it out, with its URL, as it does a large one.
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", json.loads(nested(300)))
    shown = world.get(f"/runs/{run_id}")
    assert shown.status == 200, shown.text
    work = next(s for s in shown.json()["steps"] if s["key"] == "work")
    assert work["output"] is None
    assert work["output_url"] == f"/runs/{run_id}/steps/work/payload/output"
    assert world.get(work["output_url"]).json() == json.loads(nested(300))
