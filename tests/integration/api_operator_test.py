"""The dashboard's routes through the API's Lambda handler (moto): every run (one indexed
listing), label filters, an operator's approval and callback answers, a fan-out's children."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from helpers.apigw import ApiWorld, api_workflows


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def _all_pages(world: ApiWorld, **query: str) -> list[str]:
    seen: list[str] = []
    cursor = None
    while True:
        params = {**query, **({"cursor": cursor} if cursor else {})}
        reply = world.get("/runs", query=params)
        assert reply.status == 200, reply.text
        seen += [r["id"] for r in reply.json()["runs"]]
        cursor = reply.json()["cursor"]
        if not cursor:
            return seen


def test_every_run_is_listed_newest_first_across_workflows_without_repeats(
    world: ApiWorld,
) -> None:
    started = []
    for n, workflow in enumerate(["simple", "fan", "simple", "simple", "fan", "simple", "fan"]):
        body = {"n": n} if workflow == "simple" else {"items": [n]}
        started.append(world.start(workflow, body, labels={"batch": str(n % 2)}))
        world.clock.advance(timedelta(seconds=1))
    assert _all_pages(world, limit="2") == list(reversed(started))
    assert _all_pages(world, limit="100") == list(reversed(started))
    first = world.get("/runs").json()["runs"][0]
    assert first["usage"] == {"cost_usd": 0.0, "input_tokens": 0, "output_tokens": 0}


def test_a_label_keeps_the_runs_that_carry_it(world: ApiWorld) -> None:
    odd = [world.start("simple", {"n": n}, labels={"batch": str(n % 2)}) for n in range(5)][1::2]
    assert sorted(_all_pages(world, label="batch=1", limit="1")) == sorted(odd)
    assert len(_all_pages(world, label="batch")) == 5
    assert _all_pages(world, label="team") == []


def test_a_cursor_of_every_run_that_was_not_given_out_is_422(world: ApiWorld) -> None:
    world.start("simple", {"n": 1})
    reply = world.get("/runs", query={"cursor": "eyJtZXJnZWQiOnsibiI6MCwidyI6e319fQ"})
    assert reply.status == 422 and "cursor" in reply.json()["message"]


def _waiting_approval(world: ApiWorld) -> str:
    run_id = world.start("approve-flow", {"order": "A-7"})
    world.succeed(run_id, "prepare")
    return run_id


def test_an_operator_approves_whatever_the_quorum_and_the_timeline_says_who(
    world: ApiWorld,
) -> None:
    run_id = _waiting_approval(world)
    reply = world.post(
        f"/runs/{run_id}/steps/approve/decision", {"approved": True, "comment": "ok"}
    )
    assert reply.status == 200, reply.text
    assert reply.json()["step_status"] == "succeeded"
    entry = next(e for e in world.timeline(run_id) if e.type == "step_approved")
    assert "(operator): ok" in entry.message and "assumed-role/operators/alice" in entry.message
    again = world.post(f"/runs/{run_id}/steps/approve/decision", {"approved": False})
    assert again.status == 409 and "not waiting for an approval" in again.json()["message"]


def test_an_operator_rejection_fails_the_approval(world: ApiWorld) -> None:
    run_id = _waiting_approval(world)
    reply = world.post(f"/runs/{run_id}/steps/approve/decision", {"approved": False})
    assert reply.status == 200 and reply.json()["step_status"] == "failed"


def test_a_decision_has_the_right_shape_and_a_step_that_exists(world: ApiWorld) -> None:
    run_id = _waiting_approval(world)
    assert world.post(f"/runs/{run_id}/steps/approve/decision", {"approved": "yes"}).status == 422
    assert world.post(f"/runs/{run_id}/steps/nope/decision", {"approved": True}).status == 404
    early = world.start("approve-flow", {"order": "B"})
    refused = world.post(f"/runs/{early}/steps/approve/decision", {"approved": True})
    assert refused.status == 409


def test_an_operator_answers_a_waiting_callback(world: ApiWorld) -> None:
    run_id = world.start("callback-flow")
    early = world.post(f"/runs/{run_id}/steps/wait/callback", {"status": "success"})
    assert early.status == 409  # only a wait that is open
    world.succeed(run_id, "prepare")
    reply = world.post(
        f"/runs/{run_id}/steps/wait/callback", {"status": "success", "output": {"id": 9}}
    )
    assert reply.status == 200, reply.text
    assert world.step(run_id, "wait").output == {"id": 9}
    entry = next(e for e in world.timeline(run_id) if e.type == "callback_received")
    assert "by arn:aws:sts::123456789012:assumed-role/operators/alice" in entry.message


def test_children_come_a_page_at_a_time_and_unstarted_ones_are_pending(world: ApiWorld) -> None:
    run_id = world.start("fan", {"items": list(range(5))})
    world.succeed(run_id, "each[0]", {"ok": 0})
    first = world.get(f"/runs/{run_id}/steps/each/children", query={"limit": "3"}).json()
    assert first["items_total"] == 5 and first["children_succeeded"] == 1
    assert [(c["key"], c["status"]) for c in first["children"]] == [
        ("each[0]", "succeeded"),
        ("each[1]", "running"),
        ("each[2]", "running"),
    ]
    assert first["children"][0]["output"] == {"ok": 0}
    rest = world.get(
        f"/runs/{run_id}/steps/each/children", query={"limit": "3", "cursor": first["cursor"]}
    ).json()
    assert [(c["key"], c["status"]) for c in rest["children"]] == [
        ("each[3]", "pending"),
        ("each[4]", "pending"),
    ]
    assert rest["cursor"] is None


def test_children_of_a_step_that_is_no_fan_out_are_404(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    assert world.get(f"/runs/{run_id}/steps/work/children").status == 404
    assert world.get(f"/runs/{run_id}/steps/each/children").status == 404
    bad = world.get(f"/runs/{run_id}/steps/work/children", query={"cursor": "x"})
    assert bad.status == 422
