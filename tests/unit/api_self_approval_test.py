"""forbid_self_approval: the person who started the run (the start request's authenticated
principal, recorded on the run as ``started_by``) may not decide its approval."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest

from helpers.apigw import ApiWorld, api_workflows
from stepwell.definition.models import Workflow
from stepwell.engine.kinds.approval import same_person
from stepwell.store.memory import MemoryStore

JSON = {"accept": "application/json"}
EXPENSE = Workflow.model_validate(
    {
        "name": "expense",
        "steps": {
            "approve": {
                "type": "approval",
                "approvers": ["ann@example.com", "bob@example.com", "alice"],
                "quorum": 1,
                "forbid_self_approval": True,
            }
        },
    }
)


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), {**api_workflows(), "expense": EXPENSE})
    yield api
    api.close()


def start_as(world: ApiWorld, authorizer: dict[str, Any] | None = None) -> str:
    options: dict[str, Any] = {} if authorizer is None else {"authorizer": authorizer}
    response = world.post("/workflows/expense/runs", {"input": {}}, **options)
    assert response.status == 201, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def links(world: ApiWorld, run_id: str) -> dict[str, str]:
    return {link["approver"]: link["approve"] for link in world.approval_tokens(run_id, "approve")}


def test_the_starter_is_refused_and_another_approver_decides(world: ApiWorld) -> None:
    run_id = start_as(world, {"jwt": {"claims": {"email": "ann@example.com", "sub": "u-1"}}})
    assert world.store.get_run(run_id).started_by == "ann@example.com"
    token = links(world, run_id)["ann@example.com"]
    refused = world.post(f"/approvals/{token}", form={}, headers=JSON)
    assert refused.status == 409
    assert "started the run and may not decide it" in refused.json()["message"]
    step = world.step(run_id, "approve")
    assert step.status == "waiting" and step.decisions == []
    bob = world.post(f"/approvals/{links(world, run_id)['bob@example.com']}", form={}, headers=JSON)
    assert bob.status == 200 and world.step(run_id, "approve").status == "succeeded"


def test_an_iam_starter_is_known_by_its_name(world: ApiWorld) -> None:
    run_id = start_as(world)  # the fixture's caller: assumed-role/operators/alice
    assert world.store.get_run(run_id).started_by.endswith("assumed-role/operators/alice")
    token = links(world, run_id)["alice"]
    assert world.post(f"/approvals/{token}", form={}, headers=JSON).status == 409


def test_without_the_option_the_starter_may_decide(world: ApiWorld) -> None:
    plain = EXPENSE.model_copy(deep=True)
    world.close()
    step = plain.steps["approve"].model_copy(update={"forbid_self_approval": False})
    allowed = plain.model_copy(update={"steps": {"approve": step}})
    again = ApiWorld(MemoryStore(), {**api_workflows(), "expense": allowed})
    try:
        run_id = start_as(again, {"jwt": {"claims": {"email": "ann@example.com"}}})
        token = links(again, run_id)["ann@example.com"]
        assert again.post(f"/approvals/{token}", form={}, headers=JSON).status == 200
    finally:
        again.close()


@pytest.mark.parametrize(
    ("principal", "approver", "same"),
    [
        ("ann@example.com", "ANN@example.com", True),
        ("arn:aws:sts::1:assumed-role/AWSReservedSSO_x/ann@example.com", "ann@example.com", True),
        ("arn:aws:iam::1:user/bob", "bob", True),
        ("arn:aws:iam::1:user/bob", "bob@example.com", False),
        ("annex@example.com", "ann@example.com", False),
        (None, "ann@example.com", False),
    ],
)
def test_who_counts_as_the_starter(principal: str | None, approver: str, same: bool) -> None:
    assert same_person(principal, approver) is same
