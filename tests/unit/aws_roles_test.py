"""A role per workflow: the runner assumes the role a workflow (or a step, or a Task's
Credentials) names, with STS, for that run's service calls; against moto's STS, which answers
GetCallerIdentity with the assumed role's session."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import boto3
import pytest
from aws_step_test import deps  # noqa: F401  (moto, with credentials in the environment)
from botocore.stub import Stubber
from code_context_test import issue_of
from definition_validation_test import problems_of

from helpers import EngineDriver
from stepwell.asl.loader import load_asl_file
from stepwell.code.files import load_code_file
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow
from stepwell.runtime.aws.roles import HELD, AssumedRoles, session_name
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.envelope import StepEnvelope
from stepwell.runtime.replays import job_checks
from stepwell.runtime.step_context import StepContext

ROLE = "arn:aws:iam::123456789012:role/orders-reader"
CTX = StepContext("run-7", "call", "call", 1, "run-7:call:1")
WHO = {"service": "sts", "action": "getCallerIdentity", "parameters": {}}


class CountingSts:
    """moto's STS, counting AssumeRole calls."""

    def __init__(self) -> None:
        self.client = boto3.client("sts")
        self.assumed = 0

    def __call__(self) -> Any:
        return self

    def assume_role(self, **given: Any) -> Any:
        self.assumed += 1
        return self.client.assume_role(**given)


@pytest.mark.usefixtures("deps")
def test_a_call_with_a_role_runs_as_that_role_in_a_session_named_after_the_run() -> None:
    given = BuiltinDeps()
    own = run_builtin("aws", WHO, CTX, given).output["Arn"]
    assumed = run_builtin("aws", {**WHO, "role": ROLE}, CTX, given).output["Arn"]
    assert "assumed-role" not in own
    assert assumed == "arn:aws:sts::123456789012:assumed-role/orders-reader/stepwell-run-7"


@pytest.mark.usefixtures("deps")
def test_credentials_are_kept_per_role_and_run_until_near_their_expiry() -> None:
    sts, clock = CountingSts(), FakeClock()
    roles = AssumedRoles(sts, clock)
    given = BuiltinDeps(roles=roles)
    clock.set(
        boto3.client("sts").assume_role(RoleArn=ROLE, RoleSessionName="probe")["Credentials"][
            "Expiration"
        ]
        - timedelta(hours=1)
    )
    for _ in range(3):
        run_builtin("aws", {**WHO, "role": ROLE}, CTX, given)
    assert sts.assumed == 1
    other_run = StepContext("run-8", "call", "call", 1, "run-8:call:1")
    assert (
        "stepwell-run-8"
        in run_builtin("aws", {**WHO, "role": ROLE}, other_run, given).output["Arn"]
    )
    assert sts.assumed == 2
    clock.advance(timedelta(minutes=56))  # within 5 minutes of the first credentials' expiry
    run_builtin("aws", {**WHO, "role": ROLE}, CTX, given)
    assert sts.assumed == 3


@pytest.mark.usefixtures("deps")
def test_a_container_keeps_a_bounded_number_of_credentials() -> None:
    sts = CountingSts()
    roles = AssumedRoles(sts)
    for index in range(HELD + 1):
        roles.client("sts", ROLE, f"run-{index}")
    roles.client("sts", ROLE, f"run-{HELD}")
    assert sts.assumed == HELD + 1
    roles.client("sts", ROLE, "run-0")  # the least recently used went first
    assert sts.assumed == HELD + 2


@pytest.mark.usefixtures("deps")
def test_a_role_that_cannot_be_assumed_fails_the_step_naming_the_role() -> None:
    sts = boto3.client("sts")
    stubber = Stubber(sts)
    stubber.add_client_error(
        "assume_role",
        service_error_code="AccessDenied",
        service_message="User: runner is not authorized to perform: sts:AssumeRole",
        http_status_code=403,
    )
    given = BuiltinDeps(roles=AssumedRoles(lambda: sts))
    with stubber, pytest.raises(ServiceCallFailed) as caught:
        run_builtin("aws", {**WHO, "role": ROLE}, CTX, given)
    assert caught.value.error_type == "States.TaskFailed"
    assert caught.value.retryable is False
    assert str(caught.value) == (
        f"step 'call': the role {ROLE} could not be assumed: AccessDenied: User: runner is not "
        "authorized to perform: sts:AssumeRole"
    )
    with pytest.raises(ServiceCallFailed, match=r"the role to call sts as is 7, not an IAM"):
        run_builtin("aws", {**WHO, "role": 7}, CTX, given)


def test_a_session_name_is_the_run_in_what_sts_allows() -> None:
    assert session_name("r-1.a:b") == "stepwell-r-1.a-b"
    assert len(session_name("x" * 100)) == 64


def test_a_yaml_workflows_role_goes_with_its_aws_steps_unless_a_step_names_its_own() -> None:
    definition = Workflow.model_validate(
        {
            "name": "reads-orders",
            "role": ROLE,
            "steps": {
                "get": {"type": "aws", "service": "s3", "action": "listBuckets"},
                "put": {
                    "type": "aws",
                    "service": "s3",
                    "action": "listBuckets",
                    "role": "${input.writer}",
                },
                "tell": {"type": "notify", "detail_type": "x", "detail": {}},
            },
        }
    )
    writer = "arn:aws:iam::123456789012:role/orders-writer"
    run = EngineDriver(definition, {"writer": writer})
    found = {d.step_id: d.input for d in run.dispatches()}
    assert found["get"]["role"] == ROLE
    assert found["put"]["role"] == writer
    assert "role" not in found["tell"]
    assert "role" not in run.step("get").input  # the pinned definition's, not the step's


def test_a_workflows_role_is_an_iam_roles_arn() -> None:
    good = (
        "name: wf\nrole: {role}\nsteps:\n  get: {{type: aws, service: s3, action: listBuckets}}\n"
    )
    assert problems_of(good.format(role=ROLE)) == []
    assert problems_of(good.format(role="arn:aws-cn:iam::123456789012:role/a/b")) == []
    (problem,) = problems_of(good.format(role="orders-reader"))
    assert "'orders-reader' is not an IAM role's ARN" in problem


def test_code_first_names_its_role_on_the_workflow_or_the_call(tmp_path: Path) -> None:
    issue = issue_of(lambda ctx: ctx.aws("get", "s3", "listBuckets", role=ROLE))
    assert issue.input["role"] == ROLE
    path = tmp_path / "reads.py"
    path.write_text(
        "from stepwell import workflow\n\n"
        f"@workflow('reads', role={ROLE!r})\n"
        "def reads(ctx, input):\n    return ctx.aws('get', 's3', 'listBuckets')\n"
    )
    (loaded,) = load_code_file(path)
    assert loaded.workflow.role == ROLE


def _machine(tmp_path: Path, resource: str, credentials: Any) -> Path:
    task = {"Type": "Task", "Resource": resource, "Credentials": credentials, "End": True}
    path = tmp_path / "m.asl.json"
    path.write_text(json.dumps({"StartAt": "T", "States": {"T": task}}, indent=1))
    return path


def test_a_tasks_credentials_are_checked_as_the_machine_loads(tmp_path: Path) -> None:
    sdk = "arn:aws:states:::aws-sdk:sts:getCallerIdentity"
    load_asl_file(_machine(tmp_path, sdk, {"RoleArn": ROLE}))
    load_asl_file(_machine(tmp_path, sdk, {"RoleArn.$": "$.role"}))
    load_asl_file(_machine(tmp_path, "arn:aws:states:::glue:startJobRun.sync", {"RoleArn": ROLE}))
    for resource, credentials, said in [
        (sdk, {"RoleArn": "orders"}, "'orders' is not an IAM role's ARN"),
        (sdk, {"Role": ROLE}, 'Credentials is {"RoleArn": ARN} or {"RoleArn.$": PATH}'),
        (sdk, {"RoleArn.$": "role"}, "RoleArn.$"),
        ("OrdersFunction", {"RoleArn": ROLE}, "a function or a child run runs with its own"),
        (
            "arn:aws:states:::states:startExecution.sync:2",
            {"RoleArn": ROLE},
            "a function or a child run runs with its own",
        ),
    ]:
        with pytest.raises(DefinitionError) as caught:
            load_asl_file(_machine(tmp_path, resource, credentials))
        (problem,) = caught.value.problems
        assert said in str(problem), problem
        assert problem.field is not None and problem.field.startswith("Credentials"), problem


@pytest.mark.usefixtures("deps")
def test_a_jobs_checks_run_as_the_role_that_started_it() -> None:
    # A role of another account: moto keeps that account's jobs apart, as AWS does, so a
    # check made as the runner (its own account) would not find the job.
    other = "arn:aws:iam::111111111111:role/etl"
    given = BuiltinDeps()
    glue = {"service": "glue", "integration": "optimized"}
    job = {
        "Name": "nightly",
        "Role": other,
        "Command": {"Name": "glueetl", "ScriptLocation": "s3://b/e.py"},
    }
    run_builtin(
        "aws", {**glue, "action": "createJob", "parameters": job, "role": other}, CTX, given
    )
    started = {**glue, "action": "startJobRun", "parameters": {"JobName": "nightly"}, "role": other}
    run_id = run_builtin("aws", started, CTX, given).output["JobRunId"]
    envelope = StepEnvelope(
        run_id="run-7",
        step_id="$workflow",
        key="$workflow",
        step_type="code",
        attempt=1,
        token="t",
        idempotency_key="run-7:$workflow:1",
    )
    asked = {"JobName": "nightly", "RunId": run_id}

    def checks(role: str | None) -> Any:
        definition = SimpleNamespace(role=role)
        runtime = SimpleNamespace(
            builtins=given, orchestrator=SimpleNamespace(pinned=lambda run: definition)
        )
        return job_checks(runtime, envelope)(SimpleNamespace())  # type: ignore[arg-type]

    # The role the start named (a Task's Credentials), or else the workflow's.
    assert checks(None)("glue", "getJobRun", asked, other)["JobRun"]["JobRunState"] == "SUCCEEDED"
    assert checks(other)("glue", "getJobRun", asked, None)["JobRun"]["Id"] == run_id
    with pytest.raises(ServiceCallFailed) as failed:
        checks(None)("glue", "getJobRun", asked, None)  # the runner's own account has no job
    assert failed.value.error_type == "Glue.EntityNotFoundException"
