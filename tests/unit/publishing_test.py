"""Publishing workflows: the version new runs take, who holds a name, retiring, refusals."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import pytest

from stepwell.definition.models import Workflow
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.publishing import PublishRefused, RetiredWorkflow, Workflows, bind
from stepwell.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
CHARGE = "arn:aws:lambda:us-east-1:123456789012:function:shop-ChargeCard"


def order(description: str = "orders", **triggers: Any) -> Workflow:
    return Workflow.model_validate(
        {
            "name": "orders",
            "description": description,
            "triggers": triggers,
            "steps": {"charge": {"function": "ChargeCardFunction"}},
        }
    )


class Wiring:
    """Records what a publication asks of the trigger wiring."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str, str | None]] = []

    def wire(self, workflow: Workflow, previous: Workflow | None = None) -> None:
        self.calls.append(("wire", workflow.version, previous.version if previous else None))

    def unwire(self, workflow: Workflow) -> None:
        self.calls.append(("unwire", workflow.version, None))


@pytest.fixture
def wiring() -> Wiring:
    return Wiring()


@pytest.fixture
def workflows(wiring: Wiring) -> Workflows:
    return Workflows(MemoryStore(), FakeClock(T0), wiring)


def bound(workflow: Workflow) -> Workflow:
    return bind(workflow, {"ChargeCardFunction": CHARGE}, None)


def test_a_publication_is_the_version_new_runs_take(workflows: Workflows) -> None:
    first = workflows.publish(bound(order()), "shop/Orders", "p1")
    assert (first.status, first.previous) == ("new", None)
    assert workflows.get("orders") == bound(order())
    again = workflows.publish(bound(order()), "shop/Orders", "p1")
    assert (again.status, again.version) == ("unchanged", first.version)
    changed = workflows.publish(bound(order("new text")), "shop/Orders", "p1")
    assert (changed.status, changed.previous) == ("changed", first.version)
    assert workflows.get("orders") == bound(order("new text"))
    # the version a run pinned stays readable
    assert workflows.store.get_definition("orders", first.version) == bound(order())


def test_the_functions_a_workflow_runs_are_part_of_its_version(workflows: Workflows) -> None:
    one = workflows.publish(bound(order()), "shop/Orders", "p1")
    moved = bind(order(), {"ChargeCardFunction": CHARGE + "-v2"}, None)
    two = workflows.publish(moved, "shop/Orders", "p1")
    assert two.status == "changed" and two.version != one.version


def test_a_step_function_nobody_binds_is_refused_with_the_fix(workflows: Workflows) -> None:
    with pytest.raises(PublishRefused) as refused:
        workflows.publish(order(), "shop/Orders", "p1")
    assert "step 'charge' names 'ChargeCardFunction'" in str(refused.value)
    assert "Functions" in str(refused.value)
    assert workflows.get("orders") is None


def test_a_plain_lambda_named_by_arn_needs_no_binding(workflows: Workflows) -> None:
    plain = Workflow.model_validate({"name": "plain", "steps": {"a": {"function": CHARGE}}})
    assert workflows.publish(plain, "shop/Plain", "p1").status == "new"


def test_a_code_first_workflow_needs_the_function_that_replays_it(workflows: Workflows) -> None:
    code = Workflow.model_validate(
        {"name": "flow", "steps": {}, "code": "flow.py:flow", "code_version": "src-1"}
    )
    with pytest.raises(PublishRefused, match="runner"):
        workflows.publish(code, "shop/Flow", "p1")
    runner = "arn:aws:lambda:us-east-1:123456789012:function:shop-Workflows:3"
    published = workflows.publish(bind(code, {}, runner), "shop/Flow", "p1")
    assert published.status == "new"
    assert workflows.get("flow") is not None and workflows.get("flow").runner == runner  # type: ignore[union-attr]


def test_another_owner_cannot_take_a_published_name(workflows: Workflows) -> None:
    workflows.publish(bound(order()), "shop/Orders", "p1")
    with pytest.raises(PublishRefused) as refused:
        workflows.publish(bound(order("mine")), "billing/Orders", "p9")
    assert "published by shop/Orders" in str(refused.value)
    assert workflows.get("orders") == bound(order())


def test_a_retired_workflow_takes_no_new_runs_and_frees_its_name(
    workflows: Workflows, wiring: Wiring
) -> None:
    workflows.publish(bound(order()), "shop/Orders", "p1")
    assert not workflows.retire("orders", "shop/Orders", "another-publication")
    assert workflows.retire("orders", "shop/Orders", "p1")
    assert workflows.get("orders") is None
    assert ("unwire", bound(order()).version, None) in wiring.calls
    with pytest.raises(RetiredWorkflow, match="retired"):
        workflows.current("orders")
    assert "orders" not in workflows.all()
    # another stack may publish the name now
    assert workflows.publish(bound(order("theirs")), "billing/Orders", "p9").status == "new"


def test_triggers_are_wired_when_a_version_changes_only(
    workflows: Workflows, wiring: Wiring
) -> None:
    first = workflows.publish(bound(order()), "shop/Orders", "p1")
    workflows.publish(bound(order()), "shop/Orders", "p1")
    second = workflows.publish(
        bound(order(schedules=[{"expression": "rate(1 day)"}])), "shop/Orders", "p1"
    )
    assert wiring.calls == [
        ("wire", first.version, None),
        ("wire", second.version, first.version),
    ]


def test_a_dry_run_changes_nothing(workflows: Workflows, wiring: Wiring) -> None:
    dry = workflows.publish(bound(order()), "shop/Orders", "p1", dry_run=True)
    assert dry.status == "new"
    assert workflows.get("orders") is None and wiring.calls == []


def test_a_refused_publication_keeps_the_version_in_force(workflows: Workflows) -> None:
    workflows.publish(bound(order()), "shop/Orders", "p1")
    refused = workflows.refuse("orders", "shop/Orders", "p1", ["orders.yaml:3:5: bad"])
    assert refused.status == "refused"
    assert workflows.get("orders") == bound(order())
    assert workflows.broken() == {"orders": ["orders.yaml:3:5: bad"]}
    workflows.publish(bound(order("fixed")), "shop/Orders", "p1")
    assert workflows.broken() == {}
