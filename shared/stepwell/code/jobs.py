"""``ctx.aws_job``: start a job with an AWS call, then wait for its end, as Step Functions'
``.sync`` integrations do (Batch, ECS, Glue, Athena, CodeBuild, EMR, SageMaker, MediaConvert:
``stepwell.definition.jobs``).

The start is an aws step (the runner makes the call); the wait is one ``wait_for_condition``
record, whose check the replay makes through the runner's AWS calls (``Services``) when it is
due, with backoff, and no Lambda runs in between: however long the job, two records.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from stepwell.code.errors import StepFailed
from stepwell.code.replay import Services
from stepwell.definition.jobs import Job

INTERVAL = "5s"
BACKOFF = 2.0
MAX_INTERVAL = "1m"
"""Checks 5 s after the start, then twice as long each time, at most a minute apart."""


class JobNotWatched(RuntimeError):
    """The replay was given no way to call AWS (it runs outside the runner function)."""

    retryable = False


def wait(
    name: str,
    job: Job,
    service: str,
    given: dict[str, Any],
    started: Any,
    services: Services | None,
    wait_for_condition: Callable[..., Any],
    timeout: Any,
    role: str | None = None,
) -> Any:
    """Wait for the job that ``started`` (the start call's response) names, each check made as
    ``role`` (the start's: a job is seen by the account and role that started it); return its
    description as the integration gives it, or raise StepFailed: ``States.TaskFailed`` with
    that description as JSON when the job failed, ``StepTimedOut`` past ``timeout``."""
    request = job.request(given, started if isinstance(started, dict) else {})

    def check() -> Any:
        if services is None:
            raise JobNotWatched(
                f"step {name!r}: waiting for a job needs the runner function's AWS calls"
            )
        return services(service, job.describe, request, role)

    try:
        described = wait_for_condition(
            f"{name} job",
            check,
            done=lambda value: job.outcome(value) != "running",
            interval=INTERVAL,
            backoff=BACKOFF,
            max_interval=MAX_INTERVAL,
            timeout=timeout,
        )
    except StepFailed as failed:
        if failed.error_type == "ConditionTimedOut":
            raise StepFailed(name, "StepTimedOut", failed.message) from failed
        raise
    result = job.result(described)
    if job.outcome(described) == "failed":
        raise StepFailed(name, "States.TaskFailed", json.dumps(result, separators=(",", ":")))
    return result
