"""Approval links through the API's Lambda handler, on the DynamoDB store (moto)."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from helpers.apigw import KEY, OLD_KEY, ApiWorld, api_workflows
from stepwell import signing
from stepwell.api.approvals import link_id
from stepwell.signing import TokenClaims

BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
JSON = {"accept": "application/json"}


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def waiting_for_approval(world: ApiWorld, workflow: str = "approve-flow") -> str:
    run_id = world.start(workflow, {"order": "A-7"})
    if workflow == "approve-flow":
        world.succeed(run_id, "prepare")
    return run_id


def links(world: ApiWorld, run_id: str) -> dict[str, dict[str, str]]:
    return {link["approver"]: link for link in world.approval_tokens(run_id, "approve")}


def decide(world: ApiWorld, token: str, **form: str) -> Any:
    return world.post(f"/approvals/{token}", form=form, headers=JSON)


# -- GET ---------------------------------------------------------------------------------------
def test_the_page_shows_what_is_asked_and_never_decides(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    for _ in range(2):  # a mail scanner, then the person
        page = world.get(f"/approvals/{token}", headers=BROWSER)
        assert page.status == 200 and page.content_type.startswith("text/html")
    assert "Ship order A-7?" in page.text and "alice@example.com" in page.text
    assert page.text.count('name="decision" value=') == 2 and "0 of 2 needed" in page.text
    assert page.headers["Referrer-Policy"] == "no-referrer"
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Cache-Control"] == "no-store"
    step = world.step(run_id, "approve")
    assert step.status == "waiting" and step.decisions == []
    assert decide(world, token).status == 200  # the GETs did not use the link


def test_the_page_escapes_what_it_shows(world: ApiWorld) -> None:
    run_id = world.start("approve-flow", {"order": "<script>alert(1)</script>"})
    world.succeed(run_id, "prepare")
    token = links(world, run_id)["alice@example.com"]["approve"]
    page = world.get(f"/approvals/{token}", headers=BROWSER)
    assert "<script>" not in page.text and "&lt;script&gt;" in page.text


def test_the_json_view_names_both_links_of_the_same_approver(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["bob@example.com"]["approve"]
    view = world.get(f"/approvals/{token}", headers=JSON).json()
    assert view["run_id"] == run_id and view["approver"] == "bob@example.com"
    assert view["decision"] == "approve" and view["quorum"] == 2 and view["approvals"] == 0
    assert view["approve_url"] == f"/approvals/{token}"
    other = view["reject_url"].rsplit("/", 1)[-1]
    claims = signing.verify(other, [KEY], world.clock.now())
    assert (claims.decision, claims.approver, claims.attempt) == ("reject", "bob@example.com", 1)
    again = world.get(f"/approvals/{token}", headers=JSON).json()
    assert again["reject_url"] == view["reject_url"]  # the same link each time


# -- POST --------------------------------------------------------------------------------------
def test_a_browser_decides_with_a_form_and_gets_a_page(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    response = world.post(
        f"/approvals/{token}",
        form={"comment": "looks good", "decision": "approve"},
        headers=BROWSER,
        base64_body=True,
        authorizer=None,
    )
    assert response.status == 200 and "You approved" in response.text
    entry = next(e for e in world.timeline(run_id) if e.type == "step_approved")
    assert entry.message == "by alice@example.com: looks good"
    assert entry.data["approver"] == "alice@example.com"


def test_the_recorded_browser_events_as_api_gateway_sends_them(world: ApiWorld) -> None:
    from helpers.apigw import TESTS, LambdaContext, to_response

    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    form = json.loads((TESTS / "events" / "apiGatewayV2ApprovalFormEvent.json").read_text())
    form["rawPath"] = form["requestContext"]["http"]["path"] = f"/approvals/{token}"
    form["pathParameters"]["token"] = token
    decided = to_response(world.handler(form, LambdaContext()))
    assert decided.status == 200 and "You approved" in decided.text
    assert world.step(run_id, "approve").decisions[0]["comment"] == "looks good"
    page = json.loads((TESTS / "events" / "apiGatewayV2ApprovalPage.json").read_text())
    refused = to_response(world.handler(page, LambdaContext()))  # its token was never signed
    assert refused.status == 403 and refused.content_type.startswith("text/html")


def test_the_quorum_needs_two_approvals(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    by = links(world, run_id)
    first = decide(world, by["alice@example.com"]["approve"]).json()
    assert first["step_status"] == "waiting" and first["run_status"] == "waiting"
    second = decide(world, by["carol@example.com"]["approve"], comment="ok").json()
    assert second["step_status"] == "succeeded"
    assert world.attempt(run_id, "ship")  # the run went on
    output = world.step(run_id, "approve").output
    assert [d["approver"] for d in output["decisions"]] == [
        "alice@example.com",
        "carol@example.com",
    ]


def test_any_rejection_vetoes(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    by = links(world, run_id)
    decide(world, by["alice@example.com"]["approve"])
    vetoed = decide(world, by["bob@example.com"]["reject"], comment="too big").json()
    assert vetoed["decision"] == "reject" and vetoed["step_status"] == "failed"
    assert vetoed["run_status"] == "failed"
    assert world.step(run_id, "approve").error["type"] == "ApprovalRejected"
    late = decide(world, by["carol@example.com"]["approve"])
    assert late.status == 409


def test_the_reject_button_of_an_approve_link_rejects(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world, "anyone-approves")
    token = links(world, run_id)[None]["approve"]  # type: ignore[index]
    view = world.get(f"/approvals/{token}", headers=JSON).json()
    other = view["reject_url"].rsplit("/", 1)[-1]
    response = decide(world, other, decision="reject")
    assert response.json()["approver"] == "anonymous"
    assert world.step(run_id, "approve").status == "failed"


# -- refusals ----------------------------------------------------------------------------------
def test_a_used_link_is_409_as_json_and_as_a_page(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    assert decide(world, token).status == 200
    again = decide(world, token)
    assert again.status == 409 and again.json()["message"] == "this link has already been used"
    page = world.post(f"/approvals/{token}", form={}, headers=BROWSER)
    assert page.status == 409 and "Already decided" in page.text
    shown = world.get(f"/approvals/{token}", headers=BROWSER)
    assert shown.status == 409


def test_an_approver_decides_once_whichever_link(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    alice = links(world, run_id)["alice@example.com"]
    decide(world, alice["approve"])
    response = decide(world, alice["reject"])
    assert response.status == 409 and "already decided" in response.json()["message"]


def test_an_expired_link_is_410(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    world.clock.advance(timedelta(days=2, seconds=1))
    assert decide(world, token).status == 410
    page = world.get(f"/approvals/{token}", headers=BROWSER)
    assert page.status == 410 and "expired" in page.text


def test_a_changed_link_is_403(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    changed = token[:-2] + ("AA" if token[-2:] != "AA" else "BB")
    assert decide(world, changed).status == 403
    page = world.get(f"/approvals/{changed}", headers=BROWSER)
    assert page.status == 403 and "not valid" in page.text


def test_posting_the_other_decision_to_a_link_is_403(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    response = decide(world, token, decision="reject")
    assert response.status == 403 and "can only approve" in response.json()["message"]
    assert world.step(run_id, "approve").decisions == []


def test_a_link_of_an_earlier_request_is_409(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    stale = sign(world, run_id, "approve", attempt=2, approver="alice@example.com")
    response = decide(world, stale)
    assert response.status == 409 and "earlier request" in response.json()["message"]


def test_a_link_of_an_approval_not_open_yet_or_of_a_run_that_ended_is_409(
    world: ApiWorld,
) -> None:
    run_id = world.start("approve-flow", {"order": "A-8"})  # prepare still running
    early = sign(world, run_id, "approve", approver="alice@example.com")
    assert decide(world, early).status == 409
    world.post(f"/runs/{run_id}/cancel")
    assert decide(world, early).status == 409


def test_a_link_of_a_run_that_does_not_exist_is_404(world: ApiWorld) -> None:
    token = sign(world, "run-gone", "approve")
    assert decide(world, token).status == 404
    assert world.get(f"/approvals/{token}", headers=BROWSER).status == 404


def test_a_callback_token_is_no_approval_link(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    claims = TokenClaims.for_callback(run_id, "approve", 1, world.clock.now() + timedelta(1))
    token = signing.sign(claims, [KEY])
    assert decide(world, token).status == 403


def test_keys_rotate_newest_signs_all_verify(world: ApiWorld) -> None:
    world.keys[:] = [OLD_KEY]
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    world.keys[:] = [KEY, OLD_KEY]  # rotated: links signed before still work
    view = world.get(f"/approvals/{token}", headers=JSON).json()
    other = view["reject_url"].rsplit("/", 1)[-1]
    assert _kid(other) != _kid(token)  # the counterpart is signed with the newest key
    assert decide(world, token).status == 200
    world.keys[:] = [KEY]  # the old key dropped
    assert decide(world, links(world, run_id)["bob@example.com"]["approve"]).status == 403


def _kid(token: str) -> str:
    payload = token.split(".", maxsplit=1)[0]
    return str(json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))[1])


def test_a_link_is_used_by_its_decision_being_recorded(world: ApiWorld, scan: Any) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    assert decide(world, token).status == 200
    claims = signing.verify(token, [KEY], world.clock.now())
    (recorded,) = world.step(run_id, "approve").decisions
    assert recorded["link"] == link_id(claims) and claims.nonce not in json.dumps(recorded)
    assert not [i for i in scan() if i["pk"]["S"].startswith("TOKEN#")]  # nothing else
    again = decide(world, token)
    assert again.status == 409 and "already been used" in again.json()["message"]


def test_a_click_whose_write_lost_its_answer_and_then_failed_does_not_use_up_the_link(
    world: ApiWorld,
) -> None:
    # The click's first write takes effect but its answer is lost, and every write after it
    # fails for a while (its clean-up too): the person's next click still decides (once).
    from helpers.faults import DynamoFaults, internal

    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    faults = DynamoFaults()
    faults.attach(world.store.client)
    writes = ("PutItem", "UpdateItem", "DeleteItem", "TransactWriteItems")

    def storm(name: str) -> Exception:
        for operation in writes:
            for _ in range(200):
                faults.next(operation, internal)
        return internal(name)

    for operation in writes:
        faults.next(operation, storm, when="after")
    first = decide(world, token)
    faults.clear()  # DynamoDB answers again; the person clicks again if they got an error
    answers = [first.status] if first.status == 200 else [first.status, decide(world, token).status]
    assert 200 in answers or answers[-1] == 409, answers
    step = world.step(run_id, "approve")
    assert [d["approver"] for d in step.decisions] == ["alice@example.com"]
    assert step.status == "waiting"  # one of two approvals: the quorum is two


def test_a_failed_delivery_does_not_use_up_the_link(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    real = world.orchestrator.handle

    def down(*args: Any, **kwargs: Any) -> Any:
        raise ConnectionError("DynamoDB is down")

    monkeypatch.setattr(world.orchestrator, "handle", down)
    assert decide(world, token).status == 500
    monkeypatch.setattr(world.orchestrator, "handle", real)
    assert decide(world, token).status == 200


def test_a_comment_too_long_or_an_unknown_decision_is_422(world: ApiWorld) -> None:
    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    assert decide(world, token, comment="x" * 2001).status == 422
    assert decide(world, token, decision="maybe").status == 422
    json_body = world.post(f"/approvals/{token}", {"comment": "as JSON"}, headers=JSON)
    assert json_body.status == 200


def sign(
    world: ApiWorld,
    run_id: str,
    key: str,
    *,
    attempt: int = 1,
    approver: str | None = None,
    decision: str = "approve",
) -> str:
    claims = TokenClaims.for_approval(
        run_id,
        key,
        attempt,
        decision=decision,  # type: ignore[arg-type]
        expires_at=world.clock.now() + timedelta(days=1),
        approver=approver,
    )
    return signing.sign(claims, world.keys)


def test_a_click_rides_out_dynamodb_faults_within_its_request(world: ApiWorld) -> None:
    from helpers.faults import DynamoFaults, internal, throttled

    run_id = waiting_for_approval(world)
    token = links(world, run_id)["alice@example.com"]["approve"]
    faults = DynamoFaults()
    faults.attach(world.store.client)
    faults.next("GetItem", throttled)  # reading the run
    faults.next("BatchGetItem", internal)  # reading the step
    for write in ("UpdateItem", "TransactWriteItems"):
        faults.next(write, internal, when="after")  # the decision is written; its answer lost
    response = decide(world, token)
    assert response.status == 200, response.text
    assert sum(faults.injected.values()) >= 3
    (recorded,) = world.step(run_id, "approve").decisions
    assert recorded["approver"] == "alice@example.com"
