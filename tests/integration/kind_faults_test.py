"""Step kinds played with a fifth of DynamoDB calls failing, before they take effect or after
(their answers lost), seeds 1 and 2, with :class:`FaultPlay` (invokes lost, results and bus
deliveries doubled, the sweep as backstop): each kind's runs end as they do without faults, no
step completes twice, every dispatch a committed decision owed is carried out once, and no
attempt is charged that was not lost. Each scenario is small (3 runs, a few steps)."""

from __future__ import annotations

import json
import time
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import boto3
import pytest

from helpers.fault_play import FAULTS, FaultPlay, check_runs, faulty
from helpers.faults import internal
from stepwell.asl.loader import load_asl_file
from stepwell.definition.models import Workflow
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore
from stepwell.store.event_waits import event_waits_for

SEEDS = [1, 2]


@pytest.fixture(params=sorted(FAULTS))
def kind(request: pytest.FixtureRequest) -> str:
    return str(request.param)


@pytest.fixture(params=SEEDS)
def seed(request: pytest.FixtureRequest) -> int:
    return int(request.param)


@pytest.fixture
def play_on(
    store: DynamoStore, monkeypatch: pytest.MonkeyPatch, kind: str, seed: int
) -> Iterator[Any]:
    """Builds the play of a world under the seeded faults of ``kind``; closes it after."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)  # backoffs pass at once
    plays: list[FaultPlay] = []

    def make(world: InProcessWorld) -> FaultPlay:
        plays.append(FaultPlay(store, world, seed, faulty(store, seed=seed, **FAULTS[kind])))
        return plays[-1]

    yield make
    for play in plays:
        play.close()


# -- event waits and cancel_on ------------------------------------------------------------------

ORDER_ID = "${input.order_id}"
AWAIT_PAYMENT = Workflow.model_validate(
    {
        "name": "await-payment",
        "cancel_on": [
            {
                "source": "orders",
                "detail_type": "order.cancelled",
                "correlate": {"event": "detail.order_id", "equals": ORDER_ID},
            }
        ],
        "steps": {
            "prepare": {"function": "Prepare"},
            "settled": {
                "type": "event",
                "depends_on": ["prepare"],
                "event": {
                    "source": "payments",
                    "detail_type": "payment.settled",
                    "correlate": {"event": "detail.order_id", "equals": ORDER_ID},
                },
                "lookback": "1h",
                "timeout": "1d",
            },
            "ship": {
                "function": "Ship",
                "depends_on": ["settled"],
                "input": {"amount": "${steps.settled.output.detail.amount}"},
            },
        },
    }
)


def test_event_waits_and_cancel_on_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int
) -> None:
    """Three orders wait for their payment: the first's is sent before its wait opens (kept,
    found by the lookback), the second's once it waits; the third is cancelled by an event
    once it waits. Senders retry ``POST /events`` with their own ids until accepted."""
    functions = {"Prepare": lambda value, ctx: {"ok": True}, "Ship": lambda value, ctx: value}
    play = play_on(InProcessWorld({AWAIT_PAYMENT.name: AWAIT_PAYMENT}, functions))
    first, second, third = keys = [f"pay-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(AWAIT_PAYMENT.name, {"order_id": key}, key=key)

    def settle(key: str) -> None:
        play.send_event("payments", "payment.settled", {"order_id": key, "amount": 7}, f"s-{key}")

    settle(first)
    later = {
        second: settle,
        third: lambda key: play.send_event(
            "orders", "order.cancelled", {"order_id": key}, f"c-{key}"
        ),
    }

    def send_once_waiting() -> bool:
        for key, send in list(later.items()):
            step = play.step(play.acknowledged[key], "settled")
            if step is not None and step.waiting_for == "event":
                send(key)
                del later[key]
                return True
        return False

    play.actors.append(send_once_waiting)
    play.play()
    assert not later
    runs = check_runs(play, dynamodb, {first: "succeeded", second: "succeeded", third: "cancelled"})
    for key, run in zip(keys[:2], runs, strict=False):
        assert run.output == {"ship": {"amount": 7}}
        assert play.step(run.id, "settled").output["id"] == f"s-{key}"
    assert play.step(runs[2].id, "settled").status == "cancelled"


# -- input forms --------------------------------------------------------------------------------

SHIPPING = Workflow.model_validate(
    {
        "name": "shipping-details",
        "steps": {
            "details": {
                "type": "input",
                "message": "Shipping details for ${input.order_id}",
                "assignees": ["ops@example.com"],
                "form": {
                    "type": "object",
                    "required": ["carrier", "boxes"],
                    "properties": {
                        "carrier": {"type": "string", "enum": ["ups", "dhl"]},
                        "boxes": {"type": "integer", "minimum": 1},
                    },
                },
                "timeout": "2d",
            },
            "ship": {
                "function": "Ship",
                "depends_on": ["details"],
                "input": {"boxes": "${steps.details.output.boxes}"},
            },
        },
    }
)


def test_input_forms_answered_through_their_links_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int
) -> None:
    """Three orders ask ops for shipping details through a form link; ops answers each (again
    after an error): every answer is recorded once and becomes the step's output."""
    play = play_on(InProcessWorld({SHIPPING.name: SHIPPING}, {"Ship": lambda value, ctx: value}))
    play.answer = lambda request: {"carrier": "dhl", "boxes": len(request["run_id"]) % 5 + 1}
    keys = [f"ship-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(SHIPPING.name, {"order_id": key}, key=key)
    play.play()
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    assert play.answers and all(a[-1] in (200, 409) for a in play.answers.values()), play.answers
    for run in runs:
        boxes = len(run.id) % 5 + 1
        assert play.step(run.id, "details").output == {"carrier": "dhl", "boxes": boxes}
        assert run.output == {"ship": {"boxes": boxes}}


# -- for_each fan-outs (YAML) and ctx.map (code), a failing item caught -----------------------

ITEMS = [{"sku": "A"}, {"sku": "X"}, {"sku": "B"}]
"""Three lines; X is out of stock (its pick and its pack fail)."""


def pick(item: dict[str, Any], ctx: Any) -> dict[str, Any]:
    if item["sku"] == "X":
        raise OutOfStock(f"{item['sku']} is out of stock")
    return {"picked": item["sku"]}


class OutOfStock(Exception):
    """A line that cannot be picked or packed."""


PICK_AND_PACK = Workflow.model_validate(
    {
        "name": "pick-and-pack",
        "steps": {
            "pick": {
                "for_each": "${input.items}",
                "max_parallel": 2,
                "tolerated_failures": 1,
                "function": "Pick",
            },
            "pack": {
                "depends_on": ["pick"],
                "for_each": "${input.items}",
                "max_parallel": 2,
                "function": "Pick",
                "catch": [{"errors": "ForEachFailed", "then": "refund"}],
            },
            "refund": {
                "function": "Refund",
                "input": {"failed": "${steps.pack.error.errors[0].index}"},
            },
        },
    }
)


def pick_and_pack(ctx: Any, input: dict[str, Any]) -> Any:
    """The same as code: picks tolerate one failure; a failed packing is caught."""
    from stepwell.code.context import MapFailed

    def line(item_ctx: Any, item: dict[str, Any]) -> Any:
        return item_ctx.task("pick", function="Pick", input=item)

    picked = ctx.map("pick", input["items"], line, max_concurrency=2, tolerated_failures=1)
    try:
        ctx.map("pack", input["items"], line, max_concurrency=2)
    except MapFailed as failed:
        refund = ctx.task("refund", function="Refund", input={"failed": sorted(failed.errors)[0]})
        return {"picked": picked, "refund": refund}
    raise AssertionError("X was packed")


FAN_OUTS = {
    "yaml": (PICK_AND_PACK, None),
    "code": (
        Workflow(
            name="pick-and-pack-code", steps={}, code="pick.py:pick_and_pack", code_version="1"
        ),
        pick_and_pack,
    ),
}


@pytest.mark.parametrize("form", sorted(FAN_OUTS))
def test_fan_outs_with_a_failing_item_caught_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int, form: str
) -> None:
    """Three orders pick their three lines two at a time (one failure tolerated: a null in
    its place) and pack them (the failure caught: the refund runs)."""
    definition, code = FAN_OUTS[form]
    functions = {"Pick": pick, "Refund": lambda value, ctx: {"refunded": value["failed"]}}
    codes = {definition.name: code} if code else {}
    play = play_on(InProcessWorld({definition.name: definition}, functions, code=codes))
    keys = [f"fan-{form}-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(definition.name, {"order_id": key, "items": ITEMS}, key=key)
    play.play()
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    picked = [{"picked": "A"}, None, {"picked": "B"}]
    for run in runs:
        if code is None:
            assert play.step(run.id, "pick").output == picked
            assert play.step(run.id, "pack").status == "failed"
            assert run.output == {"refund": {"refunded": 1}}
        else:
            assert run.output == {"picked": picked, "refund": {"refunded": 1}}


# -- sub-workflows ------------------------------------------------------------------------------

PACK_ORDER = Workflow.model_validate(
    {"name": "pack-order", "steps": {"pack": {"function": "Pack"}}}
)
SHIP_ORDER = Workflow.model_validate(
    {
        "name": "ship-order",
        "steps": {
            "prepare": {"function": "Prepare"},
            "packed": {
                "type": "workflow",
                "depends_on": ["prepare"],
                "workflow": "pack-order",
                "input": {"order_id": "${input.order_id}"},
            },
            "ship": {
                "function": "Ship",
                "depends_on": ["packed"],
                "input": {"parcel": "${steps.packed.output.pack.parcel}"},
            },
        },
    }
)


def test_sub_workflows_under_faults(play_on: Any, dynamodb: Any, kind: str, seed: int) -> None:
    """Three orders each start one child run that packs them, wait for it and ship its
    parcel: one child run per order, each ended once."""
    functions = {
        "Prepare": lambda value, ctx: {"ok": True},
        "Pack": lambda value, ctx: {"parcel": f"p-{value['order_id']}"},
        "Ship": lambda value, ctx: value,
    }
    workflows = {w.name: w for w in (PACK_ORDER, SHIP_ORDER)}
    play = play_on(InProcessWorld(workflows, functions))
    keys = [f"sub-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(SHIP_ORDER.name, {"order_id": key}, key=key)
    play.play()
    play.faults.enabled = False
    children = [r.id for r in play.store.runs(PACK_ORDER.name).items]
    assert len(children) == 3, children  # one child run per order, none started twice
    statuses = dict.fromkeys(keys, "succeeded") | dict.fromkeys(children, "succeeded")
    runs = check_runs(play, dynamodb, statuses)
    for key, run in zip(keys, runs, strict=False):
        assert run.output == {"ship": {"parcel": f"p-{key}"}}
        assert play.step(run.id, "packed").child_run_id in children


# -- callbacks ----------------------------------------------------------------------------------

AWAIT_WAREHOUSE = Workflow.model_validate(
    {
        "name": "await-warehouse",
        "steps": {
            "prepare": {"function": "Prepare"},
            "warehouse": {"type": "callback", "depends_on": ["prepare"], "timeout": "3d"},
            "ship": {
                "function": "Ship",
                "depends_on": ["warehouse"],
                "input": {"bay": "${steps.warehouse.output.bay}"},
            },
        },
    }
)


def test_callbacks_under_faults(play_on: Any, dynamodb: Any, kind: str, seed: int) -> None:
    """Three orders wait for the warehouse, which calls back with each request's signed URL
    as soon as it is announced (again after an error): each callback completes its step once;
    a 409 only for a callback already recorded."""
    functions = {"Prepare": lambda value, ctx: {"ok": True}, "Ship": lambda value, ctx: value}
    play = play_on(InProcessWorld({AWAIT_WAREHOUSE.name: AWAIT_WAREHOUSE}, functions))
    answered: dict[str, list[int]] = {}

    def call_back() -> bool:
        moved = False
        for event in play.world.events:
            if event.detail_type != "callback.requested":
                continue
            run_id, token = event.detail["run_id"], event.detail["token"]
            answers = answered.setdefault(token, [])
            if answers and answers[-1] in (200, 202, 409):
                continue
            body = {"status": "success", "output": {"bay": f"bay-{run_id[:4]}"}}
            response = play.post(f"/callbacks/{token}", body)
            answers.append(response.status)
            moved = True
            if response.status == 409:
                step = play.step(run_id, "warehouse")
                assert step.status == "succeeded", (response.text, step)
            else:
                assert response.status in (200, 202) or response.status >= 500, response.text
        return moved

    play.actors.append(call_back)
    keys = [f"cb-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(AWAIT_WAREHOUSE.name, {"order_id": key}, key=key)
    play.play()
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    assert answered and all(a[-1] in (200, 202, 409) for a in answered.values()), answered
    for run in runs:
        assert run.output == {"ship": {"bay": f"bay-{run.id[:4]}"}}


# -- flow control: debounce, throttle with priority, singleton ---------------------------------


def flow(name: str, **limits: Any) -> Workflow:
    """A one-step workflow of documents under the flow control ``limits``."""
    step = {"function": "Index", "input": {"n": "${input.n}"}}
    return Workflow.model_validate({"name": name, "steps": {"index": step}, **limits})


def index(value: dict[str, Any], ctx: Any) -> dict[str, Any]:
    return {"indexed": value["n"]}


def play_flow(play_on: Any, definition: Workflow, starts: list[tuple[str, dict[str, Any]]]) -> Any:
    """Start ``starts`` (each key and input) one after the other through the API, and play."""
    play = play_on(InProcessWorld({definition.name: definition}, {"Index": index}))
    for key, input in starts:
        play.start(definition.name, input, key=key)
    play.play()
    return play


def test_debounced_starts_under_faults(play_on: Any, dynamodb: Any, kind: str, seed: int) -> None:
    """Three starts of one document close together make one run, with the last input; a
    start of another document makes its own: the hold of each key is free at the end."""
    definition = flow("debounced", debounce={"key": "${input.document}", "period": "30s"})
    keys = [f"deb-{kind}-{seed}-{n}" for n in range(4)]
    documents = ["d1", "d1", "d1", "d2"]
    starts = [
        (k, {"document": d, "n": n}) for n, (k, d) in enumerate(zip(keys, documents, strict=True))
    ]
    play = play_flow(play_on, definition, starts)
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    assert len({run.id for run in runs[:3]}) == 1 and runs[3].id != runs[0].id
    assert len(play.store.runs(definition.name).items) == 2
    assert runs[0].output == {"index": {"indexed": 2}} and runs[3].output == {
        "index": {"indexed": 3}
    }
    assert play.store.pending("debounced#d1") is None and play.store.pending("debounced#d2") is None


def test_throttled_starts_by_priority_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int
) -> None:
    """Three runs of one key, one start a minute, the queued ones by priority: every run
    succeeds, the second start is the higher priority's, and no two start within a minute."""
    definition = flow(
        "throttled",
        throttle={"key": "${input.partner}", "limit": 1, "period": "1m"},
        priority="${input.priority}",
    )
    keys = [f"thr-{kind}-{seed}-{n}" for n in range(3)]
    starts = [
        (k, {"partner": "acme", "n": n, "priority": [0, 1, 5][n]}) for n, k in enumerate(keys)
    ]
    play = play_flow(play_on, definition, starts)
    first, low, high = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    assert first.started_at < high.started_at < low.started_at
    assert high.started_at - first.started_at >= timedelta(minutes=1)
    assert low.started_at - high.started_at >= timedelta(minutes=1)
    assert play.store.slots("throttled#acme").head is None


def test_singleton_cancel_previous_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int
) -> None:
    """Three starts of one account with ``cancel_previous``: the newest runs, the two before
    it are cancelled, and the key is free at the end."""
    definition = flow("singleton", singleton={"key": "${input.account}", "mode": "cancel_previous"})
    keys = [f"one-{kind}-{seed}-{n}" for n in range(3)]
    play = play_flow(
        play_on, definition, [(k, {"account": "a", "n": n}) for n, k in enumerate(keys)]
    )
    statuses = {keys[0]: "cancelled", keys[1]: "cancelled", keys[2]: "succeeded"}
    runs = check_runs(play, dynamodb, statuses)
    assert runs[2].output == {"index": {"indexed": 2}}
    slots = play.store.slots("singleton#a")
    assert slots.held == () and slots.head is None


# -- a Step Functions machine: Map, Parallel, Wait ----------------------------------------------

PACK_MACHINE = {
    "StartAt": "Lines",
    "States": {
        "Lines": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "MaxConcurrency": 2,
            "ItemProcessor": {
                "StartAt": "Pick",
                "States": {"Pick": {"Type": "Task", "Resource": "Pick", "End": True}},
            },
            "ResultPath": "$.picked",
            "Next": "Label and cool off",
        },
        "Label and cool off": {
            "Type": "Parallel",
            "Branches": [
                {
                    "StartAt": "Label",
                    "States": {
                        "Label": {
                            "Type": "Task",
                            "Resource": "Label",
                            "Parameters": {"order_id.$": "$.order_id"},
                            "End": True,
                        }
                    },
                },
                {
                    "StartAt": "Cool off",
                    "States": {
                        "Cool off": {
                            "Type": "Wait",
                            "Seconds": 30,
                            "OutputPath": "$.order_id",
                            "End": True,
                        }
                    },
                },
            ],
            "ResultPath": "$.labelled",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed", "OutputPath": "$.labelled"},
    },
}


def test_a_step_functions_machine_with_map_parallel_and_wait_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int, tmp_path: Path
) -> None:
    """Three orders through a machine that picks their lines two at a time (Map), then labels
    the parcel while it cools off (Parallel of a Task and a Wait)."""
    path = tmp_path / "pack-machine.asl.json"
    path.write_text(json.dumps(PACK_MACHINE))
    loaded = load_asl_file(path)
    name = loaded.workflow.name
    functions = {"Pick": pick, "Label": lambda value, ctx: {"label": f"L-{value['order_id']}"}}
    world = InProcessWorld({name: loaded.workflow}, functions, code={name: loaded.code.function})
    play = play_on(world)
    keys = [f"asl-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(name, {"order_id": key, "items": [{"sku": "A"}, {"sku": "B"}]}, key=key)
    play.play()
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    for key, run in zip(keys, runs, strict=True):
        assert run.output == [{"label": f"L-{key}"}, key]


# -- an aws step on moto ------------------------------------------------------------------------


def test_an_aws_step_calls_its_api_once_per_invocation_under_faults(
    play_on: Any, dynamodb: Any, kind: str, seed: int
) -> None:
    """Three orders each put a message on an SQS queue (an ``aws`` step on moto): the queue
    holds exactly one message per invocation of the step's attempts (the play delivers a few
    twice, as Lambda may): nothing in Stepwell's path calls the API again."""
    sqs = boto3.client("sqs", region_name="us-east-1")
    queue = sqs.create_queue(QueueName="parcels")["QueueUrl"]
    definition = Workflow.model_validate(
        {
            "name": "announce-parcel",
            "steps": {
                "prepare": {"function": "Prepare"},
                "announce": {
                    "type": "aws",
                    "depends_on": ["prepare"],
                    "service": "sqs",
                    "action": "sendMessage",
                    "parameters": {"QueueUrl": queue, "MessageBody": "${run.id}"},
                },
            },
        }
    )
    functions = {"Prepare": lambda value, ctx: {"ok": True}}
    play = play_on(InProcessWorld({definition.name: definition}, functions))
    keys = [f"aws-{kind}-{seed}-{n}" for n in range(3)]
    for key in keys:
        play.start(definition.name, {"order_id": key}, key=key)
    play.play()
    runs = check_runs(play, dynamodb, dict.fromkeys(keys, "succeeded"))
    sent: Counter[str] = Counter()
    while batch := sqs.receive_message(
        QueueUrl=queue, MaxNumberOfMessages=10, VisibilityTimeout=3600
    ).get("Messages"):
        sent.update(message["Body"] for message in batch)
    for run in runs:
        invoked = sum(
            n for (r, key, _), n in play.invoked.items() if (r, key) == (run.id, "announce")
        )
        assert sent[run.id] == invoked >= 1, (run.id, sent, play.invoked)
        assert "MessageId" in run.output["announce"]


@pytest.mark.parametrize("operation", ["PutItem", "GetItem", "Query"])
def test_an_event_arrives_in_one_delivery_through_a_fault_of_any_request_it_makes(
    store: DynamoStore, monkeypatch: pytest.MonkeyPatch, operation: str
) -> None:
    """EventBridge gives a failed delivery few more tries: a retryable fault of the keeping,
    the routes' read or the waits' Query is sent again, not handed back to it."""
    monkeypatch.setattr(time, "sleep", lambda seconds: None)
    world = InProcessWorld({AWAIT_PAYMENT.name: AWAIT_PAYMENT}, {"Prepare": lambda v, c: {}})
    world.store = world.orchestrator.store = store  # type: ignore[assignment]
    world.orchestrator.event_waits = event_waits_for(store)
    run_id = world.start(AWAIT_PAYMENT.name, {"order_id": "o-1"})
    world.run_until_idle(virtual_time=False)
    faults = faulty(store)
    faults.next(operation, internal)
    at = world.clock.now().isoformat().replace("+00:00", "Z")
    event = {"id": "e-1", "source": "payments", "detail_type": "payment.settled", "time": at}
    world.orchestrator.receive_event({**event, "detail": {"order_id": "o-1", "amount": 7}})
    assert faults.injected == {f"{operation} before": 1}
    settled = store.load(run_id, ["settled"]).steps["settled"]
    assert settled.status == "succeeded" and settled.output["id"] == "e-1"
