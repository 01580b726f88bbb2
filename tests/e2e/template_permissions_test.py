"""Every AWS call the functions make is allowed by their roles, and every action the roles grant
is needed.

The calls are not listed by hand: the local stack runs template.yaml (the engine nested in it,
the examples published by their Custom::StepwellWorkflow resources through the engine's
publisher) through a tour that reaches every function and every kind of work (the API
publishing and retiring workflows, starting runs, making approval links and acting on runs;
step functions fanning out; a workflows function describing and replaying workflows; the
scheduler's timers and sweep; the runner's http, agent and notify steps; a trigger started by a
published schedule; a callback; a child run), and a recorder notes each call with the function
that made it. Each call is then checked against the function's role as the SAM transform
generates it, the engine's stack flattened into the app's (tests/helpers/permissions.py).

A second tour runs a second app stack (permissions/second-stack) on an engine deployed as a
stack of its own, whose exports it imports: its functions are named nothing like the engine's,
so the engine may invoke them only because they carry its id (the tag its policy names).
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import quote

import boto3
import pytest
from e2e_helpers import SMALL_ORDER, Webhook, approval_requested, completed, finished

from stepwell.catalog import load_definitions
from stepwell.local import engine
from stepwell.local.client import Client
from stepwell.local.intercept import Interceptor
from stepwell.local.stack import TRIGGER_HANDLER, LocalStack
from stepwell.local.template import STACK, Physical, Resolver, local_names

HERE = Path(__file__).resolve().parent
TESTS = HERE.parent
ROOT = TESTS.parent
SECOND = HERE / "permissions" / "second-stack"
if str(TESTS) not in sys.path:
    sys.path.insert(0, str(TESTS))

from helpers.permissions import (  # noqa: E402
    Call,
    CallRecorder,
    Statement,
    Tags,
    denials,
    function_policies,
    needed,
    translated,
    without_action,
)

ENGINE = f"{STACK}-Stepwell"
"""The nested engine's stack: its id (the tag ``stepwell:engine``) and its names' prefix."""
BUS = f"{ENGINE}-bus"
SLACK = f"{ENGINE}/tour-slack"
"""The Slack webhook's secret (the stack's NotifySlackWebhookSecret)."""
STEP_SECRET = f"{ENGINE}/tour-token"
"""A secret an http step reads: named after the engine's stack, as the runner's policy requires."""
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
"""The tour's virtual start: the examples' published schedules (data-pipeline's, at 06:00) stay
quiet while it runs."""
OWNER = "permissions tour"
"""Who publishes the tour's workflows through the API (and may retire them)."""


@dataclass
class Tour:
    calls: list[Call]
    policies: dict[str, list[Statement]]
    functions: set[str]
    tags: dict[str, dict[str, str]]
    """Each function's ARN -> its tags."""
    arns: dict[str, str]
    """Each function's logical id -> its ARN."""

    def denials(
        self, policies: dict[str, list[Statement]] | None = None, tags: Tags | None = None
    ) -> list[str]:
        return denials(
            self.calls, self.policies if policies is None else policies, tags or self.tags
        )


def _converse(params: dict[str, Any]) -> dict[str, Any]:
    """Bedrock's Converse, answered locally (moto has no Bedrock runtime)."""
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": "A fine tour."}]}},
        "stopReason": "end_turn",
        "usage": {"inputTokens": 12, "outputTokens": 4, "totalTokens": 16},
        "metrics": {"latencyMs": 5},
    }


def _record(
    project: Path,
    drive: Callable[[LocalStack, Client], None],
    secret: str,
    parameters: dict[str, str] | None = None,
    environment: dict[str, str] | None = None,
) -> Tour:
    """Run ``project``'s template.yaml through ``drive``, recording every call its functions
    make, and read its functions' policies (``secret``: the signing secret's logical id, whose
    ARN only the running stack knows)."""
    recorder = CallRecorder()
    bedrock = Interceptor({"bedrock-runtime.Converse": _converse})
    with (
        recorder.recording(),
        LocalStack(
            project,
            virtual_time=True,
            start_time=START,
            # The sweep is invoked once, at a known moment; published workflows' schedules
            # (which invoke the trigger function) run.
            schedules=lambda function, _source: function.handler == TRIGGER_HANDLER,
            # Every payload over 64 bytes goes to the bucket, so every function reads and
            # writes payloads.
            environment={"STEPWELL_PAYLOAD_THRESHOLD": "64", **(environment or {})},
            parameters=parameters,
        ) as stack,
    ):
        bedrock.install()
        try:
            drive(stack, Client(stack.url))
            assert stack.wait_idle(30)
            template = engine.load(project / "template.yaml")
            arn = boto3.client("secretsmanager").describe_secret(SecretId=f"{STACK}-{secret}")
            physical = local_names(
                template, overrides={secret: Physical(arn["ARN"], {"Id": arn["ARN"]})}
            )
            policies = function_policies(
                translated(project / "template.yaml", **(parameters or {})),
                Resolver(template, physical, parameters),
            )
            return Tour(
                list(recorder.calls),
                policies,
                {f.logical_id for f in stack.functions},
                {f.arn: dict(f.tags) for f in stack.functions},
                {f.logical_id: f.arn for f in stack.functions},
            )
        finally:
            bedrock.uninstall()


@pytest.fixture(scope="module")
def tour() -> Iterator[Tour]:
    # People are told by e-mail and Slack; the webhook fails once, so a delivery is tried again.
    webhook = Webhook()
    webhook.failing = 1
    try:
        yield _record(
            ROOT,
            _drive,
            "StepwellSigningSecret",
            parameters={"NotifyEmailFrom": "tour@example.com", "NotifySlackWebhookSecret": SLACK},
            environment={"STEPWELL_SLACK_WEBHOOK_URL": webhook.url},
        )
    finally:
        webhook.server.shutdown()


@pytest.fixture(scope="module")
def second(tour: Tour) -> Tour:
    """After the first tour (one local stack at a time in a process)."""
    return _record(SECOND, _drive_second, "StepwellEngineSigningSecret")


def _publish(api: Client, path: Path, functions: dict[str, str], **changes: Any) -> dict[str, Any]:
    """``PUT /workflows/{name}`` of a workflow file, as ``stepwell publish`` sends it (with
    ``changes`` to its JSON form)."""
    ((workflow, _),) = load_definitions([path])
    definition = {**workflow.model_dump(mode="json"), **copy.deepcopy(changes)}
    reply = api.request(
        "PUT",
        f"/workflows/{workflow.name}",
        json_body={"definition": definition, "owner": OWNER, "functions": functions},
    )
    assert reply.status == 200, reply.text
    answer: dict[str, Any] = reply.body
    return answer


def _drive(stack: LocalStack, api: Client) -> None:
    boto3.client("secretsmanager").create_secret(Name=STEP_SECRET, SecretString="tour-secret")
    # The tour's own workflows, published through the API as `stepwell publish` does, bound to
    # the app stack's functions by logical id (as the publisher binds a stack's).
    nested = engine.load(ROOT / "template.yaml").nested
    functions = {f.logical_id: f.arn for f in stack.functions if f.logical_id not in nested}
    for name in ("permissions-tour", "permissions-failing"):
        answer = _publish(api, HERE / "permissions" / f"{name}.yaml", functions)
        assert answer["status"] == "new", answer

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

    # E: a workflow with an event trigger and a schedule, published through the API: the engine
    # makes a rule and a schedule for it; an event on the bus starts a run through the trigger
    # function; published changed, the rule and the schedule change; each tick of the schedule
    # starts a run; retired, its rule and schedule go. Virtual time moves only when the tour
    # advances it, so the schedule ticks only then.
    with stack.hold():
        triggers = HERE / "permissions" / "permissions-triggers.yaml"
        assert _publish(api, triggers, functions)["status"] == "new"
        runs: set[str] = set()
        # A rate schedule's first tick is at once (EventBridge Scheduler's rule), the event's
        # run beside it.
        _put_event(stack, "tour.started")
        started = [_next_run(stack, runs)["labels"]["trigger"] for _ in range(2)]
        assert sorted(started) == ["event", "schedule"]
        again = {
            "http": True,
            "events": [{"pattern": {"source": ["tour"], "detail-type": ["tour.again"]}}],
            "schedules": [{"expression": "rate(2 hours)", "input": {"source": "tick"}}],
        }
        assert _publish(api, triggers, functions, triggers=again)["status"] == "changed"
        _put_event(stack, "tour.started")  # no longer a trigger of it
        _put_event(stack, "tour.again")
        # The changed schedule may tick at once too (its rate counts from the change; a tick at
        # the scheduled time of the last one is that run again): the event's run is awaited.
        while _next_run(stack, runs)["labels"]["trigger"] != "event":
            pass
        (schedule,) = _schedules_of(stack, "permissions-triggers")
        assert schedule.expression == "rate(2 hours)"
        for _ in range(2):  # each tick its own run (its time makes the run id)
            assert schedule.next_at is not None
            stack.advance(to=schedule.next_at)
            assert _next_run(stack, runs)["labels"] == {"trigger": "schedule"}
        assert stack.wait_idle(30)
        listed = api.get("/runs?workflow=permissions-triggers&limit=100").body["runs"]
        started = [run["labels"].get("trigger") for run in listed]
        assert started.count("event") == 2, (
            "an event that is no trigger of it any more started a run"
        )
        assert started.count("schedule") >= 3, started
    retired = api.request("DELETE", f"/workflows/permissions-triggers?owner={quote(OWNER)}")
    assert retired.status == 200, retired.text
    assert _schedules_of(stack, "permissions-triggers") == []
    listed = boto3.client("events").list_rules(EventBusName=BUS, NamePrefix=f"{ENGINE}-")
    assert f"{ENGINE}-order-fulfilment-e0" in [r["Name"] for r in listed["Rules"]]
    assert not [r for r in listed["Rules"] if "permissions-triggers" in r["Name"]]

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
        FunctionName=f"{ENGINE}-scheduler", Payload=b'{"sweep": true}'
    )
    assert "FunctionError" not in answer, answer["Payload"].read()


def _drive_second(stack: LocalStack, api: Client) -> None:
    """The second stack's workflows, published by its own Custom::StepwellWorkflow resources:
    a YAML one and a code-first one its Workflows function replays, both running its step
    function."""
    published = {"second-stack-parcel", "second-stack-parcels"}
    assert published <= set(stack.workflows()), stack.warnings
    run = api.start_run("second-stack-parcel", {"id": "p-1", "items": 2}).body["run_id"]
    detail = finished(stack, api, run)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    shipment = {"parcels": [{"id": "a"}, {"id": "b", "items": 3}]}
    run = api.start_run("second-stack-parcels", shipment).body["run_id"]
    detail = finished(stack, api, run)
    assert (detail["run"]["status"], detail["run"]["output"]) == ("succeeded", {"grams": 1000})


def _put_event(stack: LocalStack, detail_type: str) -> None:
    entry = {"EventBusName": BUS, "Source": "tour", "DetailType": detail_type, "Detail": "{}"}
    assert boto3.client("events").put_events(Entries=[entry])["FailedEntryCount"] == 0


def _next_run(stack: LocalStack, seen: set[str]) -> dict[str, Any]:
    """The next run of permissions-triggers to end (it must succeed)."""
    ended = stack.wait_for_event(
        lambda e: (
            e["detail-type"] == "run.completed"
            and e["detail"]["workflow"] == "permissions-triggers"
            and e["detail"]["run_id"] not in seen
        )
    )
    assert ended is not None, "no run of permissions-triggers started"
    assert ended["detail"]["status"] == "succeeded", ended
    seen.add(ended["detail"]["run_id"])
    run: dict[str, Any] = Client(stack.url).run(ended["detail"]["run_id"])["run"]
    return run


def _schedules_of(stack: LocalStack, workflow: str) -> list[Any]:
    assert stack.schedules is not None
    return [s for s in stack.schedules.all() if s.name.startswith(f"{ENGINE}-{workflow}-s")]


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


def test_every_call_a_function_makes_is_allowed_by_its_policies(tour: Tour, second: Tour) -> None:
    assert tour.denials() == []
    assert second.denials() == []


def test_the_tour_reaches_every_function_and_every_kind_of_call(tour: Tour) -> None:
    callers = {call.function for call in tour.calls}
    assert callers == tour.functions, f"never made an AWS call: {tour.functions - callers}"
    made = {need.action for call in tour.calls for need in needed(call)}
    for action in (
        "dynamodb:Query",
        "s3:PutObject",
        "s3:GetObject",
        "lambda:InvokeFunction",
        "sqs:SendMessage",
        "scheduler:CreateSchedule",
        "scheduler:UpdateSchedule",
        "scheduler:ListSchedules",
        "scheduler:DeleteSchedule",
        "iam:PassRole",
        "events:PutEvents",
        "events:PutRule",
        "events:PutTargets",
        "events:ListRules",
        "events:RemoveTargets",
        "events:DeleteRule",
        "cloudformation:ListStackResources",
        "secretsmanager:GetSecretValue",
        "bedrock:InvokeModel",
    ):
        assert action in made, f"the tour made no call needing {action}"
    # The publisher asks the app's workflows function to describe each file, and waits.
    assert any(
        call.function == "StepwellPublisherFunction"
        and call.operation == "Invoke"
        and call.params.get("InvocationType") == "RequestResponse"
        and str(call.params["FunctionName"]).startswith(tour.arns["ExampleWorkflowsFunction"])
        for call in tour.calls
    )


ERROR_PATHS = {
    ("StepwellApiFunctionRole/ApiFunctionRolePolicy2/ReleaseTokens", "dynamodb:DeleteItem"): (
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
                if not tour.denials(without_action(policies, statement.where, action)):
                    unneeded.append((statement.where, action))
    assert checked >= 10
    assert sorted(unneeded) == sorted(ERROR_PATHS), f"granted but never needed: {unneeded}"


def test_dropping_a_policy_denies_the_calls_it_allowed(tour: Tour) -> None:
    runner = [
        s for s in tour.policies["StepwellRunnerFunction"] if "bedrock:InvokeModel" not in s.actions
    ]
    found = tour.denials({**tour.policies, "StepwellRunnerFunction": runner})
    assert found and all("bedrock:InvokeModel" in line for line in found), found
    assert found[0].startswith(
        "StepwellRunnerFunction: bedrock:InvokeModel on "
        "arn:aws:bedrock:us-east-1::foundation-model/"
    )
    api = [
        s
        for s in tour.policies["StepwellApiFunction"]
        if not s.where.startswith("StepwellOrchestratorPolicy")
    ]
    found = tour.denials({**tour.policies, "StepwellApiFunction": api})
    assert any(line.startswith("StepwellApiFunction: dynamodb:PutItem") for line in found), found
    assert any(line.startswith("StepwellApiFunction: iam:PassRole") for line in found), found


def _app_functions(tour: Tour, engine_prefix: str) -> dict[str, str]:
    return {k: v for k, v in tour.arns.items() if not k.startswith(engine_prefix)}


@pytest.mark.parametrize("which", ["nested", "second stack"])
def test_the_engine_invokes_an_app_s_functions_only_by_their_tag(
    which: str, tour: Tour, second: Tour
) -> None:
    """An app's step and workflows functions have names of their app's stack, which the
    engine's policy does not name: invoking them (from the engine's functions, or from a step
    function advancing its run) is allowed by the tag ``stepwell:engine`` they carry, with the
    engine's id, and by nothing else."""
    found, prefix = (tour, "Stepwell") if which == "nested" else (second, "StepwellEngine")
    apps = tuple(arn for logical_id, arn in found.arns.items() if not logical_id.startswith(prefix))
    assert len(apps) >= 2
    invoked = {
        need.resource
        for call in found.calls
        for need in needed(call)
        if need.action == "lambda:InvokeFunction" and need.resource.startswith(apps)
    }
    assert invoked
    for tag in ({}, {"stepwell:engine": "another-engine"}):
        tags = {
            arn: {**{k: v for k, v in own.items() if k != "stepwell:engine"}, **tag}
            if arn in apps
            else own
            for arn, own in found.tags.items()
        }
        lines = found.denials(tags=tags)
        assert all(" lambda:InvokeFunction on " in line for line in lines), lines
        assert {line.split(" on ")[1].split(" ")[0] for line in lines} == invoked


def test_a_function_of_a_second_stack_runs_on_the_engine_s_exports(second: Tour) -> None:
    """The second stack imports the engine stack's exports: its functions' roles take the
    engine's StepFunctionPolicyArn (its OrchestratorPolicy), the publisher binds its workflows
    to its own functions (listing its stack), and every function of it made calls."""
    assert {"Workflows", "WeighParcelFunction"} <= {call.function for call in second.calls}
    for function in ("Workflows", "WeighParcelFunction"):
        managed = {s.where.split("/")[0] for s in second.policies[function]}
        assert "StepwellEngineOrchestratorPolicy" in managed, function
    listed = [
        call
        for call in second.calls
        if call.function == "StepwellEnginePublisherFunction"
        and call.operation == "ListStackResources"
    ]
    assert listed, "the publisher never listed the second stack's functions"
