"""NeedsRecords and reads_for: the engine names what it lacks; callers load it up front."""

from __future__ import annotations

import pytest

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine import core, dag
from stepwell.engine.decision import Kind
from stepwell.engine.events import (
    ApprovalDecided,
    CallbackReceived,
    DependencyEnded,
    StepFailed,
    StepSucceeded,
    TimerFired,
)
from stepwell.engine.state import NeedsRecords, State
from stepwell.local.inprocess import InProcessWorld


def test_decide_names_the_record_it_lacks():
    run = EngineDriver({"a": task(), "b": task("a")})
    state = State(run=run.run.copy())
    with pytest.raises(NeedsRecords) as raised:
        core.decide(run.definition, state, StepSucceeded("a", 1, "x"), run.now)
    assert raised.value.keys == frozenset({"a"})
    assert "'a'" in str(raised.value)


def test_decide_names_a_record_an_expression_reads():
    run = EngineDriver({"a": task(), "x": task(), "b": task("a", input="${steps.x.output}")})
    state = State(run=run.run.copy(), steps={"a": run.step("a").copy()}, absent={"b"})
    with pytest.raises(NeedsRecords) as raised:  # b counts a's end, starts, renders its input
        core.decide(run.definition, state, DependencyEnded("b", "a"), run.now)
    assert raised.value.keys == frozenset({"x"})


def test_ending_a_run_with_open_steps_needs_every_record():
    run = EngineDriver({"a": task(), "b": task()})
    state = State(run=run.run.copy(), steps={"a": run.step("a").copy()})
    with pytest.raises(NeedsRecords) as raised:
        core.decide(run.definition, state, StepFailed("a", 1, "Boom"), run.now)
    assert raised.value.keys is None


def test_a_loaded_but_missing_record_is_not_asked_for_again():
    run = EngineDriver({"a": task(), "b": task("a")})
    state = State(run=run.run.copy(), steps={"a": run.step("a").copy()}, absent={"b"})
    decision = core.decide(run.definition, state, DependencyEnded("b", "a"), run.now)
    assert decision.steps["b"].status == "running"


def test_a_step_end_writes_the_step_alone_and_tells_its_dependents():
    run = EngineDriver({"a": task(), "b": task("a"), "c": task("a")})
    state = run.load(core.reads_for(run.definition, StepSucceeded("a", 1)))
    decision = core.decide(run.definition, state, StepSucceeded("a", 1), run.now)
    assert decision.single_step == "a"
    assert [c.event for c in decision.commands] == [
        DependencyEnded("b", "a"),
        DependencyEnded("c", "a"),
    ]
    run.succeed("a")
    assert run.status("b") == run.status("c") == "running"
    again = run.send(DependencyEnded("b", "a"))  # a repeated notice changes nothing
    assert again.empty


def sequential():
    return workflow(
        {
            "a": task(),
            "b": task("a", input={"from_a": "${steps.a.output}"}),
            "ask": {"type": "approval", "depends_on": "b", "message": "ok ${steps.b.output}?"},
            "pause": {"type": "delay", "depends_on": "ask", "duration": "1m"},
            "cb": {"type": "callback", "depends_on": "pause", "timeout": None},
            "c": task("cb", input="${steps.a.output + steps.b.output}", retry={"interval": "1s"}),
        },
        name="seq",
        output={"c": "${steps.c.output}", "a": "${steps.a.output}"},
    )


def test_reads_for_predicts_every_record_of_a_sequential_run():
    run = EngineDriver(sequential())
    run.succeed("a", 1)
    run.succeed("b", 2)
    run.send(ApprovalDecided("ask", 1, True))
    run.fire("pause")
    run.send(CallbackReceived("cb", "success"))
    run.fail("c", "Flaky")
    run.fire("c")
    run.succeed("c", 3)
    assert run.run.status == "succeeded"
    assert run.run.output == {"c": 3, "a": 1}
    assert run.extra_loads == []


def test_reads_for_names_the_step_its_dependents_what_they_read_and_the_output():
    plain = workflow(
        {"a": task(), "b": task("a", input="${steps.a.output}"), "c": task("b"), "d": task()},
        name="plain",
    )
    assert core.reads_for(plain, StepSucceeded("a", 1)) == {"a", "b", "c", "d"}  # c, d: sinks
    assert core.reads_for(plain, StepSucceeded("b", 1)) == {"b", "c", "a", "d"}
    assert core.reads_for(plain, TimerFired(None, T0)) == set()
    # A workflow with waits reads every one of its steps (to tell running from waiting).
    definition = sequential()
    assert core.reads_for(definition, TimerFired("pause", T0)) == set(definition.steps)


def count_loads_while_deciding(world):
    """Record the keys of every load the engine asks for (not the orchestrator's prefetch)."""
    extra: list[frozenset[str] | None] = []
    deciding = False
    load_more = world.store.load_more
    decide = world.orchestrator._decide

    def counting_load_more(state, keys):
        if deciding:
            extra.append(keys)
        return load_more(state, keys)

    def tracking_decide(definition, state, event):
        nonlocal deciding
        deciding = True
        try:
            return decide(definition, state, event)
        finally:
            deciding = False

    world.store.load_more = counting_load_more
    world.orchestrator._decide = tracking_decide
    return extra


def flaky_once(value, ctx):
    if ctx.step_id == "c" and ctx.attempt == 1:
        raise TimeoutError("once")
    return 2


def test_a_sequential_run_in_the_world_never_loads_twice():
    world = InProcessWorld(
        {"seq": sequential()},
        {"fn": flaky_once},
        approver=lambda c: ApprovalDecided(c.key, c.attempt, True, "x@y"),
    )
    extra = count_loads_while_deciding(world)
    run_id = world.start("seq", None)
    world.run_until_idle()
    assert world.store.get_run(run_id).status == "waiting"
    world.send(run_id, CallbackReceived("cb", "success"))
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "succeeded"
    assert run.output == {"c": 2, "a": 2}
    assert {s.key: s.attempt for s in world.store.steps(run_id)}["c"] == 2
    assert extra == []


def test_a_sequence_through_a_condition_never_loads_twice():
    definition = workflow(
        {
            "a": task(),
            "big": {"type": "condition", "depends_on": "a", "condition": "${steps.a.output > 1}"},
            "ask": {"type": "approval", "depends_on": "big", "when": "${steps.big.output}"},
            "c": task("ask", trigger_rule="none_failed"),
        }
    )
    run = EngineDriver(definition)
    run.succeed("a", 0)
    run.succeed("c")
    assert run.run.status == "succeeded"
    assert run.extra_loads == []


def test_the_counter_sees_loads_the_engine_asks_for():
    # The counting above must be able to fail: an expression that reads `steps` as a whole
    # (reads_for cannot name what it reads) makes the engine ask for every record.
    world = InProcessWorld(
        {"dyn": workflow({"a": task(), "b": task("a", input="${$keys(steps)}")}, name="dyn")},
        {"fn": lambda value, ctx: value},
    )
    extra = count_loads_while_deciding(world)
    run_id = world.start("dyn", None)
    world.run_until_idle()
    assert world.store.get_run(run_id).status == "succeeded"
    assert None in extra


def test_a_notify_detail_type_expression_names_the_steps_it_reads() -> None:
    from stepwell.definition.models import Workflow
    from stepwell.engine.data import step_refs

    definition = Workflow.model_validate(
        {
            "name": "n",
            "steps": {
                "a": {"function": "F"},
                "tell": {
                    "type": "notify",
                    "depends_on": "a",
                    "detail_type": "order.${steps.a.output.kind}",
                },
            },
        }
    )
    assert step_refs(definition, "tell") == frozenset({"a"})


def test_a_steps_reads_cost_the_same_however_many_steps_the_workflow_has() -> None:
    """Whether any step waits is a property of the definition: found once, not per event."""
    steps = {"s000": task()} | {f"s{i:03d}": task(f"s{i - 1:03d}") for i in range(1, 100)}
    definition = workflow(steps, name="long-chain")

    class Counted(dict[str, Kind]):
        lookups = 0

        def __getitem__(self, key: str) -> Kind:
            Counted.lookups += 1
            return super().__getitem__(key)

    kinds = Counted(core.KINDS)
    ended = StepSucceeded("s050", 1)
    assert dag.reads_for(definition, ended, "s050", kinds) == {"s051", "s099"}  # s099: the sink
    Counted.lookups = 0
    for _ in range(3):
        assert dag.reads_for(definition, ended, "s050", kinds) == {"s051", "s099"}
    assert Counted.lookups == 0
