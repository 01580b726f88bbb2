"""What the API's OpenAPI document says is what its checks do (moto): lengths of the values the
client means, Step Functions' bounds, and the headers every answer carries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import quote

import pytest

from helpers.apigw import ApiWorld, api_workflows
from stepwell.api.callbacks import callback_token


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def declared(world: ApiWorld, path: str, method: str, name: str) -> dict[str, Any]:
    """The schema the document gives a parameter, or a body field, of ``method path``."""
    document = world.get("/openapi.json").json()
    operation = document["paths"][path][method]
    for parameter in operation.get("parameters", []):
        if parameter["name"] == name:
            return dict(parameter["schema"])
    body = operation["requestBody"]["content"]["application/json"]["schema"]["$ref"]
    schema = document["components"]["schemas"][body.rsplit("/", 1)[1]]["properties"][name]
    return next((s for s in schema.get("anyOf", []) if s.get("type") == "string"), schema)


def test_task_failure_takes_every_error_name_the_document_allows(world: ApiWorld) -> None:
    longest = declared(world, "/tasks/failure", "post", "error")["maxLength"]
    assert longest == 256  # Step Functions' own bound for SendTaskFailure's error
    run_id = world.start("callback-flow")
    world.succeed(run_id, "prepare")
    token = callback_token(world.keys, run_id, "wait", 1, world.clock.now() + timedelta(days=1))
    too_long = world.post("/tasks/failure", {"taskToken": token, "error": "E" * (longest + 1)})
    assert too_long.status == 422
    sent = world.post("/tasks/failure", {"taskToken": token, "error": "E" * longest})
    assert sent.status == 200, sent.text
    assert world.step(run_id, "wait").error["type"] == "E" * longest


def test_a_path_parameters_length_is_the_length_of_the_value_not_of_its_encoding(
    world: ApiWorld,
) -> None:
    longest = declared(world, "/runs/{run_id}/steps/{step}/payload/{part}", "get", "step")
    run_id = world.start("simple", {"n": 1})
    key = "[" * (longest["maxLength"] // 2) + "]" * (longest["maxLength"] // 2)
    fits = world.get(f"/runs/{run_id}/steps/{quote(key)}/payload/input")  # 3x longer encoded
    assert fits.status == 404 and f"has no step {key!r}" in fits.json()["message"]
    over = world.get(f"/runs/{run_id}/steps/{quote(key + '[')}/payload/input")
    assert over.status == 422
    # A decoded name reaches the route as the client meant it.
    work = world.get(f"/runs/{run_id}/steps/{quote('work')}/payload/input")
    assert work.status == 200 and work.json() == {"n": 1}


@pytest.mark.parametrize(
    ("method", "path", "options"),
    [
        ("GET", "/workflows", {}),
        ("GET", "/runs/nope", {}),
        ("GET", "/openapi.json", {}),
        (
            "POST",
            "/workflows/simple/runs",
            {"body": "x", "headers": {"content-type": "multipart/x"}},
        ),
    ],
)
def test_every_answer_tells_browsers_not_to_sniff(
    world: ApiWorld, method: str, path: str, options: dict[str, Any]
) -> None:
    answer = world.call(method, path, **options)
    assert answer.headers.get("X-Content-Type-Options") == "nosniff", (answer.status, path)
