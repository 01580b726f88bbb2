"""The input kind in the engine: what it takes as an answer when no API checked it first, and
what its expiry does."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest
from api_inputs_test import SHIPPING

from helpers.apigw import ApiWorld, api_workflows
from stepwell.engine.events import ApprovalDecided, TimerFired
from stepwell.store.memory import MemoryStore

GOOD = {"carrier": "ups", "boxes": 2}


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), {**api_workflows(), "shipping": SHIPPING})
    yield api
    api.close()


def ignored(world: ApiWorld, run_id: str) -> list[str]:
    return [e.message for e in world.timeline(run_id) if e.type == "decision_ignored"]


def test_the_engine_checks_the_answer_against_the_form_itself(world: ApiWorld) -> None:
    run_id = world.start("shipping", {"order_id": "E-1"})
    world.send(run_id, ApprovalDecided("details", 1, True, "ops@example.com", answer={"boxes": 0}))
    world.send(run_id, ApprovalDecided("details", 1, True, "ops@example.com"))  # no answer
    world.send(run_id, ApprovalDecided("details", 1, True, "mallory@example.com", answer=GOOD))
    world.send(run_id, ApprovalDecided("details", 2, True, "ops@example.com", answer=GOOD))
    messages = ignored(world, run_id)
    assert len(messages) == 4
    assert messages[0] == "answer by ops@example.com: 'carrier' is a required property"
    assert "takes an answer" in messages[1]
    assert "not an assignee" in messages[2]
    assert "not open" in messages[3]
    assert world.step(run_id, "details").status == "waiting"
    world.send(run_id, ApprovalDecided("details", 1, True, "ops@example.com", answer=GOOD))
    assert world.step(run_id, "details").output == GOOD


def test_a_form_nobody_answers_fails_its_step_when_its_links_expire(world: ApiWorld) -> None:
    run_id = world.start("shipping", {"order_id": "E-2"})
    due = world.step(run_id, "details").due_at
    assert due == world.clock.now() + timedelta(days=2)
    world.clock.set(due)
    world.send(run_id, TimerFired("details", due))
    step = world.step(run_id, "details")
    assert step.status == "failed" and step.error["type"] == "InputTimedOut"
    world.send(run_id, ApprovalDecided("details", 1, True, "ops@example.com", answer=GOOD))
    assert world.step(run_id, "details").status == "failed"
