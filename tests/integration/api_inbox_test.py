"""The operator's inbox through the API's handler (moto and the memory store): every approval and
input form waiting for people across runs, read from the waiting_people index that the writes
opening and ending each wait keep (never a scan of runs), with its deadline and escalations;
answered from there by an operator (a form's answer checked against its schema first)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
from conftest import metered

from helpers.apigw import ApiWorld
from stepwell.definition.models import Workflow
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.memory import MemoryStore

FORM = {
    "type": "object",
    "required": ["boxes"],
    "properties": {"boxes": {"type": "integer", "minimum": 1}},
}
WORKFLOWS = {
    w.name: w
    for w in (
        Workflow.model_validate(
            {
                "name": "pay",
                "steps": {
                    "approve": {
                        "type": "approval",
                        "message": "Pay ${input.n}?",
                        "approvers": ["ann@example.com", "bob@example.com"],
                        "timeout": "3d",
                        "remind": "4h",
                        "escalate": [
                            {"after": "1d", "to": ["cfo@example.com"]},
                            {"after": "2d", "action": "reject"},
                        ],
                    }
                },
            }
        ),
        Workflow.model_validate(
            {
                "name": "ship",
                "steps": {
                    "details": {
                        "type": "input",
                        "message": "Boxes for ${input.n}",
                        "assignees": ["ops@example.com"],
                        "form": FORM,
                        "timeout": "2d",
                    },
                    "after": {"type": "delay", "depends_on": "details", "duration": "1s"},
                },
            }
        ),
        Workflow.model_validate(
            {"name": "other", "steps": {"wait": {"type": "delay", "duration": "1d"}}}
        ),
    )
}


@pytest.fixture(params=["memory", "dynamodb"])
def world(request: pytest.FixtureRequest) -> Iterator[ApiWorld]:
    store = MemoryStore() if request.param == "memory" else request.getfixturevalue("store")
    api = ApiWorld(store, WORKFLOWS)
    yield api
    api.close()


def _inbox(world: ApiWorld, **query: str) -> dict[str, Any]:
    reply = world.get("/inbox", query=query)
    assert reply.status == 200, reply.text
    body: dict[str, Any] = reply.json()
    return body


def test_every_open_approval_and_form_is_listed_with_its_deadline_and_escalations(
    world: ApiWorld,
) -> None:
    pay = world.start("pay", {"n": 90})
    world.clock.advance(timedelta(minutes=1))
    ship = world.start("ship", {"n": 2})
    world.start("other", {"n": 0})  # waits for a timer, not for people
    world.clock.advance(timedelta(hours=25))
    waits = _inbox(world)["waits"]
    assert [(w["run_id"], w["step"], w["kind"]) for w in waits] == [
        (ship, "details", "input"),  # newest first
        (pay, "approve", "approval"),
    ]
    form, approval = waits
    assert form["message"] == "Boxes for 2" and form["people"] == ["ops@example.com"]
    assert form["form"] == FORM
    assert form["expires_at"] == "2026-01-03T00:01:00Z"
    assert approval["people"] == ["ann@example.com", "bob@example.com"]
    assert approval["expires_at"] == "2026-01-04T00:00:00Z"
    assert approval["next_at"] == "2026-01-01T04:00:00Z"  # its first reminder (no timer ran)
    assert approval["remind"] == "4h"
    assert [(e["at"], e["to"], e["action"], e["done"]) for e in approval["escalations"]] == [
        ("2026-01-02T00:00:00Z", ["cfo@example.com"], None, True),
        ("2026-01-03T00:00:00Z", [], "reject", False),
    ]


def test_answered_decided_and_cancelled_waits_leave_the_inbox_in_the_same_write(
    world: ApiWorld,
) -> None:
    pay = world.start("pay", {"n": 1})
    ship = world.start("ship", {"n": 3})
    gone = world.start("pay", {"n": 2})
    assert len(_inbox(world)["waits"]) == 3
    refused = world.post(f"/runs/{ship}/steps/details/answer", {"answer": {"boxes": 0}})
    assert refused.status == 422, refused.text
    assert "boxes" in refused.text
    assert len(_inbox(world)["waits"]) == 3  # nothing recorded
    answered = world.post(f"/runs/{ship}/steps/details/answer", {"answer": {"boxes": 4}})
    assert answered.status == 200, answered.text
    again = world.post(f"/runs/{ship}/steps/details/answer", {"answer": {"boxes": 5}})
    assert again.status == 409
    decided = world.post(f"/runs/{pay}/steps/approve/decision", {"approved": True})
    assert decided.status == 200, decided.text
    assert world.post(f"/runs/{gone}/cancel", {"reason": "no"}).status == 200
    assert _inbox(world)["waits"] == []
    detail = world.get(f"/runs/{ship}").json()
    details = next(s for s in detail["steps"] if s["key"] == "details")
    assert details["output"] == {"boxes": 4}
    answered_entry = next(
        e
        for e in world.get(f"/runs/{ship}/timeline").json()["entries"]
        if e["type"] == "step_answered"
    )
    assert answered_entry["data"]["operator"] is True


def test_the_inbox_pages_without_repeats(world: ApiWorld) -> None:
    started = []
    for n in range(7):
        started.append(world.start("pay", {"n": n}))
        world.clock.advance(timedelta(seconds=1))
    seen: list[str] = []
    cursor = None
    while True:
        page = _inbox(world, limit="3", **({"cursor": cursor} if cursor else {}))
        seen += [w["run_id"] for w in page["waits"]]
        cursor = page["cursor"]
        if not cursor:
            break
    assert seen == list(reversed(started))
    assert world.get("/inbox", query={"cursor": "nope"}).status == 422


def test_reading_the_inbox_costs_the_same_however_many_runs_there_are(
    store: DynamoStore,
) -> None:
    world = ApiWorld(store, WORKFLOWS)
    try:
        spent = {}
        for width in (5, 40):
            for n in range(width):
                world.start("other", {"n": n})
            world.start("pay", {"n": width})
            meter = metered(store)
            before = meter.reading()
            assert len(_inbox(world, limit="1")["waits"]) == 1
            spent[width] = (meter.reading() - before).dynamodb_calls
        assert spent[5] == spent[40]
        print(f"\nthe inbox's first page: {dict(spent[40])}")
    finally:
        world.close()
