"""Every operator action on every kind of run, through the API's Lambda handler (moto): the
same order as YAML (ops), as code (ops-code) and as a Step Functions machine (ops-machine).
A code-first run's steps are the records its code reached, keyed as the code named them; the
replay's own record (``$workflow``) is no step to act on."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote

import pytest

from helpers.apigw import KINDS, ApiWorld
from stepwell.catalog import Catalog

ORDER = {
    "order_id": "o-7",
    "customer": "ada@example.com",
    "items": [{"sku": "KEYBOARD", "qty": 2, "price": 120.0}],
}
VALIDATED = {"order_id": "o-7", "total": 240.0, "lines": 1}
WORKFLOWS = ["ops", "ops-code", "ops-machine"]
STEP = {
    # What each action acts on, per workflow: the machine names its states, and its task
    # token's wait is the callback of state Confirm.
    "ops": {
        "validate": "validate",
        "confirm": "confirm",
        "cool_off": "cool_off",
        "charge": "charge",
    },
    "ops-code": {
        "validate": "validate",
        "confirm": "confirm",
        "cool_off": "cool_off",
        "charge": "charge",
    },
    "ops-machine": {
        "validate": "Validate",
        "confirm": "Confirm token",
        "cool_off": "Cool off",
        "charge": "Charge",
    },
}


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, Catalog(KINDS))
    yield api
    api.close()


def _status(world: ApiWorld, run_id: str) -> str:
    status: str = world.get(f"/runs/{run_id}").json()["run"]["status"]
    return status


def _started(world: ApiWorld, workflow: str) -> str:
    run_id = world.start(workflow, ORDER)
    world.succeed(run_id, STEP[workflow]["validate"], VALIDATED)
    if workflow == "ops-machine":
        world.succeed(run_id, "Confirm", {"Entries": [{"EventId": "e-1"}]})  # the putEvents
    else:
        reply = world.post(f"/runs/{run_id}/steps/approve/decision", {"approved": True})
        assert reply.status == 200, reply.text
    return run_id


def _act(world: ApiWorld, run_id: str, workflow: str, step: str, action: str, body: Any) -> Any:
    """POST an action on ``step`` (by its role in ops: confirm, cool_off ...) of ``run_id``."""
    key = quote(STEP[workflow][step], safe="")
    return world.post(f"/runs/{run_id}/steps/{key}/{action}", body)


def _waiting_for(world: ApiWorld, run_id: str, key: str) -> str:
    record = world.step(run_id, key)
    assert record is not None, f"{key} has no record"
    return str(record.waiting_for)


def test_an_operator_approves_a_yaml_and_a_code_first_run(world: ApiWorld) -> None:
    for workflow in ("ops", "ops-code"):
        run_id = world.start(workflow, ORDER)
        world.succeed(run_id, "validate", VALIDATED)
        assert _waiting_for(world, run_id, "approve") == "approval"
        reply = world.post(
            f"/runs/{run_id}/steps/approve/decision", {"approved": True, "comment": "ok"}
        )
        assert reply.status == 200, (workflow, reply.text)
        assert reply.json()["step_status"] == "succeeded"
        # The run goes on: the code (or the definition) waits for the partner now.
        assert _waiting_for(world, run_id, "confirm") == "callback", workflow
        again = world.post(f"/runs/{run_id}/steps/approve/decision", {"approved": False})
        assert again.status == 409 and "not waiting for an approval" in again.json()["message"]


def test_a_machine_has_no_approval_to_decide_and_says_so(world: ApiWorld) -> None:
    run_id = _started(world, "ops-machine")
    reply = world.post(f"/runs/{run_id}/steps/Confirm%20token/decision", {"approved": True})
    assert reply.status == 409, reply.text
    assert "not waiting for an approval" in reply.json()["message"]


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_an_operator_answers_the_callback_of_every_kind(world: ApiWorld, workflow: str) -> None:
    run_id = _started(world, workflow)
    step = STEP[workflow]["confirm"]
    assert _waiting_for(world, run_id, step) == "callback"
    reply = _act(world, run_id, workflow, "confirm", "callback", {"status": "success", "output": 2})
    assert reply.status == 200, reply.text
    assert reply.json()["step_status"] == "succeeded"
    assert world.step(run_id, step).output == 2
    assert _waiting_for(world, run_id, STEP[workflow]["cool_off"]) == "delay"


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_an_operator_skips_a_wait_of_every_kind_and_the_run_goes_on(
    world: ApiWorld, workflow: str
) -> None:
    run_id = _started(world, workflow)
    _act(world, run_id, workflow, "confirm", "callback", {"status": "success", "output": 1})
    # Skipped with an output, a step counts as done and what follows runs.
    reply = _act(world, run_id, workflow, "cool_off", "skip", {"output": {}, "reason": "rush"})
    assert reply.status == 200, reply.text
    assert reply.json()["step_status"] == "succeeded"
    skipped = [e for e in world.timeline(run_id) if e.type == "step_skipped"]
    assert ["rush" in e.message for e in skipped] == [True]
    charge = world.step(run_id, STEP[workflow]["charge"])
    assert charge is not None and charge.status == "running", workflow


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_an_operator_retries_the_failed_step_of_every_kind_and_the_run_succeeds(
    world: ApiWorld, workflow: str
) -> None:
    run_id = _started(world, workflow)
    _act(world, run_id, workflow, "confirm", "callback", {"status": "success", "output": 1})
    _act(world, run_id, workflow, "cool_off", "skip", {"output": {}})
    charge = STEP[workflow]["charge"]
    world.fail(run_id, charge, "PaymentDeclinedTemporarily")
    assert _status(world, run_id) == "failed"

    reply = world.post(f"/runs/{run_id}/steps/{charge}/retry", {"reason": "issuer is back"})
    assert reply.status == 200, reply.text
    assert reply.json()["status"] == "running" and reply.json()["step_status"] == "running"
    assert world.attempt(run_id, charge).attempt == 2
    world.succeed(run_id, charge, {"charge_id": "ch-1", "amount": 240.0})
    assert _status(world, run_id) == "succeeded"
    detail = world.get(f"/runs/{run_id}").json()
    if workflow == "ops-code":
        assert detail["run"]["output"] == {"charge_id": "ch-1", "confirmation": 1}


@pytest.mark.parametrize("workflow", WORKFLOWS)
def test_the_payload_route_serves_the_steps_of_every_kind(world: ApiWorld, workflow: str) -> None:
    run_id = _started(world, workflow)
    step = STEP[workflow]["validate"]
    reply = world.get(f"/runs/{run_id}/steps/{step}/payload/output")
    assert reply.status == 200, reply.text
    assert json.loads(reply.text) == VALIDATED
    assert world.get(f"/runs/{run_id}/steps/{step}/payload/input").json() == ORDER


@pytest.mark.parametrize("workflow", ["ops-code", "ops-machine"])
def test_the_replay_and_steps_not_reached_are_no_steps_of_a_code_first_run(
    world: ApiWorld, workflow: str
) -> None:
    run_id = _started(world, workflow)
    for action, body in [("skip", {}), ("retry", {}), ("callback", {"status": "success"})]:
        replay = world.post(f"/runs/{run_id}/steps/%24workflow/{action}", body)
        assert replay.status == 404 and "not a step" in replay.json()["message"], replay.text
        later = world.post(f"/runs/{run_id}/steps/{STEP[workflow]['charge']}/{action}", body)
        assert later.status == 404 and "has not reached" in later.json()["message"], later.text
    assert world.get(f"/runs/{run_id}/steps/%24workflow/payload/output").status == 404


def test_a_skip_says_first_which_steps_it_skips_and_with_an_output_runs_them(
    world: ApiWorld,
) -> None:
    run_id = _started(world, "ops")
    _act(world, run_id, "ops", "confirm", "callback", {"status": "success", "output": 1})
    preview = _act(world, run_id, "ops", "cool_off", "skip", {"dry_run": True})
    assert preview.status == 200, preview.text
    assert preview.json()["skips"] == ["charge"]
    assert "also skips charge (give an output to run what follows)" in preview.json()["message"]
    assert world.step(run_id, "cool_off").status == "waiting"  # a preview changes nothing
    with_output = _act(world, run_id, "ops", "cool_off", "skip", {"output": {}, "dry_run": True})
    assert (
        with_output.json()["skips"] == [] and "what follows runs" in with_output.json()["message"]
    )

    done = _act(world, run_id, "ops", "cool_off", "skip", {"reason": "no charge today"})
    assert done.json()["skips"] == ["charge"]
    assert done.json()["message"] == "step cool_off skipped; skipped with it: charge"
    assert world.step(run_id, "charge").status == "skipped"


@pytest.mark.parametrize("workflow", ["ops-code", "ops-machine"])
def test_a_skipped_step_of_a_code_first_run_hands_the_code_null(
    world: ApiWorld, workflow: str
) -> None:
    run_id = _started(world, workflow)
    preview = _act(world, run_id, workflow, "confirm", "skip", {"dry_run": True})
    assert (
        preview.json()["skips"] == [] and "the code goes on with null" in preview.json()["message"]
    )
    assert _act(world, run_id, workflow, "confirm", "skip", {}).status == 200
    assert _waiting_for(world, run_id, STEP[workflow]["cool_off"]) == "delay"


@pytest.mark.parametrize("workflow", ["ops-code", "ops-machine"])
def test_a_retried_step_s_result_counts_where_the_run_was_last_seen_ended(
    world: ApiWorld, workflow: str
) -> None:
    """Another container (the step's runner) saw the run fail and kept it so; the retry is
    decided by the API. The retried attempt's result reaching that container still counts."""
    from stepwell.engine.events import StepFailed, StepSucceeded
    from stepwell.runtime.orchestrator import Orchestrator

    runner = Orchestrator(
        world.store, world.orchestrator.ports, world.clock, world.runtime.workflows.get
    )
    run_id = _started(world, workflow)
    _act(world, run_id, workflow, "confirm", "callback", {"status": "success", "output": 1})
    _act(world, run_id, workflow, "cool_off", "skip", {"output": {}})
    charge = STEP[workflow]["charge"]
    first = world.attempt(run_id, charge)
    runner.handle(
        run_id, StepFailed(charge, 1, "PaymentDeclinedTemporarily", "later", token=first.token)
    )
    world.play(runner)  # the replay that fails the run answers there too
    assert _status(world, run_id) == "failed"
    assert world.post(f"/runs/{run_id}/steps/{charge}/retry").status == 200
    second = world.attempt(run_id, charge)
    runner.handle(run_id, StepSucceeded(charge, 2, {"charge_id": "ch-2"}, token=second.token))
    world.play(runner)
    assert world.step(run_id, charge).status == "succeeded"
    assert _status(world, run_id) == "succeeded"
