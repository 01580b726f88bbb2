"""The tamper suite: every way of bending an approval, form or callback token is refused,
through the API's route, and nothing is decided on the way."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from api_inputs_test import SHIPPING, form_links

from helpers.apigw import KEY, ApiWorld, api_workflows
from stepwell import signing
from stepwell.api.callbacks import callback_token
from stepwell.signing import TokenClaims
from stepwell.store.memory import MemoryStore

JSON = {"accept": "application/json"}
ALPHABET = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), api_workflows())
    yield api
    api.close()


def open_approval(world: ApiWorld) -> tuple[str, dict[str, str]]:
    run_id = world.start("approve-flow", {"order": "T-1"})
    world.succeed(run_id, "prepare")
    by = {link["approver"]: link for link in world.approval_tokens(run_id, "approve")}
    return run_id, by["alice@example.com"]


def decide(world: ApiWorld, token: str, **form: str) -> int:
    return world.post(f"/approvals/{token}", form=form, headers=JSON).status


def nothing_decided(world: ApiWorld, run_id: str) -> None:
    step = world.step(run_id, "approve")
    assert step.status == "waiting" and step.decisions == []


def payload_of(token: str) -> list[Any]:
    part = token.split(".", maxsplit=1)[0]
    return json.loads(base64.urlsafe_b64decode(part + "=" * (-len(part) % 4)))  # type: ignore[no-any-return]


def with_payload(token: str, fields: list[Any]) -> str:
    """The token's signature on another payload."""
    body = json.dumps(fields, separators=(",", ":")).encode()
    encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode()
    return f"{encoded}.{token.split('.')[1]}"


def test_flipping_any_character_of_a_token_is_403(world: ApiWorld) -> None:
    run_id, alice = open_approval(world)
    token = alice["approve"]
    for position, char in enumerate(token):
        if char == ".":
            flipped = token[:position] + "A" + token[position + 1 :]
        else:
            other = ALPHABET[(ALPHABET.index(char) + 1) % len(ALPHABET)]
            flipped = token[:position] + other + token[position + 1 :]
        assert decide(world, flipped) == 403, position
    for position in range(0, len(token), 17):
        flipped = (
            token[:position] + ("x" if token[position] != "x" else "y") + token[position + 1 :]
        )
        assert world.get(f"/approvals/{flipped}", headers=JSON).status == 403
    nothing_decided(world, run_id)
    assert decide(world, token) == 200  # the genuine one still works


def test_cutting_or_lengthening_a_token_is_refused(world: ApiWorld) -> None:
    run_id, alice = open_approval(world)
    token = alice["approve"]
    payload, signature = token.split(".")
    for bent in [
        token[:-1],
        token + "A",
        payload,
        f"{payload}.",
        f".{signature}",
        f"{payload}.{signature}.{signature}",
        f"{payload}={signature}",
        token.replace(".", ".."),
    ]:
        assert decide(world, bent) == 403, bent
    assert decide(world, "A" * 5000) == 422  # over the longest token: refused before decoding
    nothing_decided(world, run_id)


@pytest.mark.parametrize(
    ("index", "value"),
    [
        (6, "n"),  # approve -> reject
        (7, "bob@example.com"),  # another approver
        (7, None),  # anyone
        (5, 2),  # another attempt
        (8, 4102444800),  # a later expiry (2100)
        (4, "ship"),  # another step
        (2, "C"),  # a callback token
    ],
)
def test_changing_what_a_token_grants_breaks_its_signature(
    world: ApiWorld, index: int, value: Any
) -> None:
    run_id, alice = open_approval(world)
    fields = payload_of(alice["approve"])
    fields[index] = value
    assert decide(world, with_payload(alice["approve"], fields)) == 403
    nothing_decided(world, run_id)


def test_swapping_the_decision_is_refused(world: ApiWorld) -> None:
    run_id, alice = open_approval(world)
    assert decide(world, alice["approve"], decision="reject") == 403
    assert decide(world, alice["reject"], decision="approve") == 403
    reject_payload = payload_of(alice["reject"])
    spliced = f"{alice['reject'].split('.')[0]}.{alice['approve'].split('.')[1]}"
    assert payload_of(spliced) == reject_payload
    assert decide(world, spliced) == 403
    nothing_decided(world, run_id)


def test_an_expired_token_is_410_even_with_a_new_expiry_written_in(world: ApiWorld) -> None:
    _, alice = open_approval(world)
    world.clock.advance(timedelta(days=2))
    assert decide(world, alice["approve"]) == 410
    fields = payload_of(alice["approve"])
    fields[8] += 86_400
    assert decide(world, with_payload(alice["approve"], fields)) == 403


def test_reusing_a_token_is_409(world: ApiWorld) -> None:
    run_id, alice = open_approval(world)
    assert decide(world, alice["approve"]) == 200
    assert decide(world, alice["approve"]) == 409
    assert decide(world, alice["reject"]) == 409
    assert [d["decision"] for d in world.step(run_id, "approve").decisions] == ["approved"]


def test_another_runs_token_does_not_decide_this_run(world: ApiWorld) -> None:
    run_a, alice_a = open_approval(world)
    run_b, alice_b = open_approval(world)
    # Run B's payload under run A's signature, and A's payload naming run B.
    spliced = f"{alice_b['approve'].split('.')[0]}.{alice_a['approve'].split('.')[1]}"
    assert decide(world, spliced) == 403
    fields = payload_of(alice_a["approve"])
    fields[3] = run_b
    assert decide(world, with_payload(alice_a["approve"], fields)) == 403
    nothing_decided(world, run_a)
    nothing_decided(world, run_b)
    assert decide(world, alice_a["approve"]) == 200  # decides run A only
    nothing_decided(world, run_b)


def test_a_token_signed_with_another_key_is_403(world: ApiWorld) -> None:
    run_id, _ = open_approval(world)
    claims = TokenClaims.for_approval(
        run_id,
        "approve",
        1,
        decision="approve",
        expires_at=world.clock.now() + timedelta(days=1),
        approver="alice@example.com",
    )
    forged = signing.sign(claims, [b"someone-elses-key-0123456789abcdef"])
    assert decide(world, forged) == 403
    same_id = signing.sign(claims, [KEY])  # the genuine signature of the very same claims
    assert decide(world, same_id) == 200


def test_callback_tokens_resist_the_same_bending(world: ApiWorld) -> None:
    run_id = world.start("callback-flow")
    world.succeed(run_id, "prepare")
    token = callback_token(world.keys, run_id, "wait", 1, world.clock.now() + timedelta(days=1))
    body = {"status": "success", "output": 1}
    for position in range(0, len(token), 7):
        char = token[position]
        other = "A" if char in ".B" else "B"
        bent = token[:position] + other + token[position + 1 :]
        assert world.post(f"/callbacks/{bent}", body).status == 403, position
    fields = payload_of(token)
    fields[3] = "another-run"
    assert world.post(f"/callbacks/{with_payload(token, fields)}", body).status == 403
    assert world.step(run_id, "wait").status == "waiting"
    assert world.post(f"/callbacks/{token}", body).status == 200
    assert world.post(f"/callbacks/{token}", body).status == 409
    world.clock.advance(timedelta(days=1))
    assert world.post(f"/callbacks/{token}", body).status == 410


@pytest.fixture
def forms() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), {**api_workflows(), "shipping": SHIPPING})
    yield api
    api.close()


def answer(world: ApiWorld, token: str) -> int:
    return world.post(f"/inputs/{token}", {"carrier": "ups", "boxes": 1}, headers=JSON).status


def test_form_tokens_resist_the_same_bending(forms: ApiWorld) -> None:
    run_id = forms.start("shipping", {"order_id": "F-1"})
    links = form_links(forms, run_id)
    token = links["ops@example.com"]
    for position in range(0, len(token), 5):
        char = token[position]
        bent = token[:position] + ("A" if char in ".B" else "B") + token[position + 1 :]
        assert answer(forms, bent) == 403, position
        assert forms.get(f"/inputs/{bent}", headers=JSON).status == 403, position
    for index, value in [
        (7, "lead@example.com"),  # re-targeted to the other assignee
        (7, None),  # anyone
        (5, 2),  # another attempt
        (8, 4102444800),  # a later expiry (2100)
        (4, "ship"),  # another step
        (3, "another-run"),  # another run
        (2, "A"),  # an approval token
        (6, "y"),  # with a decision
    ]:
        fields = payload_of(token)
        fields[index] = value
        assert answer(forms, with_payload(token, fields)) == 403, (index, value)
    lead = links["lead@example.com"]
    spliced = f"{lead.split('.')[0]}.{token.split('.')[1]}"  # lead's payload, ops' signature
    assert answer(forms, spliced) == 403
    forged = signing.sign(
        TokenClaims.for_input(
            run_id, "details", 1, expires_at=forms.clock.now() + timedelta(days=1)
        ),
        [b"someone-elses-key-0123456789abcdef"],
    )
    assert answer(forms, forged) == 403
    assert forms.step(run_id, "details").status == "waiting"
    assert forms.step(run_id, "details").decisions == []
    assert answer(forms, token) == 200
    assert answer(forms, token) == 409  # re-used
    assert answer(forms, lead) == 409


def test_an_expired_form_token_is_410(forms: ApiWorld) -> None:
    run_id = forms.start("shipping", {"order_id": "F-2"})
    token = form_links(forms, run_id)["ops@example.com"]
    forms.clock.advance(timedelta(days=2))
    assert answer(forms, token) == 410
    assert forms.get(f"/inputs/{token}", headers=JSON).status == 410
    fields = payload_of(token)
    fields[8] += 86_400
    assert answer(forms, with_payload(token, fields)) == 403


def test_delegation_tokens_resist_the_same_bending(world: ApiWorld) -> None:
    run_id, alice = open_approval(world)
    handed = world.post(
        f"/delegations/{alice['approve']}", form={"to": "dee@example.com"}, headers=JSON
    )
    assert handed.status == 200, handed.text
    [request] = [d for d in world.bus("approval.requested") if d["reason"] == "delegation"]
    [link] = request["links"]
    token = link["approve_url"].rsplit("/", 1)[-1]
    assert payload_of(token)[10] == "dee@example.com"
    for position in range(0, len(token), 7):
        char = token[position]
        bent = token[:position] + ("A" if char in ".B" else "B") + token[position + 1 :]
        assert decide(world, bent) == 403, position
        assert world.post(f"/delegations/{bent}", form={"to": "x@y"}, headers=JSON).status == 403
    for index, value in [
        (10, "mallory@example.com"),  # re-targeted to another delegate
        (7, "bob@example.com"),  # in another approver's name
        (8, 4102444800),  # a later expiry (2100)
        (5, 2),  # another attempt
    ]:
        fields = payload_of(token)
        fields[index] = value
        assert decide(world, with_payload(token, fields)) == 403, (index, value)
    undelegated = payload_of(token)[:10]  # the delegate dropped: Alice's own link, forged
    assert decide(world, with_payload(token, undelegated)) == 403
    nothing_decided(world, run_id)
    assert decide(world, token) == 200
    assert decide(world, token) == 409  # re-used
    assert decide(world, alice["approve"]) == 409  # Alice decided through her delegate
    world.clock.advance(timedelta(days=2))
    assert decide(world, token) == 410
