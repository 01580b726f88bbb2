"""Every AWS call the template's functions make is allowed by their policies, and every action
their policies grant is needed.

The calls are not listed by hand: the local stack runs template.yaml's handlers on moto through
a tour that reaches every function and every kind of work (the API starting runs, making
approval links and acting on runs; step functions fanning out; the scheduler's timers and
sweep; the runner's http, agent and notify steps; a trigger; a callback; a child run), and a
recorder notes each call with the function that made it. Each call is then checked against the
function's role as the SAM transform generates it (tests/helpers/permissions.py).
"""

from __future__ import annotations

import json
import shutil
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import boto3
import pytest
from e2e_helpers import SMALL_ORDER, approval_requested, completed, finished

from stepwell.local.client import Client
from stepwell.local.intercept import Interceptor
from stepwell.local.stack import LocalStack
from stepwell.local.template import Physical, Resolver, Template, local_names

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers.permissions import (  # noqa: E402
    Call,
    CallRecorder,
    Statement,
    denials,
    function_policies,
    needed,
    translated,
    without_action,
)

STEP_SECRET = "stepwell-local/tour-token"
"""A secret an http step reads: named after the stack, as the runner's policy requires."""


@dataclass
class Tour:
    calls: list[Call]
    policies: dict[str, list[Statement]]
    functions: set[str]


def _converse(params: dict[str, Any]) -> dict[str, Any]:
    """Bedrock's Converse, answered locally (moto has no Bedrock runtime)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": "A fine tour."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
        "metrics": {"latencyMs": 5},
    }


@pytest.fixture(scope="module")
def tour(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tour]:
    folder = tmp_path_factory.mktemp("workflows")
    for path in [*(ROOT / "statemachines").glob("*.*"), *(HERE / "permissions").glob("*.yaml")]:
        shutil.copy(path, folder / path.name)
    recorder = CallRecorder()
    bedrock = Interceptor({"bedrock-runtime.Converse": _converse})
    with (
        recorder.recording(),
        LocalStack(
            ROOT,
            virtual_time=True,
            schedules=False,  # the sweep is invoked below, once, at a known moment
            # Every payload over 64 bytes goes to the bucket, so every function reads and
            # writes payloads.
            environment={"STEPWELL_WORKFLOWS": str(folder), "STEPWELL_PAYLOAD_THRESHOLD": "64"},
        ) as stack,
    ):
        bedrock.install()
        try:
            secrets = boto3.client("secretsmanager")
            secrets.create_secret(Name=STEP_SECRET, SecretString="tour-secret-value")
            _drive(stack, Client(stack.url))
            assert stack.wait_idle(30)
            template = Template.load(ROOT / "template.yaml")
            signing = secrets.describe_secret(SecretId="stepwell-local-SigningSecret")["ARN"]
            physical = local_names(
                template, overrides={"SigningSecret": Physical(signing, {"Id": signing})}
            )
            policies = function_policies(translated(), Resolver(template, physical))
            yield Tour(list(recorder.calls), policies, {f.logical_id for f in stack.functions})
        finally:
            bedrock.uninstall()


def _drive(stack: LocalStack, api: Client) -> None:
    # A: started over HTTP; its first step is an approval, so the API function makes the links.
    with stack.hold():
        started = api.request(
            "POST",
            "/workflows/permissions-tour/runs",
            json_body={"input": {"tag": "a", "api": stack.url}},
            headers={"idempotency-key": "tour-a"},
        )
        assert started.status == 201, started.text
        run_a = started.body["run_id"]
        (link,) = approval_requested(stack, run_a)["links"]
        assert link["approve_url"].startswith(f"{stack.url}/approvals/")
        assert api.request("GET", link["approve_url"]).status == 200
        assert api.decide(link["approve_url"], "approve").status == 200
        callback = _waiting_callback(stack, run_a)
        sent = api.post(callback["url"], {"status": "success", "output": {"ok": True}})
        assert sent.status == 200, sent.text
        detail = finished(stack, api, run_a)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    for path in (
        "/openapi.json",
        "/workflows",
        "/workflows/permissions-tour",
        "/runs?status=running",
    ):
        assert api.get(path).status == 200, path
    assert api.get("/runs?workflow=permissions-tour&status=succeeded").status == 200
    assert api.timeline(run_a)

    # B: a rerun from the callback step, whose wait is then skipped.
    with stack.hold():
        rerun = api.post(f"/runs/{run_a}/rerun", {"from_step": "wait_for_system"})
        assert rerun.status == 201, rerun.text
        run_b = rerun.body["run_id"]
        _waiting_callback(stack, run_b)
        skipped = api.post(f"/runs/{run_b}/steps/wait_for_system/skip", {"output": {"ok": 1}})
        assert skipped.status == 200, skipped.text
        assert finished(stack, api, run_b)["run"]["status"] == "succeeded"

    # C: cancelled while it waits for its approval.
    with stack.hold():
        run_c = api.start_run("permissions-tour", {"tag": "c", "api": stack.url}).body["run_id"]
        approval_requested(stack, run_c)
        assert api.post(f"/runs/{run_c}/cancel", {"reason": "tour"}).status == 200
        completed(stack, run_c)

    # C2: decided and called back by an operator through the API, by step (no link, no token).
    with stack.hold():
        run_g = api.start_run("permissions-tour", {"tag": "g", "api": stack.url}).body["run_id"]
        approval_requested(stack, run_g)
        decided = api.post(f"/runs/{run_g}/steps/approve/decision", {"approved": True})
        assert decided.status == 200, decided.text
        _waiting_callback(stack, run_g)
        answered = api.post(f"/runs/{run_g}/steps/wait_for_system/callback", {"status": "success"})
        assert answered.status == 200, answered.text
        assert finished(stack, api, run_g)["run"]["status"] == "succeeded"
    children = api.get(f"/runs/{run_g}/steps/clean/children?limit=2")
    assert children.status == 200 and len(children.body["children"]) == 2, children.text
    assert api.get("/runs?label=team").status == 200

    # D: a run that fails, and its step retried.
    run_d = api.start_run("permissions-failing", {}).body["run_id"]
    assert finished(stack, api, run_d)["run"]["status"] == "failed"
    assert api.post(f"/runs/{run_d}/steps/validate/retry", {}).status == 200
    assert stack.run_until(lambda: len(_ends(stack, run_d)) >= 2, 30)

    # E: an order placed on the bus starts a run through the trigger.
    events = boto3.client("events")
    events.put_events(
        Entries=[
            {
                "EventBusName": "stepwell-local-bus",
                "Source": "shop",
                "DetailType": "order.placed",
                "Detail": json.dumps(SMALL_ORDER),
            }
        ]
    )
    ended = stack.wait_for_event(
        lambda e: (
            e["detail-type"] == "run.completed"
            and e["detail"].get("workflow") == "order-fulfilment"
        )
    )
    assert ended is not None and ended["detail"]["status"] == "succeeded", ended

    # F: the code-first release example: its step functions, an approval, a 10-minute bake.
    with stack.hold():
        run_f = api.start_run("release", {"service": "tour", "ref": "v1"}).body["run_id"]
        (link,) = approval_requested(stack, run_f)["links"]
        assert api.decide(link["approve_url"], "approve").status == 200
    assert finished(stack, api, run_f)["run"]["status"] == "succeeded"

    # G: the order saga shipped where no carrier goes: the ship fails, the charge is refunded
    # and the stock released (the compensations' step functions).
    saga = {**SMALL_ORDER, "card": "4242 4242 4242 4242", "country": "AQ"}
    run_g = api.start_run("order-saga", saga).body["run_id"]
    saga_run = finished(stack, api, run_g)["run"]
    assert saga_run["error"]["compensation"]["status"] == "succeeded", saga_run

    # H: the Step Functions machine's small order: charged, shipped, tracked until delivered.
    run_h = api.start_run("order-machine", SMALL_ORDER).body["run_id"]
    assert finished(stack, api, run_h)["run"]["status"] == "succeeded"

    # The minute's sweep over the due index (its schedule is off in this stack).
    answer = boto3.client("lambda").invoke(
        FunctionName="stepwell-local-scheduler", Payload=b'{"sweep": true}'
    )
    assert "FunctionError" not in answer, answer["Payload"].read()


def _waiting_callback(stack: LocalStack, run_id: str) -> dict[str, Any]:
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id
    )
    assert event is not None, f"run {run_id} never waited for its callback"
    detail: dict[str, Any] = event["detail"]
    return detail


def _ends(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    return [e for e in stack.events("run.completed") if e["detail"]["run_id"] == run_id]


# -- the checks -------------------------------------------------------------------------------


def test_every_call_a_function_makes_is_allowed_by_its_policies(tour: Tour) -> None:
    assert denials(tour.calls, tour.policies) == []


def test_the_tour_reaches_every_function_and_every_kind_of_call(tour: Tour) -> None:
    callers = {call.function for call in tour.calls}
    assert callers == tour.functions, f"never made an AWS call: {tour.functions - callers}"
    made = {action for call in tour.calls for action, _ in needed(call)}
    for action in (
        "dynamodb:Query",
        "s3:PutObject",
        "s3:GetObject",
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "scheduler:CreateSchedule",
        "iam:PassRole",
        "events:PutEvents",
        "secretsmanager:GetSecretValue",
        "bedrock:InvokeModel",
    ):
        assert action in made, f"the tour made no call needing {action}"


ERROR_PATHS = {
    ("ApiFunctionRole/ApiFunctionRolePolicy1/ReleaseTokens", "dynamodb:DeleteItem"): (
        "claims.DynamoUsedTokens.release and Powertools' idempotency record, on failure only"
    ),
}
"""Actions granted for code paths the tour does not reach (errors), with where they are."""

LAMBDA_SERVICE = "EventInvokeConfigOnFailure"
"""SAM's policies for an on-failure destination: Lambda uses them to deliver its report of a
failed invocation (the code never calls them), so no tour can show them needed."""


def test_every_action_the_policies_grant_is_needed(tour: Tour) -> None:
    """Least privilege, action by action: take any action out of any statement and some call
    the functions made is denied. (This is also the proof that the first test can fail.)"""
    unneeded = []
    checked = 0
    seen: set[tuple[str, str]] = set()
    # The code must not lean on what SAM grants Lambda for the destination.
    policies = {
        function: [s for s in statements if LAMBDA_SERVICE not in s.where]
        for function, statements in tour.policies.items()
    }
    for statements in policies.values():
        for statement in statements:
            for action in statement.actions:
                if statement.effect != "Allow" or (statement.where, action) in seen:
                    continue
                seen.add((statement.where, action))
                checked += 1
                if not denials(tour.calls, without_action(policies, statement.where, action)):
                    unneeded.append((statement.where, action))
    assert checked >= 10
    assert sorted(unneeded) == sorted(ERROR_PATHS), "granted but never needed by the tour"


def test_dropping_a_policy_denies_the_calls_it_allowed(tour: Tour) -> None:
    runner = [s for s in tour.policies["RunnerFunction"] if "bedrock:InvokeModel" not in s.actions]
    found = denials(tour.calls, {**tour.policies, "RunnerFunction": runner})
    assert found and all("bedrock:InvokeModel" in line for line in found), found
    assert found[0].startswith(
        "RunnerFunction: bedrock:InvokeModel on arn:aws:bedrock:us-east-1::foundation-model/"
    )
    api = [s for s in tour.policies["ApiFunction"] if not s.where.startswith("OrchestratorPolicy")]
    found = denials(tour.calls, {**tour.policies, "ApiFunction": api})
    assert any(line.startswith("ApiFunction: dynamodb:PutItem") for line in found), found
    assert any(line.startswith("ApiFunction: iam:PassRole") for line in found), found
