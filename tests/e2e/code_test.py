"""Code-first workflows through the local stack: the release and the order twin, by HTTP and
the bus only, with the approval decided through its signed link."""

from __future__ import annotations

from e2e_helpers import ORDER, SMALL_ORDER, approval_requested, finished, steps_of, timeline_types

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

RELEASE = {"service": "checkout", "ref": "v2.4.0", "approver": "lead@example.com"}


def test_the_release_runs_through_checks_approval_deploy_and_bake(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():
        started = api.start_run("release", RELEASE)
        assert started.status == 201, started.text
        run_id = started.body["run_id"]
        approval = approval_requested(stack, run_id)
        (link,) = approval["links"]
        assert link["approver"] == "lead@example.com"
        assert "3/3 check suites passed" in approval["message"]
        assert api.decide(link["approve_url"], "approve", "ship it").status == 200

    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["released"] is True and run["output"]["healthy"] is True
    assert run["output"]["notes"] == "v2.4.0: 3/3 check suites passed"
    kinds = {key: step["kind"] for key, step in steps.items() if step["kind"]}
    assert kinds["build"] == "task" and kinds["notes"] == "step" and kinds["bake"] == "delay"
    assert kinds["approve"] == "approval" and kinds["verify"] == "task"
    suites = [key for key in steps if steps[key]["name"] in ("unit", "integration", "security")]
    assert len(suites) == 3
    for key in suites:  # each branch of the parallel drew its edge from the build
        assert steps[key]["after"] == ["build"]
    assert steps["deploy"]["after"] == ["approve"]
    types = timeline_types(api, run_id)
    # The timeline shows the steps the code reached (its replays are Stepwell's machinery).
    assert "step_dispatched" in types and "step_delay_started" in types


def test_a_rejected_release_returns_without_deploying(stack: LocalStack, api: Client) -> None:
    with stack.hold():
        run_id = api.start_run("release", {**RELEASE, "ref": "v2.4.1"}).body["run_id"]
        (link,) = approval_requested(stack, run_id)["links"]
        assert api.decide(link["reject_url"], "reject", "not today").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert detail["run"]["output"]["released"] is False
    assert "deploy" not in steps_of(detail)


def test_the_order_twin_reserves_every_line_and_retries_the_charge(
    stack: LocalStack, api: Client
) -> None:
    run_id = api.start_run("order-fulfilment-code", SMALL_ORDER).body["run_id"]
    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["total"] == 50.0 and len(run["output"]["reservations"]) == 1
    assert steps["charge"]["attempt"] == 2  # declined once, retried with backoff
    assert "approve" not in steps  # a small order needs no approval: the code skipped it


def test_a_large_order_twin_waits_for_finance_and_is_approved_by_link(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():
        order = {**ORDER, "order_id": "o-code-1"}
        run_id = api.start_run("order-fulfilment-code", order).body["run_id"]
        (link,) = approval_requested(stack, run_id)["links"]
        assert api.decide(link["approve_url"], "approve").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    assert len(detail["run"]["output"]["reservations"]) == 3
    announced = stack.events("order.fulfilled")
    assert any(e["detail"]["order_id"] == "o-code-1" for e in announced)


def test_a_code_first_run_can_be_cancelled_while_it_waits(stack: LocalStack, api: Client) -> None:
    with stack.hold():
        run_id = api.start_run("release", {**RELEASE, "ref": "v9"}).body["run_id"]
        approval_requested(stack, run_id)
        assert api.post(f"/runs/{run_id}/cancel").status in (200, 202)
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "cancelled"
    assert steps_of(detail)["approve"]["status"] == "cancelled"


def test_the_api_lists_code_first_workflows_beside_yaml_ones(api: Client) -> None:
    listed = {w["name"]: w for w in api.get("/workflows").body["workflows"]}
    assert listed["release"]["code"] == "release.py:release"
    assert listed["order-fulfilment"]["code"] is None


def test_a_callback_created_first_is_answered_through_the_url_it_handed_out(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():
        run_id = api.start_run("callback-later", {}).body["run_id"]
        asked = stack.wait_for_event(
            lambda e: (
                e["detail-type"] == "export.requested"
                and e["detail"].get("callback", "").startswith(f"{stack.url}/callbacks/")
            )
        )
        assert asked is not None
        url = asked["detail"]["callback"]
        opened = stack.wait_for_event(
            lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id
        )
        assert opened is not None and opened["detail"]["url"] == url  # one link, not two
        answer = api.post(url, {"status": "success", "output": {"rows": 3}})
        assert answer.status in (200, 202), answer.text
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    assert detail["run"]["output"] == {"report": {"rows": 3}, "url": url}


def test_a_child_block_and_a_batch_fan_out_run_through_the_stack(
    stack: LocalStack, api: Client
) -> None:
    run_id = api.start_run("blocks", {**ORDER, "order_id": "o-blocks"}).body["run_id"]
    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["total"] == 1255.0
    assert run["output"]["reason"] == "min_successful_reached"
    assert run["output"]["statuses"].count("succeeded") >= 2
    assert steps["checks"]["status"] == "succeeded"  # the block's one record
    assert steps["checks"]["output"]["total"] == 1255.0


def test_continue_as_new_goes_on_in_linked_runs_until_the_loop_ends(
    stack: LocalStack, api: Client
) -> None:
    run_id = api.start_run("pages", {"pages": 5}).body["run_id"]
    chain = [finished(stack, api, run_id)["run"]]
    while "continued_as_new" in (chain[-1]["output"] or {}):
        following = chain[-1]["output"]["continued_as_new"]
        detail = finished(stack, api, following)
        assert detail["run"]["continued_from"] == chain[-1]["id"]
        chain.append(detail["run"])
    assert [r["status"] for r in chain] == ["succeeded"] * 3  # 2 + 2 + 1 pages
    assert chain[-1]["output"] == {"pages": 5}
    assert chain[-1]["input"] == {"pages": 5, "count": 4}


def test_wait_for_condition_polls_on_one_record_through_the_stack(
    stack: LocalStack, api: Client
) -> None:
    run_id = api.start_run("poll-until", {}).body["run_id"]
    detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "succeeded", run
    assert run["output"]["state"] == "DONE"
    assert set(steps) == {"$workflow", "job_done", "report"}  # one record for every check
    assert steps["job_done"]["attempt"] == 2  # two checks not met before the third
    waits = [e for e in api.timeline(run_id) if e["type"] == "condition_waiting"]
    assert [e["data"]["checks"] for e in waits] == [1, 2]


def test_a_cancel_reaches_the_code_which_cleans_up_before_the_run_ends(
    stack: LocalStack, api: Client
) -> None:
    with stack.hold():
        run_id = api.start_run("tidy-on-cancel", {}).body["run_id"]
        assert stack.run_until(
            lambda: steps_of(api.run(run_id)).get("wait", {}).get("status") == "waiting", 30
        )
        assert api.post(f"/runs/{run_id}/cancel", {"reason": "not needed"}).status == 200
        detail = finished(stack, api, run_id)
    run, steps = detail["run"], steps_of(detail)
    assert run["status"] == "cancelled", run
    assert "not needed" in run["error"]["message"]
    assert steps["wait"]["status"] == "cancelled"
    assert steps["tidy_up"]["status"] == "succeeded"  # the clean-up step ran
    (tidied,) = [e for e in stack.events("job.tidied") if "not needed" in e["detail"]["why"]]
    assert tidied
