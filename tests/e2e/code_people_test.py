"""People in code-first workflows, through the local stack: ``ctx.input`` asks for a form whose
answer the server checks against its schema (a 422 naming every problem leaves the step
waiting; a valid answer is what the code gets; the link answers once), and ``ctx.approval``
takes the YAML approval's options: reminders, escalations, and the run's starter refused under
``forbid_self_approval``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import (
    approval_requested,
    approval_requests,
    finished,
    remind_for_two_days,
    steps_of,
)

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

EXPENSE = '''\
"""An expense: a clerk fills in its details, then two people approve it."""

from typing import Any

from stepwell import Context, workflow

DETAILS = {
    "type": "object",
    "required": ["amount", "approver"],
    "properties": {
        "amount": {"type": "integer", "minimum": 1},
        "approver": {"type": "string", "minLength": 1},
    },
}


@workflow(name="expense-code")
def expense(ctx: Context, input: dict[str, Any]) -> dict[str, Any]:
    details = ctx.input(
        "details",
        form=DETAILS,
        assignees=["clerk@example.com"],
        message=f"Details of expense {input['ref']}",
        timeout="2d",
    )
    decision = ctx.approval(
        "approve",
        message=f"Pay {details['amount']}?",
        approvers=[details["approver"], "ann@example.com"],
        timeout="3d",
        remind="4h",
        escalate=[{"after": "1d", "to": ["cfo@example.com"]}, {"after": "2d", "action": "reject"}],
        forbid_self_approval=True,
    )
    return {"amount": details["amount"], "approved": decision.approved}
'''


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    (folder / "expense_code.py").write_text(EXPENSE, encoding="utf-8")
    with local_stack(folder) as started:
        yield started


def _form_link(stack: LocalStack, run_id: str) -> dict[str, Any]:
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "input.requested" and e["detail"]["run_id"] == run_id, 30
    )
    assert event is not None
    (link,) = event["detail"]["links"]
    return dict(link)


def _answer(api: Client, url: str, answer: Any) -> Any:
    return api.request("POST", url, json_body=answer, headers={"accept": "application/json"})


def test_an_input_forms_answer_is_checked_then_given_to_the_code_once(stack: LocalStack) -> None:
    api = Client(stack.url)
    with stack.hold():
        run_id = api.start_run("expense-code", {"ref": "e-1"}).body["run_id"]
        link = _form_link(stack, run_id)
        assert link["assignee"] == "clerk@example.com"
        refused = _answer(api, link["form_url"], {"amount": 0})
        assert refused.status == 422, refused.text
        problems = refused.text
        assert "approver" in problems and "amount" in problems  # every problem named
        assert steps_of(api.run(run_id))["details"]["status"] == "waiting"
        starter = str(api.run(run_id)["run"]["started_by"]).rsplit("/", 1)[-1]
        answered = _answer(api, link["form_url"], {"amount": 40, "approver": starter})
        assert answered.status == 200, answered.text
        assert _answer(api, link["form_url"], {"amount": 41, "approver": "x"}).status == 409
        links = approval_requested(stack, run_id)["links"]
        by = {lk["approver"]: lk for lk in links}
        assert sorted(by) == sorted([starter, "ann@example.com"])
        # The run's starter may not approve their own expense.
        assert api.decide(by[starter]["approve_url"], "approve").status == 409
        assert api.decide(by["ann@example.com"]["approve_url"], "approve").status == 200
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded", detail["run"]
    assert detail["run"]["output"] == {"amount": 40, "approved": True}
    assert steps_of(detail)["details"]["output"] == {"amount": 40, "approver": starter}
    types = [e["type"] for e in api.timeline(run_id)]
    assert "step_answered" in types and "decision_ignored" in types


def test_a_code_first_approval_is_reminded_escalated_then_rejected(stack: LocalStack) -> None:
    api = Client(stack.url)
    with stack.hold():
        run_id = api.start_run("expense-code", {"ref": "e-2"}).body["run_id"]
        link = _form_link(stack, run_id)
        answer = {"amount": 7, "approver": "bob@example.com"}
        assert _answer(api, link["form_url"], answer).status == 200
        approval_requested(stack, run_id)
        # Time moves only when the test says: 4 h at a time, each reminder at its own time.
        remind_for_two_days(stack, run_id)
    detail = finished(stack, api, run_id)
    assert detail["run"]["output"] == {"amount": 7, "approved": False}
    reasons = [e["detail"]["reason"] for e in approval_requests(stack, run_id)]
    assert reasons == ["requested", *["reminder"] * 5, "escalation", *["reminder"] * 6]
    escalated = next(
        e for e in approval_requests(stack, run_id) if e["detail"]["reason"] == "escalation"
    )
    assert [lk["approver"] for lk in escalated["detail"]["links"]] == ["cfo@example.com"]
    types = [e["type"] for e in api.timeline(run_id)]
    assert types.count("approval_reminded") == 11 and types.count("approval_escalated") == 2
