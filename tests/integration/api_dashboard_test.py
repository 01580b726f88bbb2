"""What the dashboard reads beyond runs and steps, through the API's Lambda handler (moto): a
workflow's kind and whole graph, why a step waits, a fan-out's children by status, and where a
step attempt's log lines are."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any
from urllib.parse import unquote

import pytest

from helpers.apigw import KINDS, ApiWorld, api_workflows
from stepwell.catalog import Catalog
from stepwell.local.logs import LogBook
from stepwell.runtime.aws.logs import InsightsLinks


@pytest.fixture
def world(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, api_workflows())
    yield api
    api.close()


@pytest.fixture
def kinds(store: Any) -> Iterator[ApiWorld]:
    api = ApiWorld(store, Catalog(KINDS))
    yield api
    api.close()


def _edges(graph: dict[str, Any]) -> set[tuple[str, str, str]]:
    return {(e["source"], e["target"], e["kind"]) for e in graph["edges"]}


def test_each_workflow_says_its_kind(kinds: ApiWorld) -> None:
    listed = {w["name"]: w for w in kinds.get("/workflows").json()["workflows"]}
    assert {name: w["kind"] for name, w in listed.items()} == {
        "ops": "yaml",
        "ops-code": "code",
        "ops-machine": "asl",
    }
    assert listed["ops-machine"]["steps"] == 0 and listed["ops"]["steps"] == 5


def test_a_machine_graph_has_every_state_its_transitions_and_its_catch_routes(
    kinds: ApiWorld,
) -> None:
    graph = kinds.get("/workflows/ops-machine").json()["graph"]
    nodes = {n["id"]: n for n in graph["nodes"]}
    assert list(nodes) == ["Validate", "Confirm", "Cool off", "Charge", "Declined"]
    assert nodes["Confirm"]["names"] == ["Confirm", "Confirm token"]
    assert nodes["Validate"]["start"] and nodes["Declined"]["end"] and nodes["Charge"]["end"]
    assert (
        nodes["Declined"]["error"] == "OrderDeclined"
        and nodes["Wait" if False else "Cool off"]["kind"] == "Wait"
    )
    assert _edges(graph) == {
        ("Validate", "Confirm", "next"),
        ("Confirm", "Cool off", "next"),
        ("Cool off", "Charge", "next"),
        ("Charge", "Declined", "catch"),
    }
    assert kinds.get("/workflows/ops-code").json()["graph"] == {"nodes": [], "edges": []}


def test_a_yaml_graph_draws_catch_routes_and_compensations_apart_from_dependencies(
    world: ApiWorld,
) -> None:
    saga = world.get("/workflows/order-saga").json()["graph"]
    assert [n["id"] for n in saga["nodes"]] == [
        "reserve",
        "reserve:compensate",
        "charge",
        "charge:compensate",
        "ship",
    ]
    assert {n["id"]: n["kind"] for n in saga["nodes"]}["reserve"] == "for_each"
    assert ("charge", "charge:compensate", "compensate") in _edges(saga)
    assert ("charge", "ship", "depends_on") in _edges(saga)
    checkout = world.get("/workflows/checkout").json()
    catches = {(s, t) for s, t, kind in _edges(checkout["graph"]) if kind == "catch"}
    assert catches and all(t in checkout["upstream"] for _, t in catches)


def test_a_running_attempt_says_when_its_lease_runs_out_and_a_retrying_one_why_and_when(
    world: ApiWorld,
) -> None:
    run_id = world.start(
        "order-saga",
        {
            "order_id": "o",
            "customer": "a@b.co",
            "card": "1",
            "country": "FR",
            "items": [{"sku": "A", "qty": 1, "price": 1}],
        },
    )
    world.succeed(run_id, "reserve[0]", {"reservation_id": "r"})
    steps = {s["key"]: s for s in world.get(f"/runs/{run_id}").json()["steps"]}
    charge = steps["charge"]
    started = charge["attempt_started_at"]
    assert started is not None
    assert charge["lease_expires_at"] is not None and charge["lease_expires_at"] > started
    assert steps["reserve"]["lease_expires_at"] is None  # a fan-out's due time is its watch
    world.clock.advance(timedelta(seconds=3))
    world.fail(run_id, "charge", "PaymentDeclinedTemporarily", retryable=True)
    charge = next(s for s in world.get(f"/runs/{run_id}").json()["steps"] if s["key"] == "charge")
    assert charge["status"] == "retrying" and charge["waiting_for"] == "retry"
    assert charge["error"]["type"] == "PaymentDeclinedTemporarily"
    assert charge["due_at"] is not None and charge["lease_expires_at"] is None


def test_children_are_filtered_by_status_a_bounded_window_at_a_time(world: ApiWorld) -> None:
    run_id = world.start("fan", {"items": list(range(1500))})
    world.succeed(run_id, "each[0]", {"ok": 0})  # max_parallel 2: each[2] starts
    base = f"/runs/{run_id}/steps/each/children"
    done = world.get(base, query={"status": "succeeded"}).json()
    assert [(c["key"], c["output"]) for c in done["children"]] == [("each[0]", {"ok": 0})]
    assert done["cursor"] == "1000"  # read 1,000 children at most, then say where it stopped
    rest = world.get(base, query={"status": "succeeded", "cursor": done["cursor"]}).json()
    assert rest["children"] == [] and rest["cursor"] is None
    running = world.get(base, query={"status": "running", "limit": "5"}).json()
    assert [c["key"] for c in running["children"]] == ["each[1]", "each[2]"]
    pending = world.get(base, query={"status": "pending", "limit": "2"}).json()
    assert [c["key"] for c in pending["children"]] == ["each[3]", "each[4]"]
    assert pending["cursor"] == "5"
    assert world.get(base, query={"status": "lost"}).status == 422


def test_a_step_attempt_s_logs_are_its_lines_here_or_a_link_to_cloudwatch(
    world: ApiWorld,
) -> None:
    run_id = world.start("simple", {"n": 1})
    route = f"/runs/{run_id}/steps/work/logs"
    assert world.get(route).json()["lines"] is None  # no logs known to this API
    book = LogBook(world.clock.now)
    book.add((run_id, "work", 1), {"level": "INFO", "message": "charging", "service": "shop"})
    book.add((run_id, "other", 1), {"level": "INFO", "message": "not this one"})
    world.runtime.logs = book
    lines = world.get(route).json()["lines"]
    assert [(line["level"], line["message"], line["source"]) for line in lines] == [
        ("INFO", "charging", "shop")
    ]
    assert world.get(route, query={"attempt": "2"}).status == 404
    assert world.get(f"/runs/{run_id}/steps/next/logs").status == 404  # not started

    world.runtime.logs = InsightsLinks("eu-west-1", "/aws/lambda/shop")
    answer = world.get(route).json()
    assert answer["lines"] is None and "log group /aws/lambda/shop" in answer["where"]
    link = answer["link"]
    assert link.startswith("https://eu-west-1.console.aws.amazon.com/cloudwatch/home")
    state = unquote(link.split("#", 1)[1].replace("$", "%").replace("*", "%"))
    assert f'run_id = "{run_id}" and step_id = "work" and attempt = 1' in state
    assert "source~(~'/aws/lambda/shop~'/aws/lambda/" in state and "timeType~'ABSOLUTE" in state
