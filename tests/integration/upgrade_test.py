"""Upgrading the engine with runs in flight: a run started on Stepwell 0.1 finishes on this one.

The fixture holds every item a 0.1.0 engine wrote for the order example waiting on its approval
(``tests/fixtures/upgrade``: its run, steps, timeline and definition version, as DynamoDB held
them). 0.1 had no publications: its definition version binds no functions, and its run item
says no record format. This engine reads them as they are, takes the binding of the workflow's
version now published, and finishes the run on the version it started with.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from orders import HANDLERS

from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.publishing import Workflows, bind
from stepwell.store import codec
from stepwell.store.dynamodb import DynamoStore

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "upgrade"
ACCOUNT_ARN = "arn:aws:lambda:us-east-1:123456789012:function:shop-{}"


def written_by_0_1(dynamodb: Any, table: str) -> dict[str, Any]:
    fixture = json.loads((FIXTURE / "0.1-order-waiting-for-approval.json").read_text())
    for item in fixture["items"]:
        dynamodb.put_item(TableName=table, Item=item)
    return fixture


class Recording(InProcessWorld):
    """The in-process world, noting which function each attempt was sent to."""

    sent: list[tuple[str, str | None, str | None]]

    def dispatch(self, command: Any) -> None:
        self.sent.append((command.key, command.function, command.target))
        super().dispatch(command)


def test_a_run_started_on_0_1_finishes_on_its_own_version(
    store: DynamoStore, dynamodb: Any, example: Any
) -> None:
    fixture = written_by_0_1(dynamodb, store.m.run.Meta.table_name)
    run_id = fixture["run_id"]
    before = store.get_run(run_id)
    assert before is not None and before.status == "waiting"
    raw = dynamodb.get_item(
        TableName=store.m.run.Meta.table_name,
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
    )
    assert "fmt" not in raw["Item"]  # 0.1 wrote no format

    # The app publishes its workflow with this engine: a new version, bound to its functions.
    current = example("order-fulfilment")
    functions = {
        step.function: ACCOUNT_ARN.format(step.function)
        for step in current.steps.values()
        if getattr(step, "function", None)
    }
    world = Recording({}, dict(HANDLERS))
    world.sent = []
    world.store = store
    world.orchestrator.store = store
    published = Workflows(store, world.clock)
    published.publish(bind(current, functions, None), "shop/Orders", "p")
    world.orchestrator._latest = published.get  # the engine's view of published workflows

    world.send(run_id, ApprovalDecided("approve", 1, True, "finance@example.com"))
    world.run_until_idle()

    after = store.get_run(run_id)
    assert after is not None and after.status == "succeeded", after
    assert after.version == before.version != published.get("order-fulfilment").version  # type: ignore[union-attr]
    charged = [target for key, _, target in world.sent if key == "charge"]
    assert charged and set(charged) == {ACCOUNT_ARN.format("ChargeCardFunction")}
    raw = dynamodb.get_item(
        TableName=store.m.run.Meta.table_name,
        Key={"pk": {"S": f"RUN#{run_id}"}, "sk": {"S": "RUN"}},
    )
    assert raw["Item"]["fmt"] == {"N": str(codec.FORMAT)}  # rewritten in this engine's format


def test_a_run_of_a_newer_format_is_refused_with_the_fix(store: DynamoStore, dynamodb: Any) -> None:
    fixture = written_by_0_1(dynamodb, store.m.run.Meta.table_name)
    dynamodb.update_item(
        TableName=store.m.run.Meta.table_name,
        Key={"pk": {"S": f"RUN#{fixture['run_id']}"}, "sk": {"S": "RUN"}},
        UpdateExpression="SET fmt = :f",
        ExpressionAttributeValues={":f": {"N": str(codec.FORMAT + 1)}},
    )
    with pytest.raises(codec.NewerFormat, match=r"newer Stepwell engine.*update this function"):
        store.get_run(fixture["run_id"])
