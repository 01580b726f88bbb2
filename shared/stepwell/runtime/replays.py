"""Replaying a code-first workflow: one attempt of a code-first run's own step, in the runner.

The replay reads the run and its step records (the journal), runs the workflow function from
the top against them, and answers with a Yield, which the engine turns into records and steps.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepwell.code.protocol import WORKFLOW_KEY, Recorded, RunInfo, Yield
from stepwell.engine.state import RunState, StepState
from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.store.port import Store

if TYPE_CHECKING:
    from stepwell.runtime.wiring import Runtime


class WorkflowCodeMissing(LookupError):
    """No function of this deployment replays the run's workflow."""

    retryable = False


def recorded(step: StepState) -> Recorded:
    """A step record as the replay sees it."""
    return Recorded(
        key=step.key,
        name=step.name or step.key,
        kind=str((step.spec or {}).get("type", "")),
        position=step.position or 0,
        status=step.status,
        output=step.output,
        error=step.error,
        attempt=step.attempt,
    )


def replay_attempt(runtime: Runtime, envelope: StepEnvelope) -> StepResult:
    """Run the workflow function of ``envelope``'s run against its journal."""
    run = runtime.store.get_run(envelope.run_id)
    if run is None:
        raise LookupError(f"run {envelope.run_id} does not exist")
    definition = runtime.orchestrator.pinned(run)
    code = runtime.catalog.code(definition)
    if code is None:
        raise WorkflowCodeMissing(
            f"no @workflow named {definition.name!r} is deployed with this runner "
            f"(the run started with {definition.code}, version {definition.code_version})"
        )
    answer = replay_run(runtime.store, run, code.function, envelope.attempt, runtime.clock.now())
    return StepResult.succeeded(envelope, answer.to_dict())


def replay_run(
    store: Store, run: RunState, function: Callable[..., Any], number: int, now: datetime
) -> Yield:
    """Replay ``function`` over ``run``'s step records (``number``: the replay's attempt)."""
    from stepwell.code.replay import replay

    journal = {step.key: recorded(step) for step in store.steps(run.id) if step.key != WORKFLOW_KEY}
    info = RunInfo(
        run_id=run.id,
        workflow=run.workflow,
        replay=number,
        cost_usd=run.usage.cost_usd,
        input_tokens=run.usage.input_tokens,
        output_tokens=run.usage.output_tokens,
        started_at=run.started_at.isoformat() if run.started_at else None,
    )
    return replay(function, run.input, journal, info, now)
