"""Callbacks through the API's Lambda handler, on the DynamoDB store (moto)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from helpers.apigw import KEY, ApiWorld, api_workflows
from stepwell import signing
from stepwell.api.callbacks import callback_token
from stepwell.signing import TokenClaims


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def token_for(world: ApiWorld, run_id: str, attempt: int = 1, days: int = 1) -> str:
    expires = world.clock.now() + timedelta(days=days)
    return callback_token(world.keys, run_id, "wait", attempt, expires)


def waiting(world: ApiWorld) -> tuple[str, str]:
    run_id = world.start("callback-flow")
    world.succeed(run_id, "prepare")
    assert world.step(run_id, "wait").waiting_for == "callback"
    return run_id, token_for(world, run_id)


def test_success_completes_the_step_with_its_output(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    response = world.post(f"/callbacks/{token}", {"status": "success", "output": {"id": 9}})
    assert response.status == 200
    assert response.json() == {
        "run_id": run_id,
        "step": "wait",
        "status": "success",
        "outcome": "delivered",
    }
    assert world.step(run_id, "wait").output == {"id": 9}
    assert world.attempt(run_id, "finish")


def test_failure_fails_the_step_with_the_error(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    body = {"status": "failure", "error": {"type": "WarehouseDown", "message": "closed"}}
    assert world.post(f"/callbacks/{token}", body).status == 200
    step = world.step(run_id, "wait")
    assert step.status == "failed" and step.error["type"] == "WarehouseDown"


def test_heartbeats_keep_the_wait_alive_and_do_not_use_the_token(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    before = world.step(run_id, "wait").heartbeat_due
    world.clock.advance(timedelta(minutes=30))
    for _ in range(2):
        assert world.post(f"/callbacks/{token}", {"status": "heartbeat"}).status == 200
    assert world.step(run_id, "wait").heartbeat_due > before
    assert world.post(f"/callbacks/{token}", {"status": "success"}).status == 200


def test_a_signal_before_the_wait_opens_is_kept_and_completes_it(world: ApiWorld) -> None:
    run_id = world.start("callback-flow")
    token = token_for(world, run_id)
    early = world.post(f"/callbacks/{token}", {"status": "success", "output": "early"})
    assert early.status == 202 and early.json()["outcome"] == "kept"
    assert world.step(run_id, "wait").status == "pending"
    world.succeed(run_id, "prepare")
    step = world.step(run_id, "wait")
    assert step.status == "succeeded" and step.output == "early"


def test_a_heartbeat_before_the_wait_opens_is_409(world: ApiWorld) -> None:
    run_id = world.start("callback-flow")
    response = world.post(f"/callbacks/{token_for(world, run_id)}", {"status": "heartbeat"})
    assert response.status == 409


def test_a_used_token_is_409(world: ApiWorld) -> None:
    _, token = waiting(world)
    world.post(f"/callbacks/{token}", {"status": "success"})
    again = world.post(f"/callbacks/{token}", {"status": "success"})
    assert again.status == 409


def test_a_token_used_early_cannot_be_used_again(world: ApiWorld) -> None:
    run_id = world.start("callback-flow")
    token = token_for(world, run_id)
    assert world.post(f"/callbacks/{token}", {"status": "success"}).status == 202
    response = world.post(f"/callbacks/{token}", {"status": "failure"})
    assert response.status == 409 and "already been used" in response.json()["message"]


def test_expired_tampered_and_foreign_tokens_are_refused(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    short = token_for(world, run_id, days=1)
    world.clock.advance(timedelta(days=1, seconds=1))
    assert world.post(f"/callbacks/{short}", {"status": "success"}).status == 410
    flipped = token[:5] + ("A" if token[5] != "A" else "B") + token[6:]
    assert world.post(f"/callbacks/{flipped}", {"status": "success"}).status == 403
    approval = TokenClaims.for_approval(
        run_id, "wait", 1, decision="approve", expires_at=world.clock.now() + timedelta(1)
    )
    assert (
        world.post(f"/callbacks/{signing.sign(approval, [KEY])}", {"status": "success"}).status
        == 403
    )


def test_a_callback_for_a_run_that_ended_or_does_not_exist(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    world.post(f"/runs/{run_id}/cancel")
    assert world.post(f"/callbacks/{token}", {"status": "success"}).status == 409
    gone = callback_token(world.keys, "run-gone", "wait", 1, world.clock.now() + timedelta(1))
    assert world.post(f"/callbacks/{gone}", {"status": "success"}).status == 404


def test_a_callback_of_the_wrong_shape_is_422(world: ApiWorld) -> None:
    _, token = waiting(world)
    for body in [
        {},
        {"status": "done"},
        {"status": "success", "error": {"type": "X"}},
        {"status": "failure", "output": 1},
        {"status": "failure", "error": {"type": ""}},
        {"status": "success", "extra": 1},
    ]:
        response = world.post(f"/callbacks/{token}", body)
        assert response.status == 422, (body, response.text)
    assert world.post(f"/callbacks/{token}", {"status": "success"}).status == 200


def test_a_callback_of_a_step_that_ended_is_409(world: ApiWorld) -> None:
    run_id, token = waiting(world)
    world.post(f"/runs/{run_id}/steps/wait/skip")
    response = world.post(f"/callbacks/{token}", {"status": "success"})
    assert response.status == 409 and "ended" in response.json()["message"]


def test_the_callback_request_on_the_bus_carries_a_url_that_completes_the_step(
    world: ApiWorld,
) -> None:
    run_id = world.start("callback-flow")
    world.succeed(run_id, "prepare")
    (announced,) = world.bus("callback.requested")
    assert (
        announced["url"]
        == f"{announced['url'].split('/callbacks/')[0]}/callbacks/{announced['token']}"
    )
    claims = signing.verify(announced["token"], world.keys, world.clock.now())
    assert (claims.purpose, claims.run_id, claims.key) == ("callback", run_id, "wait")
    response = world.post(f"/callbacks/{announced['token']}", {"status": "success", "output": 7})
    assert response.status == 200
    assert world.step(run_id, "wait").output == 7


def test_step_functions_shaped_task_calls_answer_a_callback(world: ApiWorld) -> None:
    """SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat by task token, for code written
    against Step Functions."""
    run_id, token = waiting(world)
    beat = world.post("/tasks/heartbeat", {"taskToken": token})
    assert beat.status == 200, beat.text
    bad = world.post("/tasks/success", {"taskToken": token, "output": "{not json"})
    assert bad.status == 422 and "JSON text" in bad.json()["message"]
    done = world.post("/tasks/success", {"taskToken": token, "output": '{"rows": 3}'})
    assert done.status == 200, done.text
    assert world.step(run_id, "wait").output == {"rows": 3}
    assert world.post("/tasks/failure", {"taskToken": token, "error": "X"}).status == 409
    assert world.post("/tasks/success", {"taskToken": "forged", "output": "{}"}).status == 403
