"""Groups of people in approvals and input steps: resolved through the Groups port when the wait
opens (the engine asks with NeedsGroups), recorded on the step, counted as distinct people."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from helpers import EngineDriver
from stepwell.code.files import load_code_file
from stepwell.definition.models import ApprovalStep, Group, InputStep, Workflow
from stepwell.engine.commands import RequestApproval
from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.groups import GroupsTable

FINANCE = ["ann@example.com", "bob@example.com", "cy@example.com"]
GROUPS = {"finance": FINANCE, "warehouse": ["wu@example.com", "Ann@example.com"]}


class CountingGroups(GroupsTable):
    """The groups file, counting what it is asked."""

    def __init__(self, groups: dict[str, list[str]]) -> None:
        super().__init__(groups)
        self.asked: list[frozenset[str]] = []

    def members(self, names: frozenset[str]) -> dict[str, tuple[str, ...] | None]:
        self.asked.append(names)
        return super().members(names)


def world_of(step: dict[str, Any], groups: GroupsTable) -> InProcessWorld:
    workflow = Workflow.model_validate({"name": "pay", "steps": {"approve": step}})
    return InProcessWorld({"pay": workflow}, {}, groups=groups)


def requests(world: InProcessWorld) -> list[RequestApproval]:
    return list(world.approvals)


def test_a_group_and_a_single_mapping_are_lists_of_people() -> None:
    step = ApprovalStep.model_validate({"type": "approval", "approvers": {"group": "finance"}})
    assert step.approvers == [Group(group="finance")]
    form = InputStep.model_validate(
        {"type": "input", "form": {}, "assignees": [{"group": "warehouse"}, "a@example.com"]}
    )
    assert form.assignees == [Group(group="warehouse"), "a@example.com"]
    with pytest.raises(ValidationError, match="grop"):
        ApprovalStep.model_validate({"type": "approval", "approvers": [{"grop": "finance"}]})
    # With a group the quorum waits for the wait to open (or stepwell validate) to be checked.
    ApprovalStep.model_validate(
        {"type": "approval", "approvers": {"group": "finance"}, "quorum": 3}
    )


def test_quorum_2_from_a_group_of_3_completes_on_the_second_distinct_person() -> None:
    groups = CountingGroups(GROUPS)
    world = world_of(
        {"type": "approval", "approvers": [{"group": "finance"}, "ann@example.com"], "quorum": 2},
        groups,
    )
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    assert groups.asked == [frozenset({"finance"})]
    (asked,) = requests(world)
    assert asked.approvers == tuple(FINANCE)  # Ann is named twice: one person, one pair of links
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.input["groups"] == {"finance": FINANCE}
    assert step.input["approvers"] == FINANCE
    world.send(run_id, ApprovalDecided("approve", 1, True, "ann@example.com"))
    world.send(run_id, ApprovalDecided("approve", 1, True, "ann@example.com"))
    assert world.store.load(run_id, ["approve"]).steps["approve"].status == "waiting"
    world.send(run_id, ApprovalDecided("approve", 1, True, "mallory@example.com"))
    assert world.store.load(run_id, ["approve"]).steps["approve"].status == "waiting"
    world.send(run_id, ApprovalDecided("approve", 1, True, "cy@example.com"))
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.status == "succeeded"
    assert [d["approver"] for d in step.output["decisions"]] == [
        "ann@example.com",
        "cy@example.com",
    ]
    assert len(groups.asked) == 1  # decisions read the step's record, never the groups again


def test_the_people_are_those_of_the_groups_when_the_wait_opened() -> None:
    table = {"finance": list(FINANCE)}
    world = world_of({"type": "approval", "approvers": {"group": "finance"}}, GroupsTable(table))
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    table["finance"].append("dee@example.com")  # the file changes: the open wait keeps its people
    world.send(run_id, ApprovalDecided("approve", 1, True, "dee@example.com"))
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.status == "waiting"
    notes = [e.message for e in world.store.timeline(run_id).items if e.type == "decision_ignored"]
    assert notes == ["dee@example.com is not an approver"]


def test_an_unknown_group_fails_the_step_naming_the_field_and_the_group() -> None:
    world = world_of({"type": "approval", "approvers": {"group": "finanse"}}, GroupsTable(GROUPS))
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.status == "failed"
    assert step.error == {
        "type": "UnknownGroup",
        "message": "step 'approve': field 'approvers' names group 'finanse', which the groups "
        "file does not define: add it there, or fix the name",
    }
    assert world.approvals == []  # nobody was asked
    assert world.store.get_run(run_id).status == "failed"


def test_a_quorum_the_groups_cannot_reach_fails_the_step() -> None:
    world = world_of(
        {"type": "approval", "approvers": [{"group": "warehouse"}], "quorum": 3},
        GroupsTable(GROUPS),
    )
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.error["type"] == "QuorumUnreachable"
    assert "quorum 3 needs 3 people, and approvers names 2" in step.error["message"]


def test_an_empty_group_never_opens_the_links_to_anyone() -> None:
    world = world_of(
        {"type": "approval", "approvers": {"group": "none"}}, GroupsTable({"none": []})
    )
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    step = world.store.load(run_id, ["approve"]).steps["approve"]
    assert step.status == "failed" and step.error["type"] == "QuorumUnreachable"
    assert world.approvals == []


def test_an_escalation_to_a_group_asks_its_people_resolved_when_the_wait_opened() -> None:
    groups = CountingGroups({**GROUPS, "cfo": ["cfo@example.com", "ann@example.com"]})
    world = world_of(
        {
            "type": "approval",
            "approvers": ["ann@example.com"],
            "escalate": [{"after": "1d", "to": [{"group": "cfo"}]}],
            "timeout": "2d",
        },
        groups,
    )
    run_id = world.start("pay", {})
    world.run_until_idle()
    assert groups.asked == [frozenset({"cfo"})]
    escalated = [a for a in world.approvals if a.reason == "escalation"]
    assert [a.approvers for a in escalated] == [("cfo@example.com",)]  # Ann had her links
    entries = [e.data for e in world.store.timeline(run_id).items if e.type == "approval_escalated"]
    assert entries == [{"to": ["cfo@example.com", "ann@example.com"]}]


def test_an_input_step_asks_a_group_and_a_person() -> None:
    workflow = Workflow.model_validate(
        {
            "name": "ship",
            "steps": {
                "details": {
                    "type": "input",
                    "form": {"type": "object", "required": ["boxes"]},
                    "assignees": [{"group": "warehouse"}, "a@example.com"],
                }
            },
        }
    )
    world = InProcessWorld({"ship": workflow}, {}, groups=GroupsTable(GROUPS))
    run_id = world.start("ship", {})
    world.run_until_idle(virtual_time=False)
    (asked,) = world.approvals
    assert asked.approvers == ("wu@example.com", "Ann@example.com", "a@example.com")
    world.send(run_id, ApprovalDecided("details", 1, True, "bob@example.com", answer={"boxes": 1}))
    assert world.store.load(run_id, ["details"]).steps["details"].status == "waiting"
    world.send(run_id, ApprovalDecided("details", 1, True, "wu@example.com", answer={"boxes": 1}))
    step = world.store.load(run_id, ["details"]).steps["details"]
    assert step.status == "succeeded" and step.output == {"boxes": 1}
    assert step.input["groups"] == {"warehouse": GROUPS["warehouse"]}


def test_the_engine_asks_for_groups_without_changing_its_input() -> None:
    """Through partial loads, as the orchestrator does (the driver checks the State is left as
    it was given when the engine raises): a wait after a task, and a root wait."""
    definition = {
        "work": {"function": "f"},
        "approve": {
            "type": "approval",
            "depends_on": ["work"],
            "approvers": {"group": "finance"},
            "quorum": 2,
        },
    }
    driver = EngineDriver(definition, groups=GROUPS)
    assert driver.groups_asked == []
    driver.succeed("work", {"ok": True})
    assert driver.groups_asked == [frozenset({"finance"})]
    assert driver.step("approve").input["approvers"] == FINANCE
    root = EngineDriver(
        {"ask": {"type": "approval", "approvers": {"group": "finance"}}},
        groups=GROUPS,
    )
    assert root.groups_asked == [frozenset({"finance"})]
    assert root.step("ask").status == "waiting"
    root.fire("ask")
    assert root.step("ask").error["type"] == "ApprovalTimedOut"


CODE = """\
from stepwell import workflow


@workflow(name="pay-code")
def pay(ctx, input):
    decision = ctx.approval("approve", approvers={"group": "finance"}, quorum=2)
    return {"approved": decision.approved}
"""


def test_a_code_first_approval_asks_a_group(tmp_path: Any) -> None:
    path = tmp_path / "pay_code.py"
    path.write_text(CODE, encoding="utf-8")
    (found,) = load_code_file(path)
    world = InProcessWorld(
        {"pay-code": found.workflow},
        {},
        code={"pay-code": found.code.function},
        groups=GroupsTable(GROUPS),
    )
    run_id = world.start("pay-code", {})
    world.run_until_idle(virtual_time=False)
    assert [a.approvers for a in world.approvals] == [tuple(FINANCE)]
    for person in ("bob@example.com", "bob@example.com"):  # one person counts once
        world.send(run_id, ApprovalDecided("approve", 1, True, person))
    world.run_until_idle(virtual_time=False)
    assert world.store.get_run(run_id).status == "waiting"
    world.send(run_id, ApprovalDecided("approve", 1, True, "cy@example.com"))
    world.run_until_idle(virtual_time=False)
    run = world.store.get_run(run_id)
    assert run.status == "succeeded" and run.output == {"approved": True}
