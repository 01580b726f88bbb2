"""A YAML workflow's publication binds every function it runs: its task steps' and their
compensations' (a saga's undo steps are dispatched by the ARN the publication bound, like any
task: the logical id names no function on Lambda)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stepwell.catalog import load_definitions
from stepwell.runtime import custom_resource, describing
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.publishing import Workflows, bind, unbound_functions
from stepwell.store.memory import MemoryStore

STACK = (
    "arn:aws:cloudformation:us-east-1:123456789012:stack/shop/0f6a5a10-aaaa-bbbb-cccc-1234567890ab"
)
CODE = "arn:aws:lambda:us-east-1:123456789012:function:shop-Workflows-X1:4"


def arn(name: str) -> str:
    return f"arn:aws:lambda:us-east-1:123456789012:function:shop-{name}-A1"


SAGA = """\
name: saga
steps:
  charge:
    function: ChargeCardFunction
    compensate: RefundChargeFunction
  ship:
    depends_on: charge
    function: ShipOrderFunction
    compensate: {function: UnshipFunction, retry: {max_attempts: 2}}
  notify:
    depends_on: ship
    function: arn:aws:lambda:us-east-1:123456789012:function:legacy-notify
    compensate: arn:aws:lambda:us-east-1:123456789012:function:legacy-unnotify
"""
STACK_FUNCTIONS = {
    name: arn(name)
    for name in (
        "ChargeCardFunction",
        "RefundChargeFunction",
        "ShipOrderFunction",
        "UnshipFunction",
        "ReportFunction",
    )
}


def publish(tmp_path: Path, stack_functions: Mapping[str, str]) -> tuple[Any, Workflows]:
    """The saga published by a Custom::StepwellWorkflow of a stack with ``stack_functions``."""
    (tmp_path / "saga.yaml").write_text(SAGA)
    workflows = Workflows(MemoryStore(), FakeClock(datetime(2026, 1, 1, tzinfo=UTC)))
    event = {
        "RequestType": "Create",
        "ResponseURL": "https://cloudformation-custom-resource-response.example/x",
        "StackId": STACK,
        "RequestId": "r-1",
        "LogicalResourceId": "SagaWorkflow",
        "ResourceType": "Custom::StepwellWorkflow",
        "ResourceProperties": {"ServiceToken": "t", "Definition": "saga.yaml", "Code": CODE},
    }
    outcome = custom_resource.handle(
        event,
        workflows,
        lambda function, ask: json.loads(json.dumps(describing.answer(ask, tmp_path))),
        lambda stack: stack_functions,
    )
    return outcome, workflows


def test_a_publication_binds_the_functions_of_compensations_too(tmp_path: Path) -> None:
    outcome, workflows = publish(tmp_path, STACK_FUNCTIONS)
    assert outcome.ok, outcome.reason
    published = workflows.get("saga")
    assert published is not None
    # Only what it runs: the stack's ReportFunction is no part of this workflow's version.
    assert published.functions == {
        name: STACK_FUNCTIONS[name]
        for name in (
            "ChargeCardFunction",
            "RefundChargeFunction",
            "ShipOrderFunction",
            "UnshipFunction",
        )
    }


def test_a_compensation_the_stack_does_not_have_is_refused_by_name(tmp_path: Path) -> None:
    missing = {k: v for k, v in STACK_FUNCTIONS.items() if k != "UnshipFunction"}
    outcome, workflows = publish(tmp_path, missing)
    assert not outcome.ok
    assert "step 'ship' is undone by 'UnshipFunction'" in outcome.reason
    assert workflows.get("saga") is None


def test_unbound_functions_names_steps_and_compensations(tmp_path: Path) -> None:
    (tmp_path / "saga.yaml").write_text(SAGA)
    ((saga, _),) = load_definitions([tmp_path / "saga.yaml"])
    assert unbound_functions(bind(saga, {}, None)) == [
        "step 'charge' names 'ChargeCardFunction'",
        "step 'charge' is undone by 'RefundChargeFunction'",
        "step 'ship' names 'ShipOrderFunction'",
        "step 'ship' is undone by 'UnshipFunction'",
    ]
