"""Handing a link on (``POST /delegations/{token}``): the delegate's links decide once, in the
approver's name, until the delegation's end; recorded on the timeline; forbid_self_approval
still holds; nothing forged, expired, re-used or handed on twice is accepted."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import urlsplit

import pytest
from api_inputs_test import SHIPPING, form_links

from helpers.apigw import ApiWorld
from stepwell.definition.models import Workflow
from stepwell.engine.events import ApprovalDecided
from stepwell.store.memory import MemoryStore

JSON = {"accept": "application/json"}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
PEOPLE = ["ann@example.com", "bob@example.com", "cy@example.com"]
PAY = Workflow.model_validate(
    {
        "name": "pay",
        "steps": {
            "approve": {
                "type": "approval",
                "approvers": PEOPLE,
                "quorum": 2,
                "forbid_self_approval": True,
                "timeout": "2d",
            },
            "anyone": {"type": "approval", "depends_on": ["approve"], "timeout": "1d"},
        },
    }
)


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), {"pay": PAY, "shipping": SHIPPING})
    yield api
    api.close()


def token(url: str) -> str:
    return urlsplit(url).path.rsplit("/", 1)[-1]


def links(world: ApiWorld, run_id: str, reason: str = "requested") -> dict[str, dict[str, Any]]:
    found = [
        d
        for d in world.bus("approval.requested")
        if d["run_id"] == run_id and d["reason"] == reason
    ]
    assert found, f"no approval.requested ({reason})"
    return {link.get("delegate") or link["approver"]: link for link in found[-1]["links"]}


def hand_on(world: ApiWorld, url: str, **form: str) -> Any:
    return world.post(f"/delegations/{token(url)}", form=form, headers=JSON)


def decide(world: ApiWorld, url: str) -> Any:
    return world.post(f"/approvals/{token(url)}", form={}, headers=JSON)


def started_by(world: ApiWorld, person: str | None = None) -> str:
    options: dict[str, Any] = {}
    if person is not None:
        options["authorizer"] = {"jwt": {"claims": {"email": person, "sub": "u-1"}}}
    response = world.post("/workflows/pay/runs", {"input": {}}, **options)
    assert response.status == 201, response.text
    run_id: str = response.json()["run_id"]
    return run_id


def test_a_delegate_decides_once_in_the_approvers_name_and_it_is_on_the_timeline(
    world: ApiWorld,
) -> None:
    run_id = started_by(world)
    own = links(world, run_id)
    until = world.clock.now() + timedelta(hours=6)
    handed = hand_on(
        world, own["ann@example.com"]["reject_url"], to="dee@example.com", until=until.isoformat()
    )
    assert handed.status == 200, handed.text
    assert handed.json() == {
        "run_id": run_id,
        "step": "approve",
        "delegated_by": "ann@example.com",
        "to": "dee@example.com",
        "until": until.isoformat().replace("+00:00", "Z"),
    }
    [entry] = [e for e in world.timeline(run_id) if e.type == "step_delegated"]
    assert entry.data == {
        "from": "ann@example.com",
        "to": "dee@example.com",
        "until": until.isoformat(),
    }
    assert entry.message == (
        f"ann@example.com handed their link on to dee@example.com until {until.isoformat()}"
    )
    sent = links(world, run_id, "delegation")
    assert list(sent) == ["dee@example.com"]
    assert sent["dee@example.com"]["approver"] == "ann@example.com"
    assert world.bus("approval.requested")[-1]["delegated_by"] == "ann@example.com"
    assert world.bus("approval.requested")[-1]["expires_at"] == until.isoformat()

    assert decide(world, sent["dee@example.com"]["approve_url"]).status == 200
    again = decide(world, sent["dee@example.com"]["approve_url"])
    assert again.status == 409  # single use
    mine = decide(world, own["ann@example.com"]["approve_url"])
    assert mine.status == 409 and "ann@example.com has already decided" in mine.json()["message"]
    step = world.step(run_id, "approve")
    assert step.status == "waiting"  # the delegate's decision is Ann's: one of two
    assert [(d["approver"], d.get("by")) for d in step.decisions] == [
        ("ann@example.com", "dee@example.com")
    ]
    assert decide(world, own["bob@example.com"]["approve_url"]).status == 200
    assert world.step(run_id, "approve").status == "succeeded"
    approved = [e.message for e in world.timeline(run_id) if e.type == "step_approved"]
    assert approved[0] == "by ann@example.com (through dee@example.com, who holds their link)"


def test_a_delegated_link_expires_at_its_until(world: ApiWorld) -> None:
    run_id = started_by(world)
    own = links(world, run_id)
    until = world.clock.now() + timedelta(hours=1)
    assert (
        hand_on(
            world,
            own["bob@example.com"]["approve_url"],
            to="dee@example.com",
            until=until.isoformat(),
        ).status
        == 200
    )
    sent = links(world, run_id, "delegation")["dee@example.com"]
    world.clock.advance(timedelta(hours=1))
    assert decide(world, sent["approve_url"]).status == 410
    assert world.step(run_id, "approve").decisions == []
    assert decide(world, own["bob@example.com"]["approve_url"]).status == 200  # Bob's still works


def test_forbid_self_approval_refuses_a_delegation_to_or_from_the_starter(
    world: ApiWorld,
) -> None:
    run_id = started_by(world, "ann@example.com")
    own = links(world, run_id)
    from_starter = hand_on(world, own["ann@example.com"]["approve_url"], to="dee@example.com")
    assert from_starter.status == 409
    assert "ann@example.com started the run" in from_starter.json()["message"]
    to_starter = hand_on(world, own["bob@example.com"]["approve_url"], to="ANN@example.com")
    assert to_starter.status == 409
    assert "ANN@example.com started the run" in to_starter.json()["message"]
    assert [e for e in world.timeline(run_id) if e.type == "step_delegated"] == []
    assert world.bus("approval.requested")[-1]["reason"] == "requested"


def test_what_cannot_be_handed_on(world: ApiWorld) -> None:
    run_id = started_by(world)
    own = links(world, run_id)
    url = own["cy@example.com"]["approve_url"]
    bad_to = hand_on(world, url, to="two words")
    assert bad_to.status == 422 and bad_to.json()["details"][0]["loc"] == ["body", "to"]
    late = world.clock.now() + timedelta(days=3)
    too_late = hand_on(world, url, to="dee@example.com", until=late.isoformat())
    assert too_late.status == 422 and "after this link expires" in too_late.json()["message"]
    naive = hand_on(world, url, to="dee@example.com", until="2030-01-01T00:00:00")
    assert naive.status == 422 and "no time zone" in naive.json()["message"]
    gone = hand_on(world, url, to="dee@example.com", until="2020-01-01T00:00:00Z")
    assert gone.status == 422 and "has passed" in gone.json()["message"]
    self_ = hand_on(world, url, to="CY@example.com")
    assert self_.status == 409 and "someone else" in self_.json()["message"]
    assert hand_on(world, url, to="dee@example.com").status == 200
    twice = hand_on(world, url, to="eve@example.com")
    assert twice.status == 409 and "already handed their link on to dee" in twice.json()["message"]
    sent = links(world, run_id, "delegation")["dee@example.com"]
    onward = hand_on(world, sent["approve_url"], to="eve@example.com")
    assert onward.status == 409 and "not handed on again" in onward.json()["message"]
    # A link for anyone is forwarded, not handed on.
    decide(world, own["ann@example.com"]["approve_url"])
    decide(world, own["bob@example.com"]["approve_url"])
    anyone = world.approval_tokens(run_id, "anyone")[0]
    response = world.post(
        f"/delegations/{anyone['approve']}", form={"to": "x@example.com"}, headers=JSON
    )
    assert response.status == 409 and "forward it" in response.json()["message"]


def test_a_forged_delegation_is_refused(world: ApiWorld) -> None:
    run_id = started_by(world)
    assert (
        hand_on(
            world, links(world, run_id)["ann@example.com"]["approve_url"], to="dee@example.com"
        ).status
        == 200
    )
    real = token(links(world, run_id, "delegation")["dee@example.com"]["approve_url"])
    payload, signature = real.split(".")
    fields = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert fields[-1] == "dee@example.com"
    fields[-1] = "mallory@example.com"  # re-targeted to another delegate
    forged = base64.urlsafe_b64encode(json.dumps(fields, separators=(",", ":")).encode())
    forged_token = forged.decode().rstrip("=") + "." + signature
    assert world.post(f"/approvals/{forged_token}", form={}, headers=JSON).status == 403
    assert (
        world.post(f"/delegations/{forged_token}", form={"to": "x@y"}, headers=JSON).status == 403
    )
    assert world.step(run_id, "approve").decisions == []


def test_a_form_assignee_hands_their_link_on_and_the_delegate_answers(world: ApiWorld) -> None:
    run_id = world.start("shipping", {"order_id": "O-1"})
    own = form_links(world, run_id)
    handed = world.post(
        f"/delegations/{own['ops@example.com']}", form={"to": "dee@example.com"}, headers=JSON
    )
    assert handed.status == 200, handed.text
    request = world.bus("input.requested")[-1]
    assert request["reason"] == "delegation" and request["delegated_by"] == "ops@example.com"
    [link] = request["links"]
    assert (link["assignee"], link["delegate"]) == ("ops@example.com", "dee@example.com")
    answer = {"carrier": "dhl", "boxes": 2}
    done = world.post(f"/inputs/{token(link['form_url'])}", answer, headers=JSON)
    assert done.status == 200, done.text
    step = world.step(run_id, "details")
    assert step.status == "succeeded" and step.output == answer
    assert [(d["person"], d.get("by")) for d in step.decisions] == [
        ("ops@example.com", "dee@example.com")
    ]
    page = world.post(
        f"/delegations/{own['lead@example.com']}", form={"to": "x@example.com"}, headers=BROWSER
    )
    assert page.status == 409 and page.content_type.startswith("text/html")


def test_the_pages_offer_to_hand_a_named_link_on_and_a_delegated_one_not(
    world: ApiWorld,
) -> None:
    run_id = started_by(world)
    own = links(world, run_id)["bob@example.com"]
    page = world.get(f"/approvals/{token(own['approve_url'])}", headers=BROWSER)
    action = f'action="../delegations/{token(own["approve_url"])}"'
    assert page.status == 200 and action in page.text and "Hand this on" in page.text
    hand_on(world, own["approve_url"], to="dee@example.com")
    sent = links(world, run_id, "delegation")["dee@example.com"]
    delegated = world.get(f"/approvals/{token(sent['approve_url'])}", headers=BROWSER)
    assert delegated.status == 200 and "Hand this on" not in delegated.text
    form_run = world.start("shipping", {"order_id": "O-2"})
    form = form_links(world, form_run)["ops@example.com"]
    shown = world.get(f"/inputs/{form}", headers=BROWSER)
    assert f'action="../delegations/{form}"' in shown.text


def test_the_engine_takes_a_delegate_s_decision_only_through_a_recorded_delegation(
    world: ApiWorld,
) -> None:
    run_id = started_by(world)
    forged = ApprovalDecided("approve", 1, True, "ann@example.com", by="mallory@example.com")
    world.orchestrator.handle(run_id, forged)
    assert world.step(run_id, "approve").decisions == []
    notes = [e.message for e in world.timeline(run_id) if e.type == "decision_ignored"]
    assert notes == ["mallory@example.com holds no delegation from ann@example.com (or it ran out)"]
    until = world.clock.now() + timedelta(hours=1)
    handed = ApprovalDecided(
        "approve",
        1,
        False,
        "ann@example.com",
        delegate_to="dee@example.com",
        until=until.isoformat(),
    )
    world.orchestrator.handle(run_id, handed)
    world.clock.advance(timedelta(hours=2))  # the delegation ran out
    late = ApprovalDecided("approve", 1, True, "ann@example.com", by="dee@example.com")
    world.orchestrator.handle(run_id, late)
    assert world.step(run_id, "approve").decisions == []
