"""Property test of code-first runs through the orchestrator: the replays and steps of a
fan-out, a parallel and a chain delivered in any order, some twice, some late (stale), some
lost (found by their leases), end as the code says, each step's result recorded once."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stepwell.definition.models import Workflow
from stepwell.engine.attempts import MAX_LOST_ATTEMPTS
from stepwell.engine.commands import DispatchAttempt
from stepwell.local.inprocess import InProcessWorld

DEFINITION = Workflow(name="shapes", steps={}, code="shapes.py:shapes", code_version="1")


def shapes(ctx: Any, input: Any) -> Any:
    """A map, then a parallel of two chains, then one step given everything."""

    def each(item_ctx: Any, item: Any) -> Any:
        return item_ctx.task("double", function="Double", input=item)

    doubled = ctx.map("items", input["items"], each, max_concurrency=input["at_once"])

    def chain(tag: str) -> Any:
        def branch(branch_ctx: Any) -> Any:
            first = branch_ctx.task("first", function="Double", input=1)
            return branch_ctx.task("second", function="Double", input=first)

        return branch

    chains = ctx.parallel("chains", [chain("a"), chain("b")])
    return ctx.task("total", function="Sum", input={"values": [*doubled, *chains]})


FUNCTIONS = {
    "Double": lambda value, ctx: value * 2,
    "Sum": lambda value, ctx: sum(value["values"]),
}


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    items=st.lists(st.integers(0, 9), max_size=6),
    at_once=st.integers(1, 3),
    choices=st.lists(st.integers(0, 1_000), min_size=200, max_size=200),
    fates=st.lists(st.sampled_from(["run"] * 8 + ["twice", "late", "lose"]), min_size=200),
)
def test_any_order_duplicates_stale_and_lost_deliveries_end_the_run_as_the_code_says(
    items: list[int], at_once: int, choices: list[int], fates: list[str]
) -> None:
    world = InProcessWorld({"shapes": DEFINITION}, FUNCTIONS, code={"shapes": shapes})
    run_id = world.start("shapes", {"items": items, "at_once": at_once})
    late: list[DispatchAttempt] = []
    lost: Counter[str] = Counter()
    for choice, fate in zip(choices, fates, strict=False):
        if not world.dispatched:
            if late:
                world.dispatched.append(late.pop(0))  # a stale delivery, after the others
                continue
            run = world.store.get_run(run_id)
            assert run is not None
            if run.terminal:
                break
            world.clock.advance(timedelta(minutes=20))  # leases run out; the sweep finds them
            world.sweep()
            continue
        command = world.dispatched[choice % len(world.dispatched)]
        world.dispatched.remove(command)
        if fate == "lose" and lost[command.key] < MAX_LOST_ATTEMPTS - 1:
            lost[command.key] += 1  # (more in a row fail the step: AttemptLost, as designed)
            continue
        world._run_attempt(command)
        if fate == "twice":
            world._run_attempt(command)
        elif fate == "late":
            late.append(command)
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded", run.error
    assert run.output == sum(2 * i for i in items) + 8
    completed = Counter(
        e.step
        for e in world.store.timeline(run_id, limit=10_000).items
        if e.type == "step_completed"
    )
    assert all(count == 1 for count in completed.values()), completed
    expected = {f"items.{i}.double" for i in range(len(items))}
    expected |= {f"chains.{b}.{s}" for b in (0, 1) for s in ("first", "second")}
    assert set(completed) == expected | {"total", "$workflow"}
