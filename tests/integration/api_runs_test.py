"""The run routes through the API's Lambda handler, on the DynamoDB store (moto)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from typing import Any

import botocore.client
import pytest

from helpers.apigw import ApiWorld, api_workflows
from stepwell.definition.models import Workflow


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


def error_of(response: Any, status: int) -> dict[str, Any]:
    """The error body, after checking the status and its shape."""
    assert response.status == status, response.text
    body = response.json()
    assert set(body) == {"error", "message", "details"}, body
    assert "Traceback" not in response.text
    return body  # type: ignore[no-any-return]


# -- POST /workflows/{name}/runs ---------------------------------------------------------------
def test_start_returns_201_with_the_run_and_its_location(world: ApiWorld) -> None:
    response = world.post("/workflows/simple/runs", {"input": {"n": 3}, "labels": {"team": "a"}})
    assert response.status == 201
    body = response.json()
    assert body["workflow"] == "simple" and body["status"] == "running"
    assert response.headers["Location"] == f"/runs/{body['run_id']}"
    run = world.store.get_run(body["run_id"])
    assert run is not None and run.input == {"n": 3} and run.labels == {"team": "a"}
    assert world.attempt(body["run_id"], "work").input == {"n": 3}


def test_a_start_reads_the_workflows_registration_once(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The API checks the input against the definition it read; the start must not read it again.
    keys: list[str] = []
    call = botocore.client.BaseClient._make_api_call

    def counted(client: Any, operation: str, params: dict[str, Any]) -> Any:
        if operation == "GetItem":
            keys.append(json.dumps(params.get("Key")))
        return call(client, operation, params)

    monkeypatch.setattr(botocore.client.BaseClient, "_make_api_call", counted)
    response = world.post("/workflows/simple/runs", {"input": {"n": 3}})
    assert response.status == 201, response.text
    assert len([key for key in keys if "WORKFLOWS" in key]) == 1, keys


def test_start_checks_the_input_schema_and_lists_every_problem(world: ApiWorld) -> None:
    response = world.post("/workflows/simple/runs", {"input": {"n": -1, "who": 5}})
    body = error_of(response, 422)
    paths = {d["path"] for d in body["details"]}
    assert paths == {"/n", "/who"}
    assert "simple's input_schema" in body["message"]


def test_start_checks_formats_of_the_schema(world: ApiWorld) -> None:
    order = {"order_id": "o-1", "customer": "not-an-email", "items": []}
    body = error_of(world.post("/workflows/order-fulfilment/runs", {"input": order}), 422)
    assert {d["rule"] for d in body["details"]} == {"format", "minItems"}


def test_start_of_an_unknown_workflow_is_404(world: ApiWorld) -> None:
    body = error_of(world.post("/workflows/nope/runs", {"input": {}}), 404)
    assert "nope" in body["message"]


def test_start_of_a_workflow_closed_to_http_is_403(world: ApiWorld) -> None:
    error_of(world.post("/workflows/no-http/runs", {}), 403)


def test_start_without_a_body_starts_with_no_input(world: ApiWorld) -> None:
    response = world.call("POST", "/workflows/fan/runs")
    assert response.status == 201


@pytest.mark.parametrize(
    ("body", "where"),
    [
        ({"input": {}, "unknown": 1}, "unknown"),
        ({"dry_run": "maybe"}, "dry_run"),
        ({"labels": {"k": 1}}, "labels"),
        ([1, 2], "body"),
    ],
)
def test_start_with_a_body_of_the_wrong_shape_is_422(
    world: ApiWorld, body: Any, where: str
) -> None:
    details = error_of(world.post("/workflows/simple/runs", body), 422)["details"]
    assert any(where in d["loc"] for d in details), details


def test_malformed_json_is_422(world: ApiWorld) -> None:
    for text in ["{", '{"input": NaN}', "[" * 5000 + "]" * 5000, '{"input": 1' + "0" * 5000 + "}"]:
        error_of(world.post("/workflows/simple/runs", text), 422)


def test_an_oversized_body_is_413(world: ApiWorld) -> None:
    big = {"input": {"n": 1, "who": "x" * (256 * 1024)}}
    error_of(world.post("/workflows/simple/runs", big), 413)
    error_of(world.post("/workflows/simple/runs", big, base64_body=True), 413)


def test_a_base64_body_is_decoded_and_bad_base64_or_utf8_is_422(world: ApiWorld) -> None:
    ok = world.post("/workflows/simple/runs", {"input": {"n": 1}}, base64_body=True)
    assert ok.status == 201
    error_of(world.post("/workflows/simple/runs", b"\xff\xfe{}", base64_body=True), 422)
    event_body = world.call("POST", "/workflows/simple/runs", body="%%%", base64_body=False)
    assert event_body.status == 422


def test_a_body_of_another_content_type_is_415(world: ApiWorld) -> None:
    response = world.post("/workflows/simple/runs", "n=1", headers={"content-type": "text/plain"})
    error_of(response, 415)


def test_a_form_body_starts_no_run_415(world: ApiWorld) -> None:
    form = {"content-type": "application/x-www-form-urlencoded"}
    response = world.post("/workflows/simple/runs", "input=1", headers=form)
    assert "only approvals take a form" in error_of(response, 415)["message"]
    assert world.store.runs("simple").items == []


def test_a_lone_surrogate_in_the_input_is_422_not_a_500(world: ApiWorld) -> None:
    body = '{"input": {"name": "\\ud800"}}'
    response = world.post(
        "/workflows/simple/runs", body, headers={"content-type": "application/json"}
    )
    assert "lone UTF-16 surrogate" in error_of(response, 422)["message"]
    pair = '{"input": {"n": 1, "name": "\\ud83d\\ude00"}}'  # both halves: an emoji, fine
    assert (
        world.post(
            "/workflows/simple/runs", pair, headers={"content-type": "application/json"}
        ).status
        == 201
    )


@pytest.mark.parametrize("value", ["yes", 1, "true"])
def test_dry_run_must_be_a_boolean(world: ApiWorld, value: Any) -> None:
    response = world.post("/workflows/simple/runs", {"input": {"n": 1}, "dry_run": value})
    details = error_of(response, 422)
    assert "dry_run" in json.dumps(details)


def test_idempotency_key_returns_the_same_run_and_409_for_another_body(
    world: ApiWorld, scan: Any
) -> None:
    first = world.post(
        "/workflows/simple/runs", {"input": {"n": 1}}, headers={"Idempotency-Key": "k-1"}
    )
    again = world.post(
        "/workflows/simple/runs", {"input": {"n": 1}}, headers={"Idempotency-Key": "k-1"}
    )
    assert first.status == again.status == 201
    assert first.json() == again.json()
    assert len(world.store.runs("simple").items) == 1
    other = world.post(
        "/workflows/simple/runs", {"input": {"n": 2}}, headers={"Idempotency-Key": "k-1"}
    )
    assert "Idempotency-Key" in error_of(other, 409)["message"]
    fresh = world.post(
        "/workflows/simple/runs", {"input": {"n": 2}}, headers={"Idempotency-Key": "k-2"}
    )
    assert fresh.json()["run_id"] != first.json()["run_id"]
    # The key is per workflow, and its record lives 24 hours in the same table (TTL).
    elsewhere = world.post(
        "/workflows/fan/runs", {"input": {"items": []}}, headers={"Idempotency-Key": "k-1"}
    )
    assert elsewhere.status == 201
    records = [i for i in scan() if i["pk"]["S"] == "IDEMPOTENCY#start-run"]
    assert len(records) == 3
    for record in records:
        assert record["status"]["S"] == "COMPLETED"
        assert 23 * 3600 < int(record["expires_at"]["N"]) - _now_s() <= 24 * 3600 + 60


def test_a_retry_with_the_same_idempotency_key_after_an_error_starts_no_second_run(
    world: ApiWorld,
) -> None:
    from helpers.faults import DynamoFaults, internal

    faults = DynamoFaults()
    faults.attach(world.store.client)
    # The run is written; reading anything back fails for a while (each time it is sent), so
    # the client sees an error.
    for _ in range(100):
        faults.next("GetItem", internal)
    failed = world.post(
        "/workflows/simple/runs", {"input": {"n": 1}}, headers={"Idempotency-Key": "k-retry"}
    )
    assert failed.status >= 500
    faults.clear()  # DynamoDB answers again
    again = world.post(
        "/workflows/simple/runs", {"input": {"n": 1}}, headers={"Idempotency-Key": "k-retry"}
    )
    assert again.status == 201, again.text
    assert [r.id for r in world.store.runs("simple").items] == [again.json()["run_id"]]


def _now_s() -> int:
    from stepwell.runtime.clock import SystemClock

    return int(SystemClock().now().timestamp())


def test_idempotency_key_must_be_printable(world: ApiWorld) -> None:
    response = world.post(
        "/workflows/simple/runs", {"input": {"n": 1}}, headers={"Idempotency-Key": "a b"}
    )
    error_of(response, 422)


# -- GET /workflows ----------------------------------------------------------------------------
def test_workflows_lists_every_workflow_with_its_triggers(world: ApiWorld) -> None:
    body = world.get("/workflows").json()
    names = [w["name"] for w in body["workflows"]]
    assert names == sorted(names) and "order-fulfilment" in names
    order = next(w for w in body["workflows"] if w["name"] == "order-fulfilment")
    assert order["triggers"]["events"] == [{"source": ["shop"], "detail-type": ["order.placed"]}]


def test_workflow_shows_its_definition_and_versions(world: ApiWorld) -> None:
    body = world.get("/workflows/simple").json()
    assert body["definition"]["steps"]["work"]["function"] == "WorkFunction"
    assert body["input_schema"]["required"] == ["n"]
    assert body["versions"] == [body["version"]]
    error_of(world.get("/workflows/nope"), 404)


def test_workflow_versions_include_those_runs_pinned(world: ApiWorld) -> None:
    old = world.runtime.workflows.get("simple")
    assert old is not None
    world.start("simple", {"n": 1})
    changed = Workflow.model_validate({**old.model_dump(mode="json"), "description": "changed"})
    world.runtime.workflows.publish(changed, "tests", "tests")
    body = world.get("/workflows/simple").json()
    assert body["versions"][0] == changed.version
    assert old.version in body["versions"]


# -- GET /runs ---------------------------------------------------------------------------------
def test_runs_are_listed_newest_first_in_pages(world: ApiWorld) -> None:
    ids = []
    for n in range(5):
        ids.append(world.start("simple", {"n": n}))
        world.clock.advance(_seconds(1))
    first = world.get("/runs", query={"workflow": "simple", "limit": "2"}).json()
    seen = [r["id"] for r in first["runs"]]
    cursor = first["cursor"]
    while cursor:
        page = world.get("/runs", query={"workflow": "simple", "limit": "2", "cursor": cursor})
        seen += [r["id"] for r in page.json()["runs"]]
        cursor = page.json()["cursor"]
    assert seen == list(reversed(ids))


def test_runs_by_status_and_by_both(world: ApiWorld) -> None:
    done = world.start("simple", {"n": 1})
    world.post(f"/runs/{done}/cancel")
    running = world.start("simple", {"n": 2})
    by_status = world.get("/runs", query={"status": "cancelled"}).json()["runs"]
    assert [r["id"] for r in by_status] == [done]
    both = world.get("/runs", query={"workflow": "simple", "status": "running"}).json()["runs"]
    assert [r["id"] for r in both] == [running]


def test_runs_need_valid_filter_values(world: ApiWorld) -> None:
    error_of(world.get("/runs", query={"status": "sleeping"}), 422)
    error_of(world.get("/runs", query={"workflow": "simple", "limit": "0"}), 422)
    error_of(world.get("/runs", query={"workflow": "nope"}), 404)


@pytest.mark.parametrize(
    "cursor",
    [
        "not-a-cursor",
        "eyJrIjoiYnlfd29ya2Zsb3ciLCJzIjoiV0Yjc2ltcGxlIiwicCI6NX0",  # {"k":..,"p":5}
        "eyJrIjoiYnlfc3RhdHVzIiwicyI6IlNUI3J1bm5pbmciLCJwIjp7fX0",  # another listing's
    ],
)
def test_a_cursor_that_was_not_given_out_is_422(world: ApiWorld, cursor: str) -> None:
    world.start("simple", {"n": 1})
    response = world.get("/runs", query={"workflow": "simple", "cursor": cursor})
    assert "cursor" in error_of(response, 422)["message"]


# -- GET /runs/{id}, timeline --------------------------------------------------------------------
def test_run_shows_the_run_and_its_steps_without_secrets(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", {"done": True})
    response = world.get(f"/runs/{run_id}")
    body = response.json()
    assert body["run"]["id"] == run_id and body["run"]["input"] == {"n": 1}
    assert [(s["key"], s["status"]) for s in body["steps"]] == [
        ("work", "succeeded"),
        ("next", "running"),
    ]
    assert body["steps"][0]["output"] == {"done": True}
    run = world.store.get_run(run_id)
    assert run is not None and run.nonce and run.nonce not in response.text
    assert world.attempt(run_id, "next").token not in response.text
    assert "nonce" not in body["run"] and "token" not in body["steps"][0]


def test_run_counts_for_each_children_on_their_step(world: ApiWorld) -> None:
    run_id = world.start("fan", {"items": [1, 2, 3]})
    world.succeed(run_id, "each[0]")
    steps = world.get(f"/runs/{run_id}").json()["steps"]
    assert [s["key"] for s in steps] == ["each"]
    assert steps[0]["items_total"] == 3 and steps[0]["children_succeeded"] == 1


def test_unknown_run_is_404_everywhere(world: ApiWorld) -> None:
    for method, path in [
        ("GET", "/runs/nope"),
        ("GET", "/runs/nope/timeline"),
        ("POST", "/runs/nope/cancel"),
        ("POST", "/runs/nope/steps/work/skip"),
        ("POST", "/runs/nope/steps/work/retry"),
    ]:
        error_of(world.call(method, path), 404)
    error_of(world.post("/runs/nope/rerun", {"from_step": "work"}), 404)


def test_an_overlong_run_id_is_422_not_a_store_error(world: ApiWorld) -> None:
    error_of(world.get("/runs/" + "x" * 3000), 422)


def test_timeline_pages_and_a_cursor_to_follow_with(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    first = world.get(f"/runs/{run_id}/timeline", query={"limit": "1"}).json()
    assert [e["type"] for e in first["entries"]] == ["run_started"]
    rest = world.get(f"/runs/{run_id}/timeline", query={"cursor": first["cursor"]}).json()
    assert [e["type"] for e in rest["entries"]] == ["step_dispatched"]
    assert rest["cursor"]
    world.succeed(run_id, "work")
    more = world.get(f"/runs/{run_id}/timeline", query={"cursor": rest["cursor"]}).json()
    assert [e["type"] for e in more["entries"]] == ["step_completed", "step_dispatched"]
    assert more["entries"][1]["step"] == "next"
    error_of(world.get(f"/runs/{run_id}/timeline", query={"cursor": "bad"}), 422)


# -- POST /runs/{id}/cancel ----------------------------------------------------------------------
def test_cancel_ends_the_run_and_notes_who_asked(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    response = world.post(f"/runs/{run_id}/cancel", {"reason": "wrong input"})
    assert response.status == 200 and response.json()["status"] == "cancelled"
    entry = next(e for e in world.timeline(run_id) if e.type == "cancel_requested")
    assert "wrong input" in entry.message and "assumed-role/operators/alice" in entry.message


def test_cancel_of_a_finished_run_is_409(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.post(f"/runs/{run_id}/cancel")
    assert "already ended" in error_of(world.post(f"/runs/{run_id}/cancel"), 409)["message"]
    error_of(world.post(f"/runs/{run_id}/cancel", {"reason": 7}), 422)


# -- POST /runs/{id}/rerun -----------------------------------------------------------------------
def test_rerun_starts_a_new_run_from_a_step(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", {"w": 1})
    world.fail(run_id, "next")
    response = world.post(f"/runs/{run_id}/rerun", {"from_step": "next", "dry_run": True})
    assert response.status == 201
    body = response.json()
    assert body["rerun_of"] == run_id and body["dry_run"] is True
    steps = {s["key"]: s for s in world.get(f"/runs/{body['run_id']}").json()["steps"]}
    assert steps["work"]["copied_from"] == run_id and steps["work"]["output"] == {"w": 1}


def test_rerun_with_new_input_checks_it(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    error_of(world.post(f"/runs/{run_id}/rerun", {"from_step": "work", "input": {"n": "x"}}), 422)
    ok = world.post(f"/runs/{run_id}/rerun", {"from_step": "work", "input": {"n": 5}})
    assert world.store.get_run(ok.json()["run_id"]).input == {"n": 5}  # type: ignore[union-attr]


def test_rerun_from_a_step_whose_ancestor_did_not_succeed_is_409(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    body = error_of(world.post(f"/runs/{run_id}/rerun", {"from_step": "next"}), 409)
    assert "rerun from 'work' instead" in body["message"]


def _compensated_saga(world: ApiWorld) -> str:
    """An order-saga run whose ship failed: the charge was refunded, the stock released."""
    order = {
        "order_id": "o-9",
        "customer": "ada@example.com",
        "card": "4242",
        "country": "AQ",
        "items": [{"sku": "A", "qty": 1, "price": 10.0}, {"sku": "B", "qty": 2, "price": 5.0}],
    }
    run_id = world.start("order-saga", order)
    for index in range(2):
        world.succeed(run_id, f"reserve[{index}]", {"reservation_id": f"r-{index}"})
    world.succeed(run_id, "charge", {"charge_id": "ch-9", "amount": 20.0})
    world.fail(run_id, "ship", "NoCarrier")
    world.succeed(run_id, "charge:compensate", {"refund_id": "re-9"})
    world.succeed(run_id, "reserve:compensate", {"released": ["r-0", "r-1"]})
    assert world.store.get_run(run_id).status == "failed"  # type: ignore[union-attr]
    return run_id


@pytest.mark.parametrize("dry_run", [False, True])
def test_a_rerun_never_copies_a_step_a_saga_undid(world: ApiWorld, dry_run: bool) -> None:
    run_id = _compensated_saga(world)
    body = {"from_step": "ship", "dry_run": dry_run}
    refused = error_of(world.post(f"/runs/{run_id}/rerun", body), 409)["message"]
    assert "its ancestor 'reserve' was undone" in refused
    assert "(reserve:compensate succeeded)" in refused and "rerun from 'reserve' instead" in refused
    charge = error_of(world.post(f"/runs/{run_id}/rerun", {**body, "from_step": "charge"}), 409)
    assert "rerun from 'reserve' instead" in charge["message"]

    undo = world.get(f"/runs/{run_id}/steps/charge:compensate/payload/output")
    assert undo.status == 200 and undo.json() == {"refund_id": "re-9"}
    assert world.get(f"/runs/{run_id}/steps/ship:compensate/payload/output").status == 404
    again = world.post(f"/runs/{run_id}/rerun", {**body, "from_step": "reserve"})
    assert again.status == 201, again.text
    steps = world.get(f"/runs/{again.json()['run_id']}").json()["steps"]
    assert [s["key"] for s in steps if s["copied_from"]] == []


def test_rerun_from_an_unknown_step_or_without_one_is_422(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    error_of(world.post(f"/runs/{run_id}/rerun", {"from_step": "nope"}), 422)
    error_of(world.post(f"/runs/{run_id}/rerun", {}), 422)


def test_rerun_pins_the_version_asked_for(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", {"w": 1})
    world.fail(run_id, "next")
    original = world.store.get_run(run_id)
    assert original is not None
    # A newer definition of the workflow, saved as a version (a later deployment).
    newer = api_workflows()["simple"].model_copy(update={"description": "v2"})
    world.store.save_definition(newer)
    assert newer.version != original.version
    pinned = world.post(f"/runs/{run_id}/rerun", {"from_step": "next", "version": newer.version})
    assert pinned.status == 201, pinned.text
    assert world.store.get_run(pinned.json()["run_id"]).version == newer.version  # type: ignore[union-attr]
    same = world.post(f"/runs/{run_id}/rerun", {"from_step": "next"})
    assert world.store.get_run(same.json()["run_id"]).version == original.version  # type: ignore[union-attr]
    unknown = error_of(
        world.post(f"/runs/{run_id}/rerun", {"from_step": "next", "version": "abc"}), 422
    )
    assert "no version 'abc'" in unknown["message"] and original.version in unknown["message"]


def test_rerun_from_a_step_the_chosen_version_lacks_is_422(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", {"w": 1})
    steps = {"work": {"function": "WorkFunction", "input": "${input}"}}
    shorter = api_workflows()["simple"].model_copy(update={"steps": {}})
    shorter = type(shorter).model_validate({**shorter.model_dump(mode="json"), "steps": steps})
    world.store.save_definition(shorter)
    body = {"from_step": "next", "version": shorter.version}
    refused = error_of(world.post(f"/runs/{run_id}/rerun", body), 422)
    assert f"(version {shorter.version}) has no step 'next'" in refused["message"]


# -- steps: retry and skip -----------------------------------------------------------------------
def test_retry_of_a_step_that_did_not_fail_is_409(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    body = error_of(world.post(f"/runs/{run_id}/steps/work/retry"), 409)
    assert "only a failed step" in body["message"]


def test_retry_of_a_failed_step_resumes_the_failed_run(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    world.fail(run_id, "work")
    assert world.store.get_run(run_id).status == "failed"  # type: ignore[union-attr]
    response = world.post(f"/runs/{run_id}/steps/work/retry", {"reason": "fixed the bug"})
    assert response.status == 200, response.text
    assert response.json()["status"] == "running"
    assert response.json()["step_status"] == "running"
    assert world.attempt(run_id, "work").attempt == 2
    world.succeed(run_id, "work")
    assert world.attempt(run_id, "next")
    entry = next(e for e in world.timeline(run_id) if "retry of work" in e.message)
    assert "alice (fixed the bug)" in entry.message
    error_of(world.post(f"/runs/{run_id}/steps/work/retry"), 409)


def test_retry_or_skip_of_an_unknown_step_is_404(world: ApiWorld) -> None:
    run_id = world.start("fan", {"items": [1]})
    for path in ["steps/nope/retry", "steps/nope/skip", "steps/each[x]/skip"]:
        error_of(world.post(f"/runs/{run_id}/{path}"), 404)


def test_skip_ends_an_open_step_with_the_given_output(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    response = world.post(f"/runs/{run_id}/steps/work/skip", {"output": {"manual": True}})
    assert response.status == 200
    assert response.json()["step_status"] == "succeeded"  # done by hand: the output goes on
    assert world.step(run_id, "work").output == {"manual": True}
    entry = next(e for e in world.timeline(run_id) if e.type == "step_skipped")
    assert "alice" in entry.message


def test_skip_of_a_for_each_child_by_its_encoded_key(world: ApiWorld) -> None:
    run_id = world.start("fan", {"items": [1, 2]})
    response = world.post(f"/runs/{run_id}/steps/each%5B1%5D/skip")
    assert response.status == 200, response.text
    assert world.step(run_id, "each[1]").status == "skipped"


def test_skip_of_a_step_that_ended_or_did_not_start_is_409(world: ApiWorld) -> None:
    run_id = world.start("simple", {"n": 1})
    error_of(world.post(f"/runs/{run_id}/steps/next/skip"), 409)
    world.succeed(run_id, "work")
    error_of(world.post(f"/runs/{run_id}/steps/work/skip"), 409)
    world.post(f"/runs/{run_id}/cancel")
    error_of(world.post(f"/runs/{run_id}/steps/next/skip"), 409)


# -- the rest ----------------------------------------------------------------------------------
def test_openapi_describes_every_route(world: ApiWorld) -> None:
    spec = world.get("/openapi.json").json()
    operations = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert operations == {
        ("GET", "/workflows"),
        ("GET", "/workflows/{name}"),
        ("PUT", "/workflows/{name}"),
        ("DELETE", "/workflows/{name}"),
        ("POST", "/workflows/{name}/runs"),
        ("GET", "/runs"),
        ("GET", "/runs/{run_id}"),
        ("GET", "/runs/{run_id}/timeline"),
        ("GET", "/runs/{run_id}/payload/{part}"),
        ("GET", "/runs/{run_id}/steps/{step}/payload/{part}"),
        ("POST", "/runs/{run_id}/cancel"),
        ("POST", "/runs/{run_id}/rerun"),
        ("POST", "/runs/{run_id}/steps/{step}/retry"),
        ("POST", "/runs/{run_id}/steps/{step}/skip"),
        ("POST", "/runs/{run_id}/steps/{step}/decision"),
        ("POST", "/runs/{run_id}/steps/{step}/callback"),
        ("POST", "/runs/{run_id}/steps/{step}/answer"),
        ("GET", "/inbox"),
        ("GET", "/runs/{run_id}/steps/{step}/children"),
        ("GET", "/runs/{run_id}/steps/{step}/logs"),
        ("GET", "/approvals/{token}"),
        ("POST", "/approvals/{token}"),
        ("GET", "/inputs/{token}"),
        ("POST", "/inputs/{token}"),
        ("POST", "/delegations/{token}"),
        ("POST", "/callbacks/{token}"),
        ("POST", "/tasks/success"),
        ("POST", "/tasks/failure"),
        ("POST", "/tasks/heartbeat"),
        ("POST", "/events"),
    }
    start = spec["paths"]["/workflows/{name}/runs"]["post"]
    assert start["security"] == [{"sigv4": []}, {"jwt": []}]
    assert "security" not in spec["paths"]["/approvals/{token}"]["post"]
    error_ref = start["responses"]["422"]["content"]["application/json"]["schema"]["$ref"]
    assert error_ref.endswith("/ErrorBody")


def test_template_routes_match_the_api(world: ApiWorld) -> None:
    from helpers.apigw import ROOT
    from stepwell.store.tables import load_template

    template = load_template(ROOT / "shared" / "stepwell" / "stack" / "template.yaml")
    events = template["Resources"]["ApiFunction"]["Properties"]["Events"]
    routes = {}
    for event in events.values():
        props = event["Properties"]
        routes[(props["Method"], props["Path"])] = (props.get("Auth") or {}).get("Authorizer")
    spec = world.get("/openapi.json").json()
    documented = {(method.upper(), path) for path, item in spec["paths"].items() for method in item}
    assert set(routes) == documented | {("GET", "/openapi.json")}
    for (method, path), authorizer in routes.items():
        public = path.startswith(
            ("/approvals/", "/inputs/", "/delegations/", "/callbacks/", "/tasks/")
        )
        # The API's DefaultAuthorizer is AWS_IAM: an open route must say NONE.
        assert authorizer == ("NONE" if public else "AWS_IAM"), (method, path)


def test_an_unknown_route_is_a_json_404_and_a_wrong_method_405(world: ApiWorld) -> None:
    error_of(world.get("/nothing/here"), 404)
    error_of(world.get("/runs/x/steps/y"), 404)
    response = world.call("DELETE", "/runs/x")
    error_of(response, 405)
    assert response.headers["Allow"] == "GET"
    assert world.get("/runs/x/cancel").headers["Allow"] == "POST"


def test_a_path_with_raw_non_ascii_bytes_is_a_404_that_says_to_encode_them(
    world: ApiWorld,
) -> None:
    # "é" sent as raw UTF-8 bytes, read as Latin-1 by an HTTP server: no route matches it.
    response = world.get("/runs/\u00c3\u00a9")
    body = error_of(response, 404)  # not "takes GET, not GET"
    assert "percent-encode" in body["message"]


def test_an_unexpected_error_is_a_500_without_internals(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("secret internals")

    monkeypatch.setattr(world.store, "get_run", broken)
    response = world.get("/runs/abc")
    body = error_of(response, 500)
    assert "secret internals" not in response.text and "Yq3bKjR0IAMEVdA=" in body["message"]


def _seconds(n: int) -> Any:
    from datetime import timedelta

    return timedelta(seconds=n)


def test_error_bodies_are_json_everywhere(world: ApiWorld) -> None:
    response = world.post("/workflows/simple/runs", "{")
    assert response.content_type == "application/json"
    assert json.loads(response.text)["error"] == "invalid"


BODY_ROUTES = [
    "/workflows/simple/runs",
    "/runs/{run}/cancel",
    "/runs/{run}/rerun",
    "/runs/{run}/steps/work/retry",
    "/runs/{run}/steps/work/skip",
    "/approvals/{token}",
    "/callbacks/{token}",
]


@pytest.mark.parametrize("route", BODY_ROUTES)
def test_every_route_with_a_body_refuses_413_and_415(world: ApiWorld, route: str) -> None:
    run_id = world.start("simple", {"n": 1})
    path = route.format(run=run_id, token="abc.def")
    error_of(world.post(path, {"input": "x" * (300 * 1024)}), 413)
    error_of(world.post(path, "x=1", headers={"content-type": "multipart/form-data"}), 415)
    if not route.startswith("/approvals"):  # approvals take forms too
        error_of(world.post(path, "x=1", headers={"content-type": "text/plain"}), 415)


def test_a_run_changing_too_fast_is_503(world: ApiWorld, monkeypatch: pytest.MonkeyPatch) -> None:
    from stepwell.store.port import Conflict

    run_id = world.start("simple", {"n": 1})

    def contended(*args: Any, **kwargs: Any) -> Any:
        raise Conflict("gave up after 100 conflicting commits")

    monkeypatch.setattr(world.orchestrator, "handle", contended)
    error_of(world.post(f"/runs/{run_id}/cancel"), 503)


def test_a_repeat_while_the_first_request_runs_answers_with_the_same_run(
    world: ApiWorld, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = world.orchestrator.start
    repeats: list[Any] = []
    body = {"input": {"n": 1}, "labels": {}, "dry_run": False}

    def start_and_repeat(*args: Any, **kwargs: Any) -> str:
        # The same request arrives again while the first one is still starting its run.
        if not repeats:
            repeats.append(None)
            headers = {"Idempotency-Key": "k-race"}
            repeats[0] = world.post("/workflows/simple/runs", body, headers=headers)
        return real(*args, **kwargs)

    monkeypatch.setattr(world.orchestrator, "start", start_and_repeat)
    first = world.post("/workflows/simple/runs", body, headers={"Idempotency-Key": "k-race"})
    assert first.status == 201 and repeats[0].status == 201, repeats[0].text
    assert repeats[0].json()["run_id"] == first.json()["run_id"]
    assert len(world.store.runs("simple").items) == 1


def test_a_key_whose_record_was_left_in_progress_starts_its_run_when_retried(
    world: ApiWorld,
) -> None:
    from helpers.faults import DynamoFaults, internal

    faults = DynamoFaults()
    faults.attach(world.store.client)
    # The run cannot be written, and the idempotency record's clean-up fails as well: the
    # record stays in progress (Powertools would answer "in progress" until it lapsed).
    for _ in range(100):
        faults.next("TransactWriteItems", internal)
    faults.next("DeleteItem", internal)
    headers = {"Idempotency-Key": "k-stuck"}
    failed = world.post("/workflows/simple/runs", {"input": {"n": 1}}, headers=headers)
    assert failed.status >= 500
    faults.clear()  # DynamoDB answers again: the client's next retry gets its run
    again = world.post("/workflows/simple/runs", {"input": {"n": 1}}, headers=headers)
    assert again.status == 201, again.text
    assert [r.id for r in world.store.runs("simple").items] == [again.json()["run_id"]]
    other = world.post("/workflows/simple/runs", {"input": {"n": 2}}, headers=headers)
    assert "Idempotency-Key" in error_of(other, 409)["message"]


def test_overlong_names_are_422(world: ApiWorld) -> None:
    error_of(world.get("/workflows/" + "w" * 65), 422)
    error_of(world.post("/workflows/" + "w" * 65 + "/runs", {}), 422)


def test_large_payloads_are_left_out_of_the_run_view_and_fetched_by_their_own_route(
    world: ApiWorld,
) -> None:
    big = {"blob": "x" * 200_000}
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work", big)
    world.succeed(run_id, "next", {"small": True})
    detail = world.get(f"/runs/{run_id}")
    assert detail.status == 200
    steps = {s["key"]: s for s in detail.json()["steps"]}
    work = steps["work"]
    assert work["output"] is None and work["output_bytes"] > 200_000
    assert work["output_url"] == f"/runs/{run_id}/steps/work/payload/output"
    assert steps["next"]["output"] == {"small": True} and steps["next"]["output_url"] is None
    assert len(detail.text) < 100_000  # the view stays small, whatever the payloads
    fetched = world.get(work["output_url"])
    assert fetched.status == 200 and fetched.json() == big
    run_input = world.get(f"/runs/{run_id}/payload/input")
    assert run_input.status == 200 and run_input.json() == {"n": 1}
    error_of(world.get(f"/runs/{run_id}/steps/work/payload/nope"), 422)
