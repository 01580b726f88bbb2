"""What noting a notification's delivery costs on DynamoDB (moto, the request meter): a note
on the step alone, whatever else the run holds, never a write of the run item."""

from __future__ import annotations

from conftest import metered

from stepwell.definition.models import Workflow
from stepwell.engine.events import NotificationDelivered
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore

PAY = Workflow.model_validate(
    {
        "name": "pay",
        "steps": {
            "approve": {"type": "approval", "approvers": ["ann@example.com"]},
            **{f"other{n}": {"type": "approval"} for n in range(10)},
        },
    }
)


def test_a_delivery_is_one_read_and_one_write_of_its_step(store: DynamoStore) -> None:
    world = InProcessWorld({"pay": PAY}, {})
    world.store = world.orchestrator.store = store
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    noted = NotificationDelivered("approve", "email", "ann@example.com", "requested", True)
    world.orchestrator.handle(run_id, noted)  # the run as this process first sees it
    meter = metered(store)
    before = meter.reading()
    world.orchestrator.handle(run_id, noted)
    spent = meter.reading() - before
    assert spent.dynamodb_calls == {"BatchGetItem": 1, "UpdateItem": 1}
    units = f"{spent.reads} read, {spent.writes} write units"
    print(f"\na delivery noted: {dict(spent.dynamodb_calls)}, {units}")
