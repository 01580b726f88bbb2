"""Sub-workflows: a workflow step starts a child run and ends with it."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine.commands import CancelChildRun, NotifyParent, StartChildRun
from stepwell.engine.events import CancelRequested, ChildRunEnded, ChildRunStarted
from stepwell.engine.state import ParentRef
from stepwell.local.inprocess import InProcessWorld


def parent(**fields):
    return {
        "sub": {"type": "workflow", "workflow": "child-flow", "input": "${input.x}", **fields},
        "after": task("sub", input="${steps.sub.output}"),
    }


def started(run):
    return [c for c in run.commands if isinstance(c, StartChildRun)]


def test_a_workflow_step_starts_a_child_run_and_waits():
    run = EngineDriver(parent(), {"x": {"n": 1}})
    [start] = started(run)
    assert start == StartChildRun("run-1.sub.1", "child-flow", {"n": 1}, "run-1", "sub", 1)
    step = run.step("sub")
    assert (step.status, step.waiting_for, step.child_run_id) == (
        "waiting",
        "child_run",
        start.child_run_id,
    )
    assert run.run.status == "waiting"
    assert "child_run_started" in run.types("sub")


def test_a_succeeded_child_gives_the_step_its_output():
    run = EngineDriver(parent(), {"x": 1})
    run.send(ChildRunEnded("sub", 1, "run-1.sub.1", "succeeded", {"total": 3}))
    assert run.status("sub") == "succeeded"
    assert run.dispatches("after")[0].input == {"total": 3}


def test_a_failed_child_fails_the_step():
    run = EngineDriver(parent(), {"x": 1})
    run.send(
        ChildRunEnded("sub", 1, "run-1.sub.1", "failed", error={"type": "Boom", "message": "x"})
    )
    assert run.status("sub") == "failed"
    error = run.step("sub").error
    assert error["type"] == "ChildRunFailed"
    assert "run-1.sub.1 failed: Boom: x" in error["message"]
    assert run.run.status == "failed"


def test_a_failed_child_is_retried_with_a_new_child_run():
    run = EngineDriver(parent(retry={"max_attempts": 2, "interval": "1s", "jitter": "none"}))
    run.send(ChildRunEnded("sub", 1, "run-1.sub.1", "timed_out"))
    assert run.status("sub") == "retrying"
    run.fire("sub")
    assert [s.child_run_id for s in started(run)] == ["run-1.sub.1", "run-1.sub.2"]
    decision = run.send(ChildRunEnded("sub", 1, "run-1.sub.1", "succeeded", "old"))
    assert [e.type for e in decision.timeline] == ["stale_result_ignored"]
    run.send(ChildRunEnded("sub", 2, "run-1.sub.2", "succeeded", "new"))
    assert run.step("sub").output == "new"


def test_a_child_run_that_outlives_the_step_timeout_is_cancelled():
    run = EngineDriver(parent(timeout="10m"))
    assert run.step("sub").due_at == T0 + timedelta(minutes=10)
    decision = run.fire("sub")
    assert CancelChildRun("run-1.sub.1") in decision.commands
    assert run.step("sub").error["type"] == "StepTimedOut"


def test_cancelling_the_parent_cancels_the_child():
    run = EngineDriver(parent())
    decision = run.send(CancelRequested("stop"))
    assert CancelChildRun("run-1.sub.1") in decision.commands
    assert run.status("sub") == "cancelled"


def test_a_child_run_notifies_its_parent_when_it_ends():
    child = EngineDriver({"a": task()}, run_id="run-1.sub.1", parent=ParentRef("run-1", "sub", 1))
    decision = child.succeed("a", 5)
    [notify] = [c for c in decision.commands if isinstance(c, NotifyParent)]
    assert notify == NotifyParent("run-1", "sub", 1, "run-1.sub.1", "succeeded", {"a": 5}, None)


# -- whole runs in the in-process world ------------------------------------------------------


def worlds(child_function):
    parent_flow = workflow(parent(), name="parent-flow")
    child_flow = workflow(
        {
            "double": task(function="double"),
            "last": task("double", function="last", input="${steps.double.output}"),
        },
        name="child-flow",
        output="${steps.last.output}",
    )
    return InProcessWorld(
        {"parent-flow": parent_flow, "child-flow": child_flow},
        {
            "double": child_function,
            "last": lambda value, ctx: {"total": value * 2},
            "fn": lambda v, c: v,
        },
    )


def test_a_whole_parent_and_child_run():
    world = worlds(lambda value, ctx: value + 1)
    run_id = world.start("parent-flow", {"x": 20})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "succeeded"
    assert run.output == {"after": {"total": 42}}
    child = world.store.get_run(f"{run_id}.sub.1")
    assert child.status == "succeeded"
    assert child.parent == ParentRef(run_id, "sub", 1)


def test_a_whole_parent_run_fails_with_its_child():
    def broken(value, ctx):
        raise ValueError("bad input")

    world = worlds(broken)
    run_id = world.start("parent-flow", {"x": 20})
    world.run_until_idle()
    assert world.store.get_run(f"{run_id}.sub.1").status == "failed"
    run = world.store.get_run(run_id)
    assert run.status == "failed"
    assert run.error["step"] == "sub"
    assert run.error["type"] == "ChildRunFailed"
    assert "ValueError" in run.error["message"]


def test_an_unknown_child_workflow_fails_the_step():
    world = InProcessWorld(
        {"parent-flow": workflow(parent(workflow="nowhere"), name="parent-flow")}, {}
    )
    run_id = world.start("parent-flow", {"x": 1})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "failed"
    assert "UnknownWorkflow" in run.error["message"]


# -- wait: false: a run of its own ------------------------------------------------------------


def test_a_step_that_does_not_wait_ends_when_the_run_it_starts_exists():
    run = EngineDriver(parent(wait=False), {"x": 1})
    [start] = started(run)
    assert start.detached
    assert run.status("sub") == "waiting"
    run.send(ChildRunStarted("sub", 1, "run-1.sub.1", "2030-01-01T00:00:00+00:00"))
    assert run.step("sub").output == {
        "run_id": "run-1.sub.1",
        "started_at": "2030-01-01T00:00:00+00:00",
    }
    assert run.dispatches("after")[0].input == run.step("sub").output


def test_a_whole_run_goes_on_while_the_run_it_started_waits():
    parent_flow = workflow(parent(wait=False), name="parent-flow")
    child_flow = workflow(
        {"hold": {"type": "delay", "duration": "30d"}, "a": task("hold", function="fn")},
        name="child-flow",
    )
    functions = {"fn": lambda v, c: v}
    world = InProcessWorld({"parent-flow": parent_flow, "child-flow": child_flow}, functions)
    run_id = world.start("parent-flow", {"x": 1})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    child = world.store.get_run(f"{run_id}.sub.1")
    assert (run.status, child.status) == ("succeeded", "succeeded")
    # The parent ended long before the child's 30 days, and the child is no child of it.
    assert run.ended_at < child.started_at + timedelta(days=1) < child.ended_at
    assert (child.parent, child.started_by) == (None, f"run {run_id}")


def test_a_step_that_does_not_wait_fails_on_an_unknown_workflow():
    flow = workflow(parent(workflow="nowhere", wait=False), name="parent-flow")
    world = InProcessWorld({"parent-flow": flow}, {})
    run_id = world.start("parent-flow", {"x": 1})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run.status == "failed"
    assert "UnknownWorkflow" in run.error["message"]
