"""Groups kept in an SSM parameter (moto): read through Powertools Parameters once per cache
period whatever the number of waits, an approval of a group decided through signed links on the
DynamoDB store, and a missing or broken parameter defining no group."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import boto3
import pytest

from helpers.apigw import ApiWorld
from stepwell.definition.models import Workflow
from stepwell.runtime.aws.groups import ParameterGroups

REGION = "us-east-1"
NAME = "/acme/stepwell/groups"
JSON = {"accept": "application/json"}
PAY = Workflow.model_validate(
    {
        "name": "pay",
        "steps": {
            "approve": {
                "type": "approval",
                "approvers": {"group": "finance"},
                "quorum": 2,
                "forbid_self_approval": True,
            }
        },
    }
)


class Calls:
    """GetParameter requests sent to SSM."""

    def __init__(self, client: Any) -> None:
        self.count = 0
        client.meta.events.register("before-call.ssm.GetParameter", self._seen)

    def _seen(self, **_: Any) -> None:
        self.count += 1


@pytest.fixture
def ssm(aws: None) -> Any:
    return boto3.client("ssm", region_name=REGION)


@pytest.fixture
def world(store: Any, ssm: Any) -> Iterator[ApiWorld]:
    ssm.put_parameter(
        Name=NAME,
        Type="String",
        Value="finance:\n  - ann@example.com\n  - bob@example.com\n  - cy@example.com\n",
    )
    api = ApiWorld(store, {"pay": PAY}, groups=ParameterGroups(NAME, ssm, max_age=300))
    yield api
    api.close()


def test_a_group_approval_on_dynamodb_counts_distinct_people_and_refuses_the_starter(
    world: ApiWorld, ssm: Any
) -> None:
    calls = Calls(ssm)
    ann = {"authorizer": {"jwt": {"claims": {"email": "ann@example.com", "sub": "u-1"}}}}
    started = [world.post("/workflows/pay/runs", {"input": {}}, **ann) for _ in range(3)]
    assert [response.status for response in started] == [201] * 3
    assert calls.count == 1  # cached: one read for every wait that opened within its period
    run_id = started[0].json()["run_id"]
    tokens = {t["approver"]: t["approve"] for t in world.approval_tokens(run_id, "approve")}
    assert sorted(tokens) == ["ann@example.com", "bob@example.com", "cy@example.com"]
    step = world.step(run_id, "approve")
    assert step.input["groups"] == {"finance": sorted(tokens)}
    refused = world.post(f"/approvals/{tokens['ann@example.com']}", headers=JSON)
    assert refused.status == 409 and "may not decide" in refused.json()["message"]
    first = world.post(f"/approvals/{tokens['bob@example.com']}", form={}, headers=JSON)
    assert first.status == 200, first.text
    assert world.post(f"/approvals/{tokens['bob@example.com']}", headers=JSON).status == 409
    assert world.step(run_id, "approve").status == "waiting"
    assert world.post(f"/approvals/{tokens['cy@example.com']}", headers=JSON).status == 200
    assert world.step(run_id, "approve").status == "succeeded"


def test_a_changed_parameter_reaches_the_waits_that_open_after_its_cache_period(
    store: Any, ssm: Any
) -> None:
    ssm.put_parameter(Name=NAME, Type="String", Value="finance: [ann@example.com]\n")
    groups = ParameterGroups(NAME, ssm, max_age=0)
    assert groups.members(frozenset({"finance", "board"})) == {
        "finance": ("ann@example.com",),
        "board": None,
    }
    ssm.put_parameter(Name=NAME, Type="String", Overwrite=True, Value="board: [b@example.com]\n")
    assert groups.members(frozenset({"finance", "board"})) == {
        "finance": None,
        "board": ("b@example.com",),
    }


def test_a_missing_or_broken_parameter_defines_no_group(ssm: Any) -> None:
    assert ParameterGroups("/not/there", ssm).members(frozenset({"finance"})) == {"finance": None}
    ssm.put_parameter(Name=NAME, Type="String", Value="finance: ann@example.com\n")
    assert ParameterGroups(NAME, ssm).members(frozenset({"finance"})) == {"finance": None}
