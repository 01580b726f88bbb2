"""The jobs a ``.sync`` service integration waits for (``arn:aws:states:::batch:submitJob.sync``
and the like): how the call that started a job names it, the call that describes it, and when
the description says it ended, well or not, as Step Functions reads them.

Calls and fields are spelled as Stepwell's aws steps spell them (actions in camelCase,
parameters and results in PascalCase).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Literal

Given = Mapping[str, Any]
"""The start call's parameters, or a response."""
Outcome = Literal["running", "succeeded", "failed"]


@dataclass(frozen=True)
class Job:
    """One kind of job: ``describe`` is called with ``request(start parameters, start
    response)``; ``outcome`` reads that description; ``result`` is what the task gives (its
    output, or as JSON the Cause of its failure)."""

    describe: str
    request: Callable[[Given, Given], dict[str, Any]]
    outcome: Callable[[Given], Outcome]
    result: Callable[[Given], Any]
    aws_only: str | None = None
    """Why the local stack cannot run it (None: it runs on moto's states of the job)."""


def _first(response: Given, field: str) -> dict[str, Any]:
    found = response.get(field)
    first = found[0] if isinstance(found, list) and found else None
    return dict(first) if isinstance(first, dict) else {}


def _state(value: Any, succeeded: set[str], failed: set[str]) -> Outcome:
    if value in succeeded:
        return "succeeded"
    return "failed" if value in failed else "running"


def _ecs_outcome(described: Given) -> Outcome:
    task = _first(described, "Tasks")
    if task.get("LastStatus") != "STOPPED":
        return "running"
    # A task stopped with an essential container's non-zero exit (or none started) failed.
    codes = [c.get("ExitCode") for c in task.get("Containers") or [] if isinstance(c, dict)]
    exited = all(code == 0 for code in codes) and bool(codes)
    return "succeeded" if exited else "failed"


def _cluster(described: Given) -> dict[str, Any]:
    return dict(dict(described.get("Cluster") or {}).get("Status") or {})


def _sagemaker(kind: str) -> Job:
    """SageMaker's ``create<kind>.sync``: ``describe<kind>`` by its name, whose response is the
    task's result."""
    return Job(
        f"describe{kind}",
        lambda given, started: {f"{kind}Name": given.get(f"{kind}Name")},
        lambda described: _state(
            described.get(f"{kind}Status"), {"Completed"}, {"Failed", "Stopped"}
        ),
        dict,
    )


JOBS: dict[tuple[str, str], Job] = {
    ("batch", "submitJob"): Job(
        "describeJobs",
        lambda given, started: {"Jobs": [started["JobId"]]},
        lambda described: _state(
            _first(described, "Jobs").get("Status"), {"SUCCEEDED"}, {"FAILED"}
        ),
        lambda described: _first(described, "Jobs"),
    ),
    ("ecs", "runTask"): Job(
        "describeTasks",
        lambda given, started: {
            "Cluster": given.get("Cluster") or _first(started, "Tasks").get("ClusterArn"),
            "Tasks": [_first(started, "Tasks").get("TaskArn")],
        },
        _ecs_outcome,
        lambda described: _first(described, "Tasks"),
    ),
    ("glue", "startJobRun"): Job(
        "getJobRun",
        lambda given, started: {"JobName": given.get("JobName"), "RunId": started["JobRunId"]},
        lambda described: _state(
            dict(described.get("JobRun") or {}).get("JobRunState"),
            {"SUCCEEDED"},
            {"FAILED", "ERROR", "TIMEOUT", "STOPPED"},
        ),
        lambda described: dict(described.get("JobRun") or {}),
    ),
    ("athena", "startQueryExecution"): Job(
        "getQueryExecution",
        lambda given, started: {"QueryExecutionId": started["QueryExecutionId"]},
        lambda described: _state(
            dict(dict(described.get("QueryExecution") or {}).get("Status") or {}).get("State"),
            {"SUCCEEDED"},
            {"FAILED", "CANCELLED"},
        ),
        lambda described: {"QueryExecution": described.get("QueryExecution")},
        aws_only="moto's Athena does not answer StartQueryExecution as botocore sends it "
        "('Not yet implemented')",
    ),
    ("codebuild", "startBuild"): Job(
        "batchGetBuilds",
        lambda given, started: {"Ids": [dict(started.get("Build") or {}).get("Id")]},
        lambda described: _state(
            _first(described, "Builds").get("BuildStatus"),
            {"SUCCEEDED"},
            {"FAILED", "FAULT", "TIMED_OUT", "STOPPED"},
        ),
        lambda described: {"Build": _first(described, "Builds")},
    ),
    ("elasticmapreduce", "createCluster"): Job(
        "describeCluster",
        lambda given, started: {"ClusterId": started.get("ClusterId")},
        lambda described: _state(
            _cluster(described).get("State"), {"WAITING"}, {"TERMINATED", "TERMINATED_WITH_ERRORS"}
        ),
        lambda described: {"ClusterId": dict(described.get("Cluster") or {}).get("Id")},
    ),
    ("elasticmapreduce", "terminateCluster"): Job(
        "describeCluster",
        lambda given, started: {"ClusterId": given.get("ClusterId")},
        lambda described: _state(
            _cluster(described).get("State"), {"TERMINATED", "TERMINATED_WITH_ERRORS"}, set()
        ),
        lambda described: {},
    ),
    ("elasticmapreduce", "addStep"): Job(
        "describeStep",
        lambda given, started: {"ClusterId": given.get("ClusterId"), "StepId": started["StepId"]},
        lambda described: _state(
            dict(dict(described.get("Step") or {}).get("Status") or {}).get("State"),
            {"COMPLETED"},
            {"CANCELLED", "FAILED", "INTERRUPTED"},
        ),
        lambda described: {"StepId": dict(described.get("Step") or {}).get("Id")},
        aws_only="moto's EMR never ends a step (it stays RUNNING)",
    ),
    ("sagemaker", "createTrainingJob"): _sagemaker("TrainingJob"),
    ("sagemaker", "createTransformJob"): _sagemaker("TransformJob"),
    ("sagemaker", "createProcessingJob"): _sagemaker("ProcessingJob"),
    ("mediaconvert", "createJob"): Job(
        "getJob",
        lambda given, started: {"Id": dict(started.get("Job") or {}).get("Id")},
        lambda described: _state(
            dict(described.get("Job") or {}).get("Status"), {"COMPLETE"}, {"ERROR", "CANCELED"}
        ),
        lambda described: {"Job": described.get("Job")},
        aws_only="moto has no MediaConvert",
    ),
}
"""The ``.sync`` integrations Stepwell runs, by service and the action that starts the job."""


def job(service: str, action: str) -> Job | None:
    """The job ``service:action`` starts (None: Stepwell waits for no such job)."""
    return JOBS.get((service, action))


def synced(service: str, action: str) -> Job | None:
    """The job an integration's ``service:action.sync`` waits for (None: it is no such form)."""
    return job(service, action.removesuffix(".sync")) if action.endswith(".sync") else None
