"""Task heartbeats: a step with ``heartbeat:`` must say it is alive that often (its function
calls ``ctx.heartbeat()``), or the attempt fails with HeartbeatTimedOut; one timer per
heartbeat period, not per heartbeat."""

from __future__ import annotations

from datetime import timedelta

from helpers import T0, EngineDriver, task, workflow
from stepwell.engine.events import Heartbeat
from stepwell.local.inprocess import InProcessWorld

MINUTE = timedelta(minutes=1)


def test_a_silent_attempt_fails_with_heartbeat_timed_out() -> None:
    run = EngineDriver({"export": task(heartbeat="1m")})
    assert run.step("export").due_at == T0 + MINUTE
    run.fire("export")
    assert run.status("export") == "failed"
    assert run.step("export").error["type"] == "HeartbeatTimedOut"
    assert run.run.status == "failed"


def test_heartbeats_keep_it_alive_and_the_timer_is_re_armed_only_when_it_fires() -> None:
    run = EngineDriver({"export": task(heartbeat="1m", timeout="10m")})
    (attempt,) = run.dispatches("export")
    beat = run.send(Heartbeat("export", 1, attempt.token), at=T0 + 30 * timedelta(seconds=1))
    assert not beat.commands  # no timer per heartbeat
    assert run.step("export").heartbeat_due == T0 + 90 * timedelta(seconds=1)
    run.fire("export")  # at +1m: alive, so the timer moves to the heartbeat deadline
    assert run.status("export") == "running"
    assert run.step("export").due_at == T0 + 90 * timedelta(seconds=1)
    run.fire("export")  # at +1m30: no heartbeat since
    assert run.step("export").error["type"] == "HeartbeatTimedOut"


def test_a_heartbeat_of_a_stale_attempt_changes_nothing() -> None:
    run = EngineDriver(
        {
            "export": task(
                heartbeat="1m", retry={"max_attempts": 2, "interval": "1s", "jitter": "none"}
            )
        }
    )
    run.fire("export")  # attempt 1 went silent: retried
    run.fire("export")
    assert run.step("export").attempt == 2
    before = run.step("export").heartbeat_due
    run.send(Heartbeat("export", 1))
    assert run.step("export").heartbeat_due == before


def test_a_step_function_calls_ctx_heartbeat() -> None:
    def export(value, ctx):
        ctx.heartbeat()
        return {"rows": 3}

    definition = workflow({"export": task(function="Export", heartbeat="1m")}, name="exports")
    world = InProcessWorld({"exports": definition}, {"Export": export})
    run_id = world.start("exports", {})
    world.run_until_idle()
    run = world.store.get_run(run_id)
    assert run is not None and run.status == "succeeded"
    assert run.output == {"export": {"rows": 3}}
