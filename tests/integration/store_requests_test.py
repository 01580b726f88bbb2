"""Requests per transition, counted with botocore hooks: constant whatever the size of the run.

Run with ``-s`` to print the figures (docs/storage.md quotes them).
"""

from __future__ import annotations

import json
from typing import Any

from conftest import metered

from meter import Reading, RequestMeter
from stepwell.definition.models import Workflow
from stepwell.engine.events import StepSucceeded
from stepwell.local.inprocess import InProcessWorld
from stepwell.store.dynamodb import DynamoStore


def echo(value: Any, ctx: Any) -> Any:
    return {"step": ctx.step_id, "n": (value or {}).get("n", 0) + 1}


def chain(make_workflow: Any, n: int) -> Any:
    steps: dict[str, Any] = {"s000": {"function": "Echo", "input": "${input}"}}
    for i in range(1, n):
        steps[f"s{i:03d}"] = {
            "function": "Echo",
            "depends_on": f"s{i - 1:03d}",
            "input": f"${{steps.s{i - 1:03d}.output}}",
        }
    return make_workflow(f"chain-{n}", steps)


def world_on(store: DynamoStore, *definitions: Any) -> InProcessWorld:
    world = InProcessWorld({d.name: d for d in definitions}, {"Echo": echo})
    world.store = store
    world.orchestrator.store = store
    return world


def drive(world: InProcessWorld, meter: RequestMeter) -> list[Reading]:
    """Deliver every dispatched attempt's result, metering each event on its own."""
    spent = []
    while world.dispatched:
        command = world.dispatched.popleft()
        output = echo(command.input, type("Ctx", (), {"step_id": command.step_id}))
        before = meter.reading()
        world.send(command.run_id, StepSucceeded(command.key, command.attempt, output))
        spent.append(meter.reading() - before)
    return spent


def run_chain(store: DynamoStore, make_workflow: Any, n: int) -> tuple[Reading, list[Reading]]:
    world = world_on(store, chain(make_workflow, n))
    meter = metered(store)
    before = meter.reading()
    run_id = world.start(f"chain-{n}", {"n": 0}, run_id=f"chain-{n}")
    start = meter.reading() - before
    per_event = drive(world, meter)
    run = store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert run.output == {f"s{n - 1:03d}": {"step": f"s{n - 1:03d}", "n": n}}
    assert len(per_event) == n
    return start, per_event


def test_a_sequential_step_costs_two_writes_and_one_read_whatever_the_run_length(
    store: DynamoStore, make_workflow: Any
) -> None:
    shapes = {}
    for n in (5, 50):
        start, per_event = run_chain(store, make_workflow, n)
        middle, last = per_event[:-1], per_event[-1]
        for spent in middle:
            # One read (the run, the ended step, the next one), then two conditional writes:
            # the ended step alone, and the next step counting it and starting. No transaction
            # and nothing written on the run item.
            assert spent.dynamodb_calls == {"BatchGetItem": 1, "UpdateItem": 2}
            assert spent.writes == 2 and spent.reads == 1
            assert spent.items_written == 2
            assert spent.items_read <= 4  # + the run output's sink
        # Start: the definition version (once per process), the run, then the run's outbox
        # (run.started) cleared once the event is out, on the run as its commit wrote it (no
        # read of it back).
        assert start.dynamodb_calls == {"PutItem": 1, "TransactWriteItems": 2}
        # The run's end: the same read, one transaction (the last step and the run), and the
        # outbox (run.completed) cleared, again with no read. Every item carries its TTL from
        # its first write.
        assert last.dynamodb_calls == {"BatchGetItem": 1, "TransactWriteItems": 2}
        shapes[n] = {(s.reads, s.writes, s.items_written) for s in middle}
        units = (max(s.write_units for s in middle), max(s.read_units for s in middle))
        shapes[n].add(units)
        print(
            json.dumps(
                {
                    "n": n,
                    "start": start.summary(),
                    "step": middle[-1].summary(),
                    "max_units_per_step": units,
                    "last": last.summary(),
                }
            )
        )
    assert shapes[5] == shapes[50]


def test_a_fan_out_child_costs_the_same_whatever_the_items(
    store: DynamoStore, make_workflow: Any
) -> None:
    figures = {}
    starts = {}
    for items in (8, 40):
        definition = make_workflow(
            f"fan-{items}",
            {
                "fan": {
                    "function": "Echo",
                    "for_each": "${input.items}",
                    "max_parallel": 4,
                    "input": {"n": "${item}"},
                },
            },
        )
        world = world_on(store, definition)
        meter = metered(store)
        before = meter.reading()
        world.start(definition.name, {"items": list(range(items))}, run_id=definition.name)
        start = meter.reading() - before
        per_event = drive(world, meter)
        children = per_event[:-1]  # the last one gathers every child's output
        # A child's result: read the child, write it alone, count it on the parent (an atomic
        # add), then start the child of the slot it claimed (read it and its parent, write it).
        # No transaction and nothing on the run item, however wide the fan-out.
        refilling = children[: items - 4]
        figures[items] = {tuple(sorted(s.dynamodb_calls.items())) for s in refilling}
        assert all(s.count("TransactWriteItems") == 0 for s in children)
        # The start writes the parent; its first 4 children are written as they start.
        starts[items] = dict(start.dynamodb_calls)
        print(
            json.dumps({"items": items, "start": start.summary(), "child": children[0].summary()})
        )
    assert figures[8] == figures[40] == {(("BatchGetItem", 2), ("UpdateItem", 3))}
    assert starts[8] == starts[40]  # starting a fan-out costs the same whatever its width


def code_chain(n: int) -> tuple[Workflow, Any]:
    def flow(ctx: Any, input: Any) -> Any:
        value = input
        for i in range(n):
            value = ctx.task(f"s{i:03d}", function="Echo", input=value)
        return value

    definition = Workflow(name=f"code-chain-{n}", steps={}, code="chain.py:flow", code_version="1")
    return definition, flow


def test_a_code_first_step_costs_the_same_whatever_the_run_length(store: DynamoStore) -> None:
    shapes = {}
    for n in (5, 40):
        definition, flow = code_chain(n)
        world = world_on(store, definition)
        world.code[definition.name] = flow
        meter = metered(store)
        run_id = world.start(definition.name, {"n": 0}, run_id=definition.name)
        ends, replays = [], []
        while world.dispatched:
            command = world.dispatched.popleft()
            before = meter.reading()
            world._run_attempt(command)
            (replays if command.key == "$workflow" else ends).append(meter.reading() - before)
        run = store.get_run(run_id)
        assert (
            run is not None
            and run.status == "succeeded"
            and run.output == {"step": f"s{n - 1:03d}", "n": n}
        )
        # A step's end: one read (the step and the replay's step; the run as last seen), one
        # conditional write of the step alone, whose end also starts the next replay.
        assert {tuple(sorted(s.dynamodb_calls.items())) for s in ends} == {
            (("BatchGetItem", 1), ("UpdateItem", 1))
        }
        # A replay: one read of what can have changed since the last one (the run, the replay's
        # step, the step that ended), then its own step, and the step it reached, written alone.
        middle = replays[1:-1]
        assert {tuple(sorted(s.dynamodb_calls.items())) for s in middle} == {
            (("BatchGetItem", 1), ("UpdateItem", 2))
        }
        shapes[n] = {(s.items_read, s.items_written) for s in middle}
        print(json.dumps({"n": n, "end": ends[-1].summary(), "replay": middle[-1].summary()}))
    assert shapes[5] == shapes[40] == {(3, 2)}
