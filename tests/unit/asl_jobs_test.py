"""``.sync`` service integrations of jobs (Batch, ECS, Glue, Athena, CodeBuild): the call that
starts the job is an aws step, then one wait record whose checks describe the job until it
ends, as Step Functions waits for it."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from code_fake_engine import FakeRun
from ruamel.yaml import YAML

from stepwell.asl.loader import aws_only
from stepwell.asl.machine import Machine
from stepwell.asl.validation import check
from stepwell.cli import main as cli
from stepwell.definition.errors import SourceMap
from stepwell.definition.jobs import JOBS, job, synced
from stepwell.local.publications import Publications, publish_folder
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.publishing import Workflows
from stepwell.store.memory import MemoryStore

ECS = "arn:aws:states:::ecs:runTask.sync"
TASK = "arn:aws:ecs:us-east-1:123456789012:task/c/t-1"


def machine(state: dict[str, Any]) -> Machine:
    return Machine("jobs", {"StartAt": "Run", "States": {"Run": state, **CAUGHT}})


CAUGHT = {"Caught": {"Type": "Pass", "End": True}}


class Describer:
    """The runner's AWS calls as a job's checks see them: each description in turn."""

    def __init__(self, *described: dict[str, Any]) -> None:
        self.described = list(described)
        self.calls: list[tuple[str, str, dict[str, Any]]] = []
        self.roles: list[str | None] = []

    def __call__(
        self, service: str, action: str, parameters: dict[str, Any], role: str | None = None
    ) -> Any:
        self.calls.append((service, action, parameters))
        self.roles.append(role)
        return self.described.pop(0)


def ecs_task(status: str, *codes: int) -> dict[str, Any]:
    containers = [{"Name": f"c{i}", "ExitCode": code} for i, code in enumerate(codes)]
    return {"Tasks": [{"TaskArn": TASK, "LastStatus": status, "Containers": containers}]}


def test_a_job_is_started_then_described_on_one_record_until_it_ends() -> None:
    describer = Describer(ecs_task("RUNNING"), ecs_task("STOPPING"), ecs_task("STOPPED", 0))
    state = {
        "Type": "Task",
        "Resource": ECS,
        "Parameters": {"Cluster": "c", "TaskDefinition": "td", "LaunchType": "FARGATE"},
        "ResultSelector": {"status.$": "$.LastStatus"},
        "End": True,
    }
    fake = FakeRun(machine(state), {}, services=describer)
    result = fake.drive(lambda issue: {"Tasks": [{"TaskArn": TASK, "ClusterArn": "arn:c"}]})
    start = fake.issues["Run"]
    assert (start.kind, start.input["service"], start.input["action"]) == ("aws", "ecs", "runTask")
    assert start.input["integration"] == "optimized"
    assert describer.calls == [("ecs", "describeTasks", {"Cluster": "c", "Tasks": [TASK]})] * 3
    # Three checks, one wait record: the start's and the wait's, whatever the job's length.
    assert sorted(fake.journal) == ["Run", "Run job"]
    assert fake.journal["Run job"].status == "succeeded"
    assert result.output == {"status": "STOPPED"}


def test_a_job_with_credentials_is_started_and_checked_as_that_role() -> None:
    describer = Describer(ecs_task("RUNNING"), ecs_task("STOPPED", 0))
    role = "arn:aws:iam::111111111111:role/reports"
    state = {
        "Type": "Task",
        "Resource": ECS,
        "Parameters": {"Cluster": "c", "TaskDefinition": "td"},
        "Credentials": {"RoleArn.$": "$.role"},
        "End": True,
    }
    fake = FakeRun(machine(state), {"role": role}, services=describer)
    fake.drive(lambda issue: {"Tasks": [{"TaskArn": TASK}]})
    assert fake.issues["Run"].input["role"] == role
    assert describer.roles == [role, role]
    # Without Credentials the checks name no role: they run as the workflow's, as the start.
    plain = Describer(ecs_task("STOPPED", 0))
    bare = {key: value for key, value in state.items() if key != "Credentials"}
    FakeRun(machine(bare), {}, services=plain).drive(lambda issue: {"Tasks": [{"TaskArn": TASK}]})
    assert plain.roles == [None]


def test_a_failed_job_is_a_task_failure_with_its_description_as_cause() -> None:
    failed = {"JobRun": {"Id": "jr-1", "JobRunState": "FAILED", "ErrorMessage": "bad script"}}
    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::glue:startJobRun.sync",
        "Parameters": {"JobName": "nightly"},
        "Catch": [
            {"ErrorEquals": ["States.TaskFailed"], "ResultPath": "$.error", "Next": "Caught"}
        ],
        "End": True,
    }
    describer = Describer(failed)
    fake = FakeRun(machine(state), {}, services=describer)
    result = fake.drive(lambda issue: {"JobRunId": "jr-1"})
    assert describer.calls == [("glue", "getJobRun", {"JobName": "nightly", "RunId": "jr-1"})]
    error = result.output["error"]
    assert error["Error"] == "States.TaskFailed"
    assert json.loads(error["Cause"]) == failed["JobRun"]


def test_a_check_that_fails_is_the_service_s_error() -> None:
    class Throttled(Exception):
        error_name = "Batch.ClientException"

    def describe(service: str, action: str, parameters: dict[str, Any], role: Any) -> Any:
        raise Throttled("job queue gone")

    state = {
        "Type": "Task",
        "Resource": "arn:aws:states:::batch:submitJob.sync",
        "Parameters": {"JobName": "n", "JobQueue": "q", "JobDefinition": "d"},
        "Catch": [
            {"ErrorEquals": ["Batch.ClientException"], "ResultPath": "$.e", "Next": "Caught"}
        ],
        "End": True,
    }
    fake = FakeRun(machine(state), {}, services=describe)
    result = fake.drive(lambda issue: {"JobId": "j-1", "JobName": "n", "JobArn": "arn:j"})
    assert result.output["e"]["Error"] == "Batch.ClientException"


@pytest.mark.parametrize(
    ("service", "started", "asked", "running", "done", "result"),
    [
        (
            "batch",
            {"JobId": "j-1"},
            {"Jobs": ["j-1"]},
            {"Jobs": [{"Status": "RUNNABLE"}]},
            {"Jobs": [{"Status": "SUCCEEDED"}]},
            {"Status": "SUCCEEDED"},
        ),
        (
            "athena",
            {"QueryExecutionId": "q-1"},
            {"QueryExecutionId": "q-1"},
            {"QueryExecution": {"Status": {"State": "RUNNING"}}},
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
            {"QueryExecution": {"Status": {"State": "SUCCEEDED"}}},
        ),
        (
            "codebuild",
            {"Build": {"Id": "p:1"}},
            {"Ids": ["p:1"]},
            {"Builds": [{"BuildStatus": "IN_PROGRESS"}]},
            {"Builds": [{"BuildStatus": "SUCCEEDED"}]},
            {"Build": {"BuildStatus": "SUCCEEDED"}},
        ),
    ],
)
def test_each_job_is_described_and_read_as_step_functions_reads_it(
    service: str, started: Any, asked: Any, running: Any, done: Any, result: Any
) -> None:
    [(action, found)] = [(a, j) for (s, a), j in JOBS.items() if s == service]
    assert synced(service, f"{action}.sync") is found
    assert synced(service, action) is None  # request-response: no wait
    assert found.request({}, started) == asked
    assert (found.outcome(running), found.outcome(done)) == ("running", "succeeded")
    assert found.result(done) == result


def test_an_ecs_task_that_stopped_with_a_container_failing_failed() -> None:
    found = job("ecs", "runTask")
    assert found is not None
    assert found.outcome(ecs_task("STOPPED", 0, 1)) == "failed"
    assert found.outcome(ecs_task("STOPPED")) == "failed"  # no container ran
    assert found.outcome(ecs_task("STOPPED", 0, 0)) == "succeeded"


def problems(resource: str, parameters: dict[str, Any] | None = None) -> list[str]:
    state: dict[str, Any] = {"Type": "Task", "Resource": resource, "End": True}
    if parameters is not None:
        state["Parameters"] = parameters
    document = YAML(typ="rt").load(json.dumps({"StartAt": "Run", "States": {"Run": state}}))
    return [p.message for p in check(document, SourceMap("jobs.asl.json", document))]


@pytest.mark.parametrize("service_action", [f"{s}:{a}" for s, a in JOBS])
def test_each_job_s_sync_form_validates(service_action: str) -> None:
    assert problems(f"arn:aws:states:::{service_action}.sync") == []


def test_a_job_s_sync_form_refuses_what_its_start_does_not_take_and_a_task_token() -> None:
    [message] = problems(ECS, {"Cluster": "c", "Clustr": "x"})
    assert "ecs:runTask takes no parameter 'Clustr'" in message
    [message] = problems(f"{ECS}.waitForTaskToken")
    assert "not a Resource Step Functions accepts (.sync with .waitForTaskToken)" in message
    [message] = problems("arn:aws:states:::emr-containers:startJobRun.sync")
    assert "not run by Stepwell yet" in message
    assert "batch:submitJob.sync" in message


ATHENA = {
    "Type": "Task",
    "Resource": "arn:aws:states:::athena:startQueryExecution.sync",
    "Parameters": {"QueryString": "select 1", "WorkGroup": "primary"},
    "End": True,
}
BATCH = {
    "Type": "Task",
    "Resource": "arn:aws:states:::batch:submitJob.sync",
    "Parameters": {"JobName": "j", "JobQueue": "q", "JobDefinition": "d"},
    "End": True,
}


def test_a_job_moto_has_no_states_of_runs_on_aws_only(tmp_path: Path) -> None:
    branches = [{"StartAt": "Q", "States": {"Q": ATHENA}}, {"StartAt": "B", "States": {"B": BATCH}}]
    document = {
        "StartAt": "P",
        "States": {"P": {"Type": "Parallel", "Branches": branches, "End": True}},
    }
    path = tmp_path / "report.asl.json"
    path.write_text(json.dumps(document, indent=1))
    (only,) = aws_only(path)  # Batch runs on moto's job states
    assert only.warning and only.step == "Q" and only.field == "Resource"
    assert "athena:startQueryExecution.sync runs on AWS only" in str(only)
    assert "moto's Athena does not answer StartQueryExecution" in str(only)


def test_validate_accepts_it_for_aws_with_the_line_that_says_so(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "report.asl.json"
    path.write_text(json.dumps({"StartAt": "Q", "States": {"Q": ATHENA}}))
    assert cli.main(["validate", "--no-template", str(path)]) == 0
    out = capsys.readouterr().out
    assert "warning: " in out and "runs on AWS only" in out and "report ok" in out


def test_the_local_stack_refuses_it_and_runs_the_others(tmp_path: Path) -> None:
    (tmp_path / "report.asl.json").write_text(json.dumps({"StartAt": "Q", "States": {"Q": ATHENA}}))
    (tmp_path / "batch.asl.json").write_text(json.dumps({"StartAt": "B", "States": {"B": BATCH}}))
    workflows = Workflows(MemoryStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    (failure,) = publish_folder(workflows, tmp_path, {}, runner="arn:aws:lambda:::function:r")
    assert "'report'" in failure and "runs on AWS only" in failure
    assert set(workflows.all()) == {"batch"}
    assert "runs on AWS only" in workflows.broken()["report"][0]


def test_the_local_stack_refuses_it_as_a_custom_resource_too(tmp_path: Path) -> None:
    (tmp_path / "report.asl.json").write_text(json.dumps({"StartAt": "Q", "States": {"Q": ATHENA}}))
    (tmp_path / "batch.asl.json").write_text(json.dumps({"StartAt": "B", "States": {"B": BATCH}}))
    asked: list[str] = []

    def publisher(token: str, payload: bytes) -> None:  # answers as CloudFormation is answered
        event = json.loads(payload)
        asked.append(event["ResourceProperties"]["Definition"])
        answer = {"Status": "SUCCESS", "PhysicalResourceId": "stepwell-workflow:batch"}
        publications.answer(event["RequestId"], json.dumps(answer).encode())

    publications = Publications(publisher, "stack", lambda request: request, lambda code: tmp_path)
    code = "arn:aws:lambda:us-east-1:123456789012:function:app-workflows"
    (failure,) = publications.deploy(
        {
            logical: {"ServiceToken": "arn:publisher", "Definition": file, "Code": code}
            for logical, file in (("Report", "report.asl.json"), ("Batch", "batch.asl.json"))
        }
    )
    assert failure.startswith("Report: Custom::StepwellWorkflow Report: ")
    assert "report.asl.json:" in failure
    assert "athena:startQueryExecution.sync runs on AWS only" in failure
    assert asked == ["batch.asl.json"]  # the publisher never saw the machine it would accept


@pytest.mark.parametrize(
    ("service_action", "given", "started", "asked", "running", "done", "failed", "result"),
    [
        (
            "elasticmapreduce:createCluster",
            {"Name": "c"},
            {"ClusterId": "j-1"},
            {"ClusterId": "j-1"},
            {"Cluster": {"Id": "j-1", "Status": {"State": "STARTING"}}},
            {"Cluster": {"Id": "j-1", "Status": {"State": "WAITING"}}},
            {"Cluster": {"Id": "j-1", "Status": {"State": "TERMINATED_WITH_ERRORS"}}},
            {"ClusterId": "j-1"},
        ),
        (
            "elasticmapreduce:addStep",
            {"ClusterId": "j-1", "Step": {}},
            {"StepId": "s-1"},
            {"ClusterId": "j-1", "StepId": "s-1"},
            {"Step": {"Id": "s-1", "Status": {"State": "PENDING"}}},
            {"Step": {"Id": "s-1", "Status": {"State": "COMPLETED"}}},
            {"Step": {"Id": "s-1", "Status": {"State": "FAILED"}}},
            {"StepId": "s-1"},
        ),
        (
            "sagemaker:createTrainingJob",
            {"TrainingJobName": "t"},
            {"TrainingJobArn": "arn:t"},
            {"TrainingJobName": "t"},
            {"TrainingJobName": "t", "TrainingJobStatus": "InProgress"},
            {"TrainingJobName": "t", "TrainingJobStatus": "Completed"},
            {"TrainingJobName": "t", "TrainingJobStatus": "Stopped"},
            {"TrainingJobName": "t", "TrainingJobStatus": "Completed"},
        ),
        (
            "sagemaker:createProcessingJob",
            {"ProcessingJobName": "p"},
            {},
            {"ProcessingJobName": "p"},
            {"ProcessingJobStatus": "InProgress"},
            {"ProcessingJobStatus": "Completed"},
            {"ProcessingJobStatus": "Failed"},
            {"ProcessingJobStatus": "Completed"},
        ),
        (
            "mediaconvert:createJob",
            {"Role": "r"},
            {"Job": {"Id": "m-1"}},
            {"Id": "m-1"},
            {"Job": {"Status": "PROGRESSING"}},
            {"Job": {"Status": "COMPLETE"}},
            {"Job": {"Status": "ERROR"}},
            {"Job": {"Status": "COMPLETE"}},
        ),
    ],
)
def test_the_jobs_of_emr_sagemaker_and_mediaconvert_are_read_as_step_functions_reads_them(
    service_action: str,
    given: Any,
    started: Any,
    asked: Any,
    running: Any,
    done: Any,
    failed: Any,
    result: Any,
) -> None:
    found = synced(*service_action.split(":"))
    assert found is None  # request-response: no wait
    found = synced(*f"{service_action}.sync".split(":"))
    assert found is not None and found.request(given, started) == asked
    assert [found.outcome(d) for d in (running, done, failed)] == ["running", "succeeded", "failed"]
    assert found.result(done) == result


def test_emr_actions_take_step_functions_parameters_not_the_apis() -> None:
    add_step = "arn:aws:states:::elasticmapreduce:addStep.sync"
    assert problems(add_step, {"ClusterId": "j-1", "Step": {"Name": "s"}}) == []
    [message] = problems(add_step, {"ClusterId": "j-1", "JobFlowId": "j"})
    taken = "elasticmapreduce:addStep takes no parameter 'JobFlowId' (it takes ClusterId, Step)"
    assert taken in message
    create = "arn:aws:states:::elasticmapreduce:createCluster"
    assert problems(create, {"Name": "c", "Instances": {}, "ReleaseLabel": "emr-6.15.0"}) == []


def test_an_emr_step_and_a_mediaconvert_job_run_on_aws_only(tmp_path: Path) -> None:
    states = {
        "Step": {
            "Type": "Task",
            "Resource": "arn:aws:states:::elasticmapreduce:addStep.sync",
            "Parameters": {"ClusterId": "j-1", "Step": {"Name": "s"}},
            "Next": "Convert",
        },
        "Convert": {
            "Type": "Task",
            "Resource": "arn:aws:states:::mediaconvert:createJob.sync",
            "Parameters": {"Role": "arn:aws:iam::1:role/r", "Settings": {}},
            "End": True,
        },
    }
    path = tmp_path / "media.asl.json"
    path.write_text(json.dumps({"StartAt": "Step", "States": states}, indent=1))
    step, convert = aws_only(path)
    assert "moto's EMR never ends a step" in str(step) and step.step == "Step"
    assert "moto has no MediaConvert" in str(convert) and convert.step == "Convert"
