"""Code-first runs in the engine: the replay step, the steps its replays issue, and waking it.

Over 500 lines: the replay's whole conversation with the engine (yield, issue, wake, redrive,
cancel, the driver's answers) reads as one protocol.

A code-first run has one step of its own, ``$workflow``: each attempt is a replay of the
workflow function (run by the runner function), whose output is a
:class:`~stepwell.code.protocol.Yield`. The engine writes the yield's checkpoints as ended step
records, creates the steps it issued (their definition travels on their records, in ``spec``)
and starts them exactly as it starts YAML steps. When one of them ends, the run replays again;
a step that ends while a replay is running sets ``wake`` so the next replay follows at once.
A step's failure does not fail the run: the code receives it and decides.

Nothing of this locks the run: a step's end is written on the step alone and wakes the replay
in a write of the replay's step; a suspension is written on the replay's step, and each step it
reached follows in a write of its own. Only the run's start and end, and waits opening and
closing, write the run record.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any, cast

from pydantic import ValidationError

from stepwell import expressions
from stepwell.code.protocol import (
    FOR_EACH,
    INLINE_KINDS,
    ISSUED_KINDS,
    POLL,
    WORKFLOW_KEY,
    Checkpoint,
    Issue,
    Yield,
    kind_of,
    step_type,
)
from stepwell.definition.models import Step, Workflow
from stepwell.engine import attempts, fanout, specs
from stepwell.engine.commands import FollowUp, ScheduleTimer, StartRun, WakeReplay
from stepwell.engine.data import code_expression_data, code_run_data, schema_problem
from stepwell.engine.decision import MAX_STEP_WRITES, Kind, Work, attempt_token, is_active
from stepwell.engine.events import DependencyEnded, Event, ItemReady, StepReached, StepSucceeded
from stepwell.engine.kinds import poll
from stepwell.engine.outcomes import data_summary, dry_run, fail_step, succeed
from stepwell.engine.run import cancel_open_steps, end_run
from stepwell.engine.start import begin as start_step
from stepwell.engine.state import RunStatus, StepState, error_text, parse_key


def continued_id(run_id: str) -> str:
    """The id of the run that continues ``run_id`` (``ctx.continue_as_new``)."""
    return hashlib.sha256(f"{run_id}/continued".encode()).hexdigest()[:32]


steps_outlive_success = True
"""The code may return while steps it did not wait for are open: they are cancelled."""


skips_ahead = False
"""A step exists only once the code reached it; the code decides what follows."""


def knows(definition: Workflow, step_id: str) -> bool:
    """A run's steps are the records its code reached (the replay's own is none)."""
    return step_id != WORKFLOW_KEY


def ahead(work: Work, key: str) -> StepState | None:
    """Any step the code will reach: its record holds what came before it."""
    return work.step(key) or work.steps.setdefault(key, StepState(key=key))


def reads_for(definition: Workflow, event: Event, key: str, kinds: Mapping[str, Kind]) -> set[str]:
    """Every end of a step may wake the replay; a ctx.for_each child starts from its parent's
    items (a child's other decisions read the child alone: its definition is on its record)."""
    step_id, index = parse_key(key)
    if index is None:
        return {WORKFLOW_KEY}
    return {step_id} if isinstance(event, ItemReady) else set()


def reopens(step: StepState, failed_at: datetime | None) -> bool:
    """Only what the run's failure cancelled: the code may have gone on past a step cancelled
    earlier (a fan-out decided without it)."""
    return step.ended_at is not None and failed_at is not None and step.ended_at >= failed_at


def restart(work: Work, step: StepState) -> None:
    """Begin the step again from its recorded definition (a for_each child from its parent's)."""
    if step.index is None:
        begin(work, step)
    else:
        start_step(work, step, expression_data(work, step.step_id, step))


def spec(work: Work, key: str) -> Step:
    """The definition of a step of a code-first run: the replay step's own, or the one kept on
    its record (a ctx.for_each child's is its parent's task, see fanout.child_spec)."""
    if key == WORKFLOW_KEY:
        # Not one of the step types a definition may hold (Step), but a step all the same: the
        # engine treats it as a dispatched kind with a timeout and a retry policy.
        return cast(Step, specs.replay_spec(work.definition.replay_timeout))
    record = work.peek(key)
    if record is None or record.spec is None:
        raise KeyError(f"step {key!r} of code-first run {work.run.id} has no definition")
    return specs.parse_spec(record.spec)


def expression_data(
    work: Work, key: str | None, child: StepState | None = None, *, every: bool = False
) -> dict[str, Any]:
    """What a code-first step's expressions see (see data.code_expression_data)."""
    return code_expression_data(work, key, child)


def active(work: Work) -> bool:
    """Its replay runs, or its last replay left steps running."""
    own = work.peek(WORKFLOW_KEY)
    if own is None:
        return False
    return is_active(own.status) or own.steps_running > 0


def end(work: Work, status: RunStatus, error: dict[str, Any] | None) -> None:
    """End the run (the code has its own clean-up: no compensation)."""
    end_run(work, status, error)


# -- the replay step -------------------------------------------------------------------------


def start(work: Work) -> None:
    """A new code-first run: its first replay."""
    work.touch_run().open_steps = 1
    step = StepState(key=WORKFLOW_KEY, name=work.definition.name, started_at=work.now)
    work.steps[WORKFLOW_KEY] = step
    _replay(work, step)


def resume(work: Work) -> None:
    """A rerun that waited for a slot: its first replay (the steps it copied answer it)."""
    start(work)


def _replay(work: Work, step: StepState) -> None:
    step.wake = False
    # The retry policy and the lost-attempt allowance count this replay's attempts only.
    step.retry_base = step.attempt
    step.lost_attempts = 0
    # Replays are the run's own machinery: the steps they reach go on the timeline, not they.
    attempts.start(work, step, work.spec(WORKFLOW_KEY), quiet=True)


def on_succeeded(work: Work, event: StepSucceeded) -> None:
    """An attempt returned: the replay's answer (checked like any attempt's result), or a
    step's result."""
    if event.key != WORKFLOW_KEY:
        attempts.on_succeeded(work, event)
        return
    step = attempts.current(work, event.key, event.attempt, "result", event.token, ("running",))
    if step is not None:
        on_yield(work, step, event.output)


def on_yield(work: Work, step: StepState, output: Any) -> None:
    """A replay returned: end the run, or record what it reached and wait for its steps.

    A suspension writes the replay's own step alone; each checkpoint and each issued step
    follows as a write of its own (a :class:`StepReached`), so a replay's commit does not grow
    with what it reached and takes no lock on the run."""
    try:
        result = Yield.from_dict(output)
    except (KeyError, TypeError, ValueError) as exc:
        attempts.attempt_failed(
            work, step, "InvalidReplay", f"the replay's answer is not a yield: {exc}"
        )
        return
    if result.status == "suspended":
        _suspended(work, step, result)
        return
    # The run ends with this answer: its checkpoints are written with the end.
    work.state.require({c.key for c in result.checkpoints})
    budget = MAX_STEP_WRITES - 2  # the replay step and the run leave room in the transaction
    for checkpoint in result.checkpoints:
        if len(work.steps) >= budget:
            # The rest is run again by the next replay (inline steps are at least once).
            _replay(work, step)
            return
        _checkpoint(work, checkpoint, step.attempt)
    if result.status == "completed":
        succeed(work, step, result.output)
        return
    if result.status == "continued" and work.run.cancelling is None:
        # The run ends for a new one of the same workflow (an id derived from this one's, so
        # a repeated answer starts nothing twice).
        run = work.run
        next_id = continued_id(run.id)
        work.emit(StartRun(next_id, run.workflow, result.output, run.id, dict(run.labels)))
        work.note("run_continued", step, f"continued as new in run {next_id}", run_id=next_id)
        succeed(work, step, {"continued_as_new": next_id})
        return
    error = result.error or {}
    fail_step(work, step, error.get("type"), str(error.get("message") or ""))


def _suspended(work: Work, step: StepState, result: Yield) -> None:
    # What the replay reached is loaded with its own step (one read), so the writes that
    # follow know which records exist.
    work.state.require({issue.key for issue in result.issued} | {c.key for c in result.checkpoints})
    reached: list[Checkpoint | Issue] = [*result.checkpoints, *result.issued]
    for one in reached:
        work.emit(FollowUp(work.run.id, StepReached(one.key, one, step.attempt)))
    step.steps_running = result.running + sum(
        not work.waits(step_type(issue.kind)) for issue in result.issued
    )
    step.steps_waited = result.in_flight + len(result.issued)
    if step.wake:
        _replay(work, step)  # a step ended while this replay ran
        return
    if not result.issued and not result.in_flight:
        fail_step(
            work,
            step,
            "ReplayStuck",
            "the workflow suspended with no step in flight to wait for",
        )
        return
    work.set_status(step, "waiting")
    step.waiting_for = "steps"
    attempts.set_timer(work, step, None)


def on_reached(work: Work, event: StepReached) -> None:
    """Write what a replay reached: an inline step's result, or a step to start."""
    if work.run.terminal:
        return
    if isinstance(event.step, Checkpoint):
        _checkpoint(work, event.step, event.replay)
    else:
        _issue(work, event.step, event.replay)


def _checkpoint(work: Work, checkpoint: Checkpoint, replay: int) -> None:
    """An inline step the replay ran: an ended record."""
    known = work.peek(checkpoint.key)
    if known is not None and checkpoint.kind == POLL and not known.terminal:
        poll.ended(work, checkpoint)
        return
    if checkpoint.kind not in INLINE_KINDS or known is not None:
        return  # a repeated answer (the replay was delivered twice): recorded already
    spec: dict[str, Any] = {"type": checkpoint.kind}
    if checkpoint.operation is not None:
        spec["operation"] = checkpoint.operation
    step = StepState(
        key=checkpoint.key,
        status=checkpoint.status,
        attempt=1,
        name=checkpoint.name,
        spec=spec,
        position=checkpoint.position,
        after=list(checkpoint.after),
        output=checkpoint.output,
        error=checkpoint.error,
        started_at=work.now,
        ended_at=work.now,
        created_seq=replay,
    )
    work.steps[checkpoint.key] = step
    if checkpoint.status == "succeeded":
        work.note("step_completed", step, data_summary(checkpoint.output), inline=True)
    else:
        error = checkpoint.error or {}
        work.note("step_failed", step, error_text(error), error=error.get("type"), inline=True)


def _issue(work: Work, issue: Issue, replay: int) -> None:
    """A step the code reached for the first time: create its record and start it."""
    if issue.kind == POLL:
        poll.reached(work, issue, replay)
        return
    known = work.peek(issue.key)
    if known is not None and (known.spec is not None or known.status != "pending"):
        return  # issued by an earlier answer of the same replay
    spec_doc: dict[str, Any] = {**issue.spec, "type": step_type(issue.kind)}
    step = StepState(
        key=issue.key,
        name=issue.name,
        spec=spec_doc,
        position=issue.position,
        after=list(issue.after),
        input=issue.input,
        started_at=work.now,
        created_seq=replay,
        # A callback that came before its wait was kept on a record of its own: the wait takes it.
        early_signal=known.early_signal if known is not None else None,
    )
    work.steps[issue.key] = step
    if issue.kind not in ISSUED_KINDS:
        fail_step(
            work, step, "InvalidStep", f"step '{issue.name}': {issue.kind!r} is not a step kind"
        )
        return
    try:
        spec = specs.parse_spec(spec_doc)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in error['loc'][1:]) or 'step'}: {error['msg']}"
            for error in exc.errors()
        )
        fail_step(work, step, "InvalidStep", f"step '{issue.name}' ({issue.kind}): {problems}")
        return
    if (issue.kind == FOR_EACH) != (spec.for_each is not None):
        fail_step(
            work,
            step,
            "InvalidStep",
            f"step '{issue.name}' ({issue.kind}): for_each is ctx.for_each's alone",
        )
        return
    if work.run.dry_run:
        dry_run(work, step, issue.kind)
        return
    begin(work, step, spec)


def begin(work: Work, step: StepState, spec: Step | None = None) -> None:
    """Start a step the code issued: when it was reached, or again when an operator retries
    it (its definition is on its record)."""
    spec = spec if spec is not None else specs.parse_spec(step.spec or {})
    if kind_of(step.spec) == FOR_EACH:
        _fan_out(work, step)
    else:
        work.kind(spec.type).start(work, step, spec, code_run_data(work))


def redriven(work: Work, reopened: list[str]) -> None:
    """A failed run started ``reopened`` again (an operator's retry): its replay, which ended
    with the run, waits for the top-level ones as it did before, and the run is open again."""
    keys = [k for k in reopened if parse_key(k)[1] is None] or [parse_key(reopened[0])[0]]
    main = work.step(WORKFLOW_KEY)
    assert main is not None
    main.error, main.ended_at, main.due_at = None, None, None
    work.set_status(main, "waiting")
    main.waiting_for = "steps"
    main.steps_waited = len(keys)
    main.steps_running = len(keys)
    work.touch_run().open_steps = 1


def _fan_out(work: Work, step: StepState) -> None:
    """A ctx.for_each: the engine's for_each over the items the code gave (its input)."""
    try:
        fanout.start(work, step, code_expression_data(work, step.key))
    except expressions.ExpressionError as exc:
        fail_step(work, step, "ExpressionError", f"step '{step.key}': {exc}")


# -- ends ------------------------------------------------------------------------------------


def ended(work: Work, step: StepState) -> None:
    """A step of a code-first run ended: end the run (the replay step) or wake the replay."""
    if work.run.terminal:
        return
    if step.key == WORKFLOW_KEY:
        run = work.touch_run()
        run.open_steps -= 1
        if run.cancelling is not None:
            cancelled(work, _took_the_cancel(step))
            return
        if step.status == "succeeded":
            problem = schema_problem(work.definition.output_schema, step.output)
            if problem:
                end_run(
                    work,
                    "failed",
                    {"type": "OutputSchemaError", "message": f"run output: {problem}"},
                )
                return
            run.output = step.output
            end_run(work, "succeeded", None)
            return
        error = step.error or {}
        end_run(
            work,
            "failed",
            {
                "type": error.get("type", "WorkflowFailed"),
                "message": error.get("message", ""),
                "step": WORKFLOW_KEY,
            },
        )
        return
    main = work.peek(WORKFLOW_KEY)
    if (
        main is not None
        and main.status == "waiting"
        and main.waiting_for == "steps"
        and main.steps_waited == 1
        and work.definition.replay_timeout is None
    ):
        # The replay waits for this step alone, so nothing else can wake it: the step's end
        # (written on the condition that the step is still the one loaded) is the one write
        # that starts the next replay, whose attempt begins when it answers (see begun).
        spec = work.spec(WORKFLOW_KEY)
        work.emit(attempts.dispatch(work, WORKFLOW_KEY, main.attempt + 1, None, spec))
        return
    # Otherwise the replay is woken in a write of its own (the step's end is written alone).
    work.emit(FollowUp(work.run.id, DependencyEnded(WORKFLOW_KEY, step.key)))


def watch(work: Work) -> bool:
    """The run's watch (engine.core), for the replay: one that waits for steps none of which
    is in flight, or since whose start a step ended, was not woken by a dead invocation (or
    it did not write what it reached). Wake it, once the last sign of life is older than a
    replay can run (a replay a step's end started shows on the records only when it answers).
    True: the run stays watched."""
    main = work.peek(WORKFLOW_KEY)
    if main is None or main.status != "waiting" or main.waiting_for != "steps":
        return False
    # The replay waits for steps it reached, not for the children of a ctx.for_each (counted
    # on their parent, whose end wakes it).
    others = [r for r in work.state.steps.values() if r.key != WORKFLOW_KEY and r.index is None]
    ends = [r.ended_at for r in others if r.terminal and r.ended_at is not None]
    since = main.attempt_started_at
    last = max([t for t in [since, *ends] if t is not None], default=None)
    if last is not None and last + attempts.DEFAULT_LEASE > work.now:
        return True  # maybe replaying now: look again at the next watch
    ended_since = [
        r.key
        for r in others
        if r.terminal
        and (r.spec or {}).get("type") not in INLINE_KINDS  # the replay's own results
        and (since is None or (r.ended_at is not None and r.ended_at >= since))
    ]
    in_flight = any(not r.terminal and r.status != "pending" for r in others)
    if not ended_since and in_flight:
        return False
    by = ended_since[0] if ended_since else WORKFLOW_KEY
    work.emit(FollowUp(work.run.id, DependencyEnded(WORKFLOW_KEY, by)))
    return True


CANCEL_GRACE = timedelta(minutes=5)
"""How long a cancelled code-first run's code may take to clean up before the run ends."""


def cancel(work: Work, reason: str) -> None:
    """A code-first run asked to cancel: its steps in flight are cancelled, and its code runs
    once more to be told (RunCancelled at its next step) and clean up, within CANCEL_GRACE.
    Asked again while it cleans up, it ends at once."""
    if work.run.cancelling is not None:
        end_run(work, "cancelled", {"type": "Cancelled", "message": reason})
        return
    run = work.touch_run()
    until = work.now + CANCEL_GRACE
    run.cancelling = {"reason": reason, "until": until.isoformat()}
    if run.due_at is None or until < run.due_at:
        run.due_at = until
        # A timer of its own ends the grace on time, however long the clean-up sleeps.
        work.emit(ScheduleTimer(run.id, None, until))
    work.note(
        "run_cancelling", None, f"the code is told and may clean up until {until.isoformat()}"
    )
    cancel_open_steps(work)  # all but the replay, a bounded number per decision
    work.emit(FollowUp(run.id, DependencyEnded(WORKFLOW_KEY, "$cancel")))


def _took_the_cancel(step: StepState) -> str:
    """How the code took its run's cancel: letting ``RunCancelled`` through is the ordinary
    way, and another failure (of its clean-up) is kept in the run's error."""
    error = step.error or {}
    if step.status == "succeeded":
        return "its code ended after the cancel"
    if error.get("type") == "RunCancelled":
        return "its code stopped at the cancel"
    return f"its code failed after the cancel ({error_text(error)})"


def cancelled(work: Work, how: str) -> None:
    """End a cancelling run as cancelled."""
    state = work.run.cancelling or {}
    end_run(
        work,
        "cancelled",
        {"type": "Cancelled", "message": f"{state.get('reason', '')}; {how}"},
    )


def begun(work: Work, attempt: int) -> None:
    """The answer of replay ``attempt``: if a step's end started it (the replay step still
    waits at the attempt before), it begins now, as if started by a write of its own."""
    main = work.peek(WORKFLOW_KEY)
    if (
        main is None
        or main.status != "waiting"
        or main.waiting_for != "steps"
        or attempt != main.attempt + 1
    ):
        return
    step = work.step(WORKFLOW_KEY)
    assert step is not None
    step.wake = False
    step.retry_base = step.attempt
    step.lost_attempts = 0
    step.attempt = attempt
    step.token = attempt_token(work.run, WORKFLOW_KEY, attempt)
    step.attempt_started_at = work.now
    step.waiting_for = None
    work.set_status(step, "running")


def on_dependency_ended(work: Work, event: DependencyEnded) -> None:
    """``event.dependency`` ended: replay now if the replay waits; tell a running replay to
    replay again when it is done (an atomic flag, so a crowd of ends does not contend)."""
    main = work.peek(WORKFLOW_KEY)
    if main is None or main.terminal or work.run.terminal:
        return
    if main.status == "waiting" and main.waiting_for == "steps":
        step = work.step(WORKFLOW_KEY)
        assert step is not None
        if step.steps_waited == 1:
            # The one step it waits for may have started the next attempt itself (see ended),
            # unseen on this record until it answers: this replay is the one after it, so the
            # two never share an attempt (the other's answer is then stale).
            step.attempt += 1
        _replay(work, step)
    elif main.status == "running":
        work.emit(WakeReplay(work.run.id, main.attempt, event.dependency))
    # retrying: the replay's retry reads the journal afresh
