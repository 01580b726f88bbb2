"""Groups and delegation on the local stack: the project's groups.yaml goes into SSM (moto) as
the parameter the engine reads on AWS; an approval of a group sends each of its people their own
links, records the group on the step, and its quorum counts distinct people; a person hands
their link on, and the delegate's link decides once, in their name, shown in the outbox."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import boto3
import pytest
from conftest import groups_stack
from e2e_helpers import approval_requested, finished, steps_of

from stepwell.local.client import Client
from stepwell.local.groups import PARAMETER
from stepwell.local.stack import LocalStack

FINANCE = ["ann@example.com", "bob@example.com", "cy@example.com"]
WORKFLOW = """\
name: group-approval
steps:
  approve:
    type: approval
    message: Pay ${input.amount}?
    approvers: [{group: finance}, ann@example.com]
    quorum: 2
  unknown:
    type: approval
    depends_on: [approve]
    when: ${input.amount > 1000}
    approvers: {group: board}
"""


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    groups = "finance: [ann@example.com, bob@example.com, cy@example.com]\n"
    with groups_stack(tmp_path_factory, groups, WORKFLOW) as started:
        yield started


def test_the_groups_file_is_the_parameter_the_functions_read(stack: LocalStack) -> None:
    ssm = boto3.client("ssm", region_name="us-east-1")
    value = ssm.get_parameter(Name=PARAMETER)["Parameter"]["Value"]
    assert value == (Path(stack.project) / "groups.yaml").read_text(encoding="utf-8")
    assert not [warning for warning in stack.warnings if "groups" in warning]


def test_quorum_2_of_a_group_completes_on_the_second_distinct_person(
    stack: LocalStack, api_of: Client
) -> None:
    api = api_of
    with stack.hold():
        run_id = api.start_run("group-approval", {"amount": 90}).body["run_id"]
        asked = approval_requested(stack, run_id)
        links = {link["approver"]: link for link in asked["links"]}
        assert sorted(links) == FINANCE  # Ann is named twice: one person, one pair of links
        step = steps_of(api.run(run_id))["approve"]
        assert step["input"]["groups"] == {"finance": FINANCE}
        assert api.decide(links["ann@example.com"]["approve_url"], "approve").status == 200
        again = api.decide(links["ann@example.com"]["approve_url"], "approve")
        assert again.status == 409
        assert steps_of(api.run(run_id))["approve"]["status"] == "waiting"
        assert api.decide(links["cy@example.com"]["approve_url"], "approve").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    decisions = steps_of(detail)["approve"]["output"]["decisions"]
    assert [d["approver"] for d in decisions] == ["ann@example.com", "cy@example.com"]


def test_a_group_the_file_does_not_define_fails_its_step_saying_so(
    stack: LocalStack, api_of: Client
) -> None:
    api = api_of
    with stack.hold():
        run_id = api.start_run("group-approval", {"amount": 5000}).body["run_id"]
        links = {link["approver"]: link for link in approval_requested(stack, run_id)["links"]}
        for person in ("ann@example.com", "bob@example.com"):
            assert api.decide(links[person]["approve_url"], "approve").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "failed"
    error = steps_of(detail)["unknown"]["error"]
    assert error["type"] == "UnknownGroup"
    assert "names group 'board', which the groups file does not define" in error["message"]


def test_a_delegated_link_works_once_is_recorded_and_is_in_the_outbox(
    stack: LocalStack, api_of: Client
) -> None:
    api = api_of
    with stack.hold():
        run_id = api.start_run("group-approval", {"amount": 90}).body["run_id"]
        links = {link["approver"]: link for link in approval_requested(stack, run_id)["links"]}
        handed = api.request(
            "POST",
            links["bob@example.com"]["approve_url"].replace("/approvals/", "/delegations/"),
            form={"to": "dee@example.com"},
        )
        assert handed.status == 200, handed.body
        event = stack.wait_for_event(
            lambda e: (
                e["detail-type"] == "approval.requested"
                and e["detail"]["run_id"] == run_id
                and e["detail"]["reason"] == "delegation"
            ),
            30,
        )
        assert event is not None
        [link] = event["detail"]["links"]
        assert (link["approver"], link["delegate"]) == ("bob@example.com", "dee@example.com")
        outbox = api.get("/_local/outbox").body
        sent = [n for n in outbox["notifications"] if n["run_id"] == run_id]
        assert sent[0]["reason"] == "delegation"
        assert api.decide(link["approve_url"], "approve").status == 200
        assert api.decide(link["approve_url"], "approve").status == 409
        assert api.decide(links["bob@example.com"]["approve_url"], "approve").status == 409
        assert api.decide(links["cy@example.com"]["approve_url"], "approve").status == 200
    detail = finished(stack, api, run_id)
    decisions = steps_of(detail)["approve"]["output"]["decisions"]
    assert [(d["approver"], d.get("by")) for d in decisions] == [
        ("bob@example.com", "dee@example.com"),
        ("cy@example.com", None),
    ]
    entries = [e for e in api.timeline(run_id) if e["type"] == "step_delegated"]
    assert [(e["data"]["from"], e["data"]["to"]) for e in entries] == [
        ("bob@example.com", "dee@example.com")
    ]


@pytest.fixture(scope="module")
def api_of(stack: LocalStack) -> Client:
    return Client(stack.url)
