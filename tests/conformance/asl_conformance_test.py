"""The conformance suite: every case of ``cases/*.yaml`` (machines from the Amazon States
Language specification and the Step Functions developer guide) started through the local
stack's API and run to its end with virtual time; its output or error, its step records and the
time it took must be what the documentation gives (see :mod:`conformance_cases`)."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any

import pytest
from conformance_cases import CASES, Case, differences
from e2e_helpers import finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.runtime.wiring import local_apis


def answer(stack: LocalStack, api: Client, run_id: str, answers: list[dict[str, Any]]) -> None:
    """Answer the run's task tokens in order, as the code that answers Step Functions does
    (SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat shapes)."""
    used: set[str] = set()
    token = None
    for given in answers:
        if token is None:
            event = stack.wait_for_event(
                lambda e: (
                    e["detail-type"] == "callback.requested"
                    and e["detail"]["run_id"] == run_id
                    and e["detail"]["token"] not in used
                )
            )
            assert event is not None, f"run {run_id} opened no task token"
            token = event["detail"]["token"]
        if "heartbeat" in given:
            reply = api.post("/tasks/heartbeat", {"taskToken": token})
        elif "success" in given:
            body = {"taskToken": token, "output": json.dumps(given["success"])}
            reply = api.post("/tasks/success", body)
        else:
            reply = api.post("/tasks/failure", {"taskToken": token, **given["failure"]})
        assert reply.status in (200, 202), reply.text
        if "heartbeat" not in given:
            used.add(token)
            token = None


def api_host(stack: LocalStack) -> str:
    """The execute-api host of the stack's API (served on loopback)."""
    served = local_apis(stack.functions[0].environment) or {}
    return next(iter(served))


def moment(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def seconds_between(start: str, end: str) -> float:
    return (moment(end) - moment(start)).total_seconds()


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c.topic}/{c.name}")
def test_case(case: Case, stack: LocalStack, api: Client) -> None:
    text = json.dumps(case.input).replace("${STACK_URL}", stack.url.rstrip("/"))
    given = json.loads(text.replace("${STACK_API_HOST}", api_host(stack)))
    if case.answers:
        with stack.hold():
            started = api.start_run(case.workflow, given)
            assert started.ok, started.text
            answer(stack, api, started.body["run_id"], case.answers)
    else:
        started = api.start_run(case.workflow, given)
        assert started.ok, started.text
    detail = finished(stack, api, started.body["run_id"])
    run = detail["run"]
    assert run["status"] == case.expected_status, run.get("error")
    found: list[str] = []
    if case.error is not None:
        error = run.get("error") or {}
        found += differences(case.error, {k: error.get(k) for k in case.error}, "error")
    if case.output is not ...:
        found += differences(case.output, run.get("output"), "output")
    steps = steps_of(detail)
    for key, fields in case.steps.items():
        if key not in steps:
            found.append(f"no step {key!r} (steps: {sorted(steps)})")
            continue
        found += differences(fields, {k: steps[key].get(k) for k in fields}, f"steps[{key}]")
    if case.elapsed is not None:
        took = seconds_between(run["started_at"], run["ended_at"])
        if took < case.elapsed:
            found.append(f"the run took {took}s of virtual time, not at least {case.elapsed}s")
    if case.ended_after is not None and moment(run["ended_at"]) < moment(case.ended_after):
        found.append(f"the run ended at {run['ended_at']}, before {case.ended_after}")
    if case.within is not None:
        took = seconds_between(run["started_at"], run["ended_at"])
        if took > case.within:
            found.append(f"the run took {took}s of virtual time, more than {case.within}s")
    assert not found, f"{case.source}\n" + "\n".join(found)
