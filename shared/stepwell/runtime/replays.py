"""Replaying a code-first workflow: one attempt of a code-first run's own step, in the runner.

The replay reads the run and its step records (the journal: see
:class:`~stepwell.runtime.journals.Journals` for how a resume reads only what changed), runs
the workflow function from the top against them, and answers with a Yield, which the engine
turns into records and steps.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepwell.code.protocol import WORKFLOW_KEY, Recorded, RunInfo, Yield, kind_of
from stepwell.code.replay import Links, Services
from stepwell.engine.state import RunState, StepState
from stepwell.runtime.builtins import aws
from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.runtime.journals import Journals
from stepwell.store.port import Store

if TYPE_CHECKING:
    from stepwell.runtime.orchestrator import Orchestrator
    from stepwell.runtime.wiring import Runtime


class WorkflowCodeMissing(LookupError):
    """No function of this deployment replays the run's workflow."""

    retryable = False


def recorded(step: StepState) -> Recorded:
    """A step record as the replay sees it."""
    return Recorded(
        key=step.key,
        name=step.name or step.key,
        kind=kind_of(step.spec),
        position=step.position or 0,
        status=step.status,
        output=step.output,
        error=step.error,
        failed_items=step.failed_items,
        attempt=step.attempt,
        expires_at=step.timeout_at.isoformat() if step.timeout_at else None,
    )


def replay_attempt(runtime: Runtime, envelope: StepEnvelope) -> StepResult:
    """Run the workflow function of ``envelope``'s run against its journal."""

    def code_of(run: RunState) -> Callable[..., Any]:
        definition = runtime.orchestrator.pinned(run)
        code = runtime.code.code(definition)
        if code is None:
            raise WorkflowCodeMissing(
                f"no @workflow named {definition.name!r} is deployed with this runner "
                f"(the run started with {definition.code}, version {definition.code_version})"
            )
        return code.function

    answer = replay_journal(
        runtime.store,
        runtime.journals,
        runtime.orchestrator,
        envelope.run_id,
        envelope.attempt,
        code_of,
        runtime.clock.now(),
        links=_links(runtime, envelope.run_id),
        services=job_checks(runtime, envelope),
    )
    return StepResult.succeeded(envelope, answer.to_dict())


def job_checks(runtime: Runtime, envelope: StepEnvelope) -> Callable[[RunState], Services]:
    """How a replay of a run makes its job checks: as the runner's aws steps make their calls,
    as the role the job's start named or else the role of the run's pinned definition (the
    start's too), so a job is seen by the role and account that started it."""
    ctx = envelope.context()

    def for_run(run: RunState) -> Services:
        workflow_role = runtime.orchestrator.pinned(run).role

        def call(service: str, action: str, parameters: dict[str, Any], role: str | None) -> Any:
            params = {"service": service, "action": action, "parameters": parameters}
            return aws.run({**params, "role": role or workflow_role}, ctx, runtime.builtins.client)

        return call

    return for_run


def _links(runtime: Runtime, run_id: str) -> Links | None:
    """How a replay of ``run_id`` signs the links of the callbacks it creates (the same as
    ``callback.requested`` carries: attempt 1, the wait's end)."""
    make = getattr(runtime.orchestrator.ports.approvals, "callback_link", None)
    if make is None:
        return None

    def link(key: str, expires_at: datetime) -> dict[str, str]:
        detail = {"run_id": run_id, "step": key, "attempt": 1, "expires_at": expires_at.isoformat()}
        found: dict[str, str] = make(detail)
        return found

    return link


def replay_journal(
    store: Store,
    journals: Journals,
    orchestrator: Orchestrator,
    run_id: str,
    attempt: int,
    code_of: Callable[[RunState], Callable[..., Any]],
    now: datetime,
    links: Links | None = None,
    services: Callable[[RunState], Services] | None = None,
) -> Yield:
    """Replay attempt ``attempt`` of run ``run_id`` over its journal (read through
    ``journals``); the records it read serve the orchestrator's decision on its answer.
    ``services``: how the run's job checks call AWS."""
    state = journals.read(store, run_id, attempt)
    function = code_of(state.run)
    steps = list(state.steps.values())
    calls = services(state.run) if services is not None else None
    answer = replay_run(state.run, steps, function, attempt, now, links, calls)
    journals.keep(state, attempt, answer)
    orchestrator.read_for(run_id, state)
    return answer


def replay_run(
    run: RunState,
    steps: Iterable[StepState],
    function: Callable[..., Any],
    number: int,
    now: datetime,
    links: Links | None = None,
    services: Services | None = None,
) -> Yield:
    """Replay ``function`` over ``run``'s step records (``number``: the replay's attempt)."""
    from stepwell.code.context import replay

    # A ctx.for_each's children are the engine's: the code reads their outputs on their parent.
    journal = {
        step.key: recorded(step)
        for step in steps
        if step.key != WORKFLOW_KEY and step.index is None
    }
    info = RunInfo(
        run_id=run.id,
        workflow=run.workflow,
        replay=number,
        cost_usd=run.usage.cost_usd,
        input_tokens=run.usage.input_tokens,
        output_tokens=run.usage.output_tokens,
        started_at=run.started_at.isoformat() if run.started_at else None,
        cancelled=(run.cancelling or {}).get("reason") if run.cancelling else None,
    )
    return replay(function, run.input, journal, info, now, links=links, services=services)
