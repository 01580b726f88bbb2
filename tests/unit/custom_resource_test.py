"""Custom::StepwellWorkflow: CloudFormation's Create, Update and Delete requests, answered in
CloudFormation's own shapes, with the workflow described by the function that holds it."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stepwell.runtime import custom_resource, describing
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.publishing import Workflows
from stepwell.store.memory import MemoryStore

T0 = datetime(2026, 1, 1, tzinfo=UTC)
STACK = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/0f6a5a10-aaaa-bbbb-cccc-1234567890ab"
)
CODE = "arn:aws:lambda:us-east-1:123456789012:function:shop-Workflows-X1:4"
TOKEN = "arn:aws:lambda:us-east-1:123456789012:function:stepwell-publisher"
CHARGE = "arn:aws:lambda:us-east-1:123456789012:function:shop-ChargeCardFunction-A1"

ORDERS = """\
name: orders
steps:
  charge:
    function: ChargeCardFunction
"""
FLOW = """\
from stepwell import Context, workflow


@workflow(name="flow")
def flow(ctx: Context, input: dict) -> dict:
    return ctx.task("charge", function="ChargeCardFunction", input=input)
"""


@pytest.fixture
def package(tmp_path: Path) -> Path:
    (tmp_path / "orders.yaml").write_text(ORDERS)
    (tmp_path / "flow.py").write_text(FLOW)
    (tmp_path / "broken.yaml").write_text("name: broken\nsteps:\n  a: {type: nope}\n")
    return tmp_path


@pytest.fixture
def workflows() -> Workflows:
    return Workflows(MemoryStore(), FakeClock(T0))


def request(kind: str, definition: str = "orders.yaml", **more: Any) -> dict[str, Any]:
    """A request as CloudFormation sends it to the service token."""
    return {
        "RequestType": kind,
        "ServiceToken": TOKEN,
        "ResponseURL": "https://cloudformation-custom-resource-response-useast1.s3.amazonaws.com/x",
        "StackId": STACK,
        "RequestId": "5d478e5f-0c1c-4f23-9f8e-3c7c6c7f1d11",
        "LogicalResourceId": "OrdersWorkflow",
        "ResourceType": "Custom::StepwellWorkflow",
        "ResourceProperties": {"ServiceToken": TOKEN, "Definition": definition, "Code": CODE},
        **more,
    }


def handle(event: Mapping[str, Any], workflows: Workflows, package: Path) -> Any:
    seen: list[str] = []

    def describe(function: str, ask: Mapping[str, Any]) -> Any:
        seen.append(function)
        # the answer travels as JSON, as a RequestResponse invoke's payload does
        return json.loads(json.dumps(describing.answer(ask, package)))

    outcome = custom_resource.handle(
        event, workflows, describe, lambda stack: {"ChargeCardFunction": CHARGE}
    )
    assert seen in ([], [CODE])
    return outcome


def test_create_publishes_the_workflow_with_the_stacks_functions(
    workflows: Workflows, package: Path
) -> None:
    outcome = handle(request("Create"), workflows, package)
    assert outcome.ok, outcome.reason
    assert outcome.physical_id == "stepwell-workflow:orders"
    published = workflows.get("orders")
    assert published is not None and published.functions == {"ChargeCardFunction": CHARGE}
    assert published.runner is None  # YAML needs no replay
    assert outcome.data["Version"] == published.version
    body = json.loads(custom_resource.response_body(request("Create"), outcome))
    assert body["Status"] == "SUCCESS"
    assert body["PhysicalResourceId"] == "stepwell-workflow:orders"
    assert body["LogicalResourceId"] == "OrdersWorkflow" and body["StackId"] == STACK


def test_a_code_first_workflow_is_replayed_by_the_function_that_holds_it(
    workflows: Workflows, package: Path
) -> None:
    outcome = handle(request("Create", "flow.py"), workflows, package)
    assert outcome.ok, outcome.reason
    published = workflows.get("flow")
    assert published is not None and published.runner == CODE
    assert published.functions == {"ChargeCardFunction": CHARGE}


def test_role_arn_is_the_role_its_service_calls_run_with(
    workflows: Workflows, package: Path
) -> None:
    """As an AWS::StepFunctions::StateMachine's RoleArn beside its definition (the way a Step
    Functions machine, whose file holds no role, names one)."""
    role = "arn:aws:iam::123456789012:role/shop-orders"
    event = request("Create")
    event["ResourceProperties"]["RoleArn"] = role
    outcome = handle(event, workflows, package)
    assert outcome.ok, outcome.reason
    published = workflows.get("orders")
    assert published is not None and published.role == role
    assert published.functions == {"ChargeCardFunction": CHARGE}
    event["ResourceProperties"]["RoleArn"] = "shop-orders"
    refused = handle(event, workflows, package)
    assert not refused.ok
    assert "RoleArn: role 'shop-orders' is not an IAM role's ARN" in refused.reason


def test_a_broken_file_fails_the_resource_with_every_problem_located(
    workflows: Workflows, package: Path
) -> None:
    outcome = handle(request("Create", "broken.yaml"), workflows, package)
    assert not outcome.ok
    assert "Custom::StepwellWorkflow OrdersWorkflow: broken.yaml:" in outcome.reason
    assert "broken.yaml:3" in outcome.reason
    assert workflows.get("broken") is None


def test_a_missing_file_names_what_the_package_holds(workflows: Workflows, package: Path) -> None:
    outcome = handle(request("Create", "statemachines/orders.yaml"), workflows, package)
    assert not outcome.ok
    assert "no such file" in outcome.reason and "orders.yaml" in outcome.reason
    assert "relative to the function's CodeUri" in outcome.reason


@pytest.mark.parametrize(
    ("properties", "says"),
    [
        ({"Code": CODE}, "Definition is required"),
        ({"Definition": "orders.yaml"}, "Code is required"),
        ({"Definition": "orders.yaml", "Code": "shop-Workflows"}, "Code is required"),
        (
            {"Definition": "orders.yaml", "Code": CODE, "Functions": ["x"]},
            "Functions must map",
        ),
    ],
)
def test_bad_properties_fail_with_the_fix(
    workflows: Workflows, package: Path, properties: dict[str, Any], says: str
) -> None:
    event = request("Create")
    event["ResourceProperties"] = {"ServiceToken": TOKEN, **properties}
    outcome = handle(event, workflows, package)
    assert not outcome.ok and says in outcome.reason


def test_update_publishes_the_new_version_and_delete_retires_it(
    workflows: Workflows, package: Path
) -> None:
    created = handle(request("Create"), workflows, package)
    before = workflows.get("orders")
    (package / "orders.yaml").write_text(ORDERS + "description: changed\n")
    updated = handle(
        request(
            "Update",
            PhysicalResourceId=created.physical_id,
            OldResourceProperties=request("Create")["ResourceProperties"],
        ),
        workflows,
        package,
    )
    assert updated.ok and updated.data["Status"] == "orders=changed"
    after = workflows.get("orders")
    assert after is not None and before is not None and after.version != before.version
    deleted = handle(request("Delete", PhysicalResourceId=created.physical_id), workflows, package)
    assert deleted.ok and workflows.get("orders") is None


def test_a_replaced_publication_does_not_retire_what_its_successor_holds(
    workflows: Workflows, package: Path
) -> None:
    """CloudFormation deletes the old physical id after an update that changed it: only the
    names the new publication does not hold are retired."""
    handle(request("Create"), workflows, package)
    old = "stepwell-workflow:orders,gone"
    handle(request("Delete", PhysicalResourceId=old), workflows, package)
    assert workflows.get("orders") is not None


def test_a_failed_create_is_rolled_back_without_retiring_anything(
    workflows: Workflows, package: Path
) -> None:
    failed = handle(request("Create", "broken.yaml"), workflows, package)
    rollback = handle(request("Delete", PhysicalResourceId=failed.physical_id), workflows, package)
    assert rollback.ok


def test_the_response_stays_within_cloudformations_4096_bytes() -> None:
    outcome = custom_resource.Outcome(False, "stepwell-workflow:", "x" * 10_000)
    body = custom_resource.response_body(request("Create"), outcome)
    assert len(body) <= custom_resource.MAX_RESPONSE
    assert json.loads(body)["Reason"].endswith("(cut)")
