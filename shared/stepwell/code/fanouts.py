"""``ctx.parallel`` and ``ctx.map``: branches run in the replay under a completion rule, and the
decision is recorded.

Each branch (or item) runs in a scope of its own (``key.<i>.``), in order; a branch that reaches
a step it must wait for is set aside and the next one runs. The fan-out is *decided* once every
branch ended, ``min_successful`` branches succeeded, or one failure too many is known. The
replay that decides it before every branch ended records the decision on the fan-out's own key
(kind ``parallel`` or ``map``, output ``{"counted", "reason"}``): the branches it counted, those
that had ended, and why it ended. A later replay that reaches the fan-out runs only those
branches, over their ended records, so the fan-out answers the same forever, whatever the
branches it left out do later (as Lambda durable functions checkpoint a batch's result). A
branch left out never starts a step: what it reached for the first time in the deciding replay
is dropped. A decision on every branch is the same on every replay and needs no record.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any, Generic, Protocol, Self, TypeVar, cast

from stepwell.code.batch import BatchResult, CompletionReason, outcomes
from stepwell.code.errors import (
    ContextError,
    MapFailed,
    ParallelFailed,
    RunCancelled,
    Suspend,
)
from stepwell.code.protocol import Checkpoint, Recorded
from stepwell.code.replay import Replay, error_of
from stepwell.definition.models import count_of, share_of


class Scope(Protocol):
    """What a fan-out needs of the Context it runs in (stepwell.code.context): the replay, where
    in it the code stands, and a Context of its own for each branch."""

    _state: Replay
    _scope: str
    _last: list[str]
    _positions: int
    _replaying_all: bool

    def _key(self, name: str) -> str: ...

    def branch(self, scope: str, *, replaying_all: bool, last: list[str]) -> Self: ...


S = TypeVar("S", bound=Scope)


@dataclass(frozen=True)
class Completion:
    """A fan-out's completion rule: the failures it tolerates, the successes that decide it."""

    tolerated: int
    needed: int | None
    fail_fast: bool

    @classmethod
    def of(
        cls,
        name: str,
        total: int,
        tolerated_failures: int | str,
        min_successful: int | str | None,
        fail_fast: bool,
        batch: bool = False,
    ) -> Completion:
        """The rule of a fan-out of ``total``; a batch without a rule of its own waits for
        every item (its result says how each went)."""
        try:
            tolerated = count_of(share_of(tolerated_failures), total)
        except ValueError as exc:
            raise ValueError(f"{name!r}: tolerated_failures: {exc}") from None
        try:
            share = None if min_successful is None else share_of(min_successful)
        except ValueError as exc:
            raise ValueError(f"{name!r}: min_successful: {exc}") from None
        needed = None if share is None else min(total, count_of(share, total))
        explicit = tolerated_failures not in (0, "0")
        if batch and not explicit and needed is None:
            return cls(total, None, fail_fast)
        if needed is not None:
            # Failing more than total - needed means it can no longer reach min_successful.
            tolerated = min(tolerated, total - needed) if explicit else total - needed
        return cls(tolerated, needed, fail_fast)

    def enough(self, succeeded: int) -> bool:
        return self.needed is not None and succeeded >= self.needed


@dataclass
class FanOut:
    """Where a fan-out's branches stand once it is decided."""

    results: list[Any]
    errors: dict[int, Exception]
    ended: set[int]
    """The indices that returned or raised: the branches the decision counted."""
    reason: CompletionReason | None = None


def fan_out(
    ctx: S,
    kind: str,
    name: str,
    jobs: list[Callable[[S], Any]],
    max_concurrency: int | None,
    rule: Completion,
    batch: bool,
) -> Any:
    """Run a parallel's branches or a map's items under ``rule``: their results, a
    BatchResult, or the failure raised; a suspension while it is not decided."""
    if max_concurrency is not None and (
        not isinstance(max_concurrency, int) or max_concurrency < 1
    ):
        raise ValueError(f"{name!r}: max_concurrency must be an int >= 1 (or None for no limit)")
    state = ctx._state
    key = ctx._key(name)
    position = ctx._positions
    ctx._positions += 1
    record = state.reached(key, kind, ctx._scope, position)
    before = list(ctx._last)
    run = FanOut([None] * len(jobs), {}, set())
    branches = _Branches(ctx, key, jobs, before, replaying_all=record is not None)
    try:
        if record is None:
            _decide(branches, run, max_concurrency, rule)
        else:
            _replay(branches, run, record)
    finally:
        branches.close()
    failure: Exception | None = None
    if run.reason == "failure_tolerance_exceeded" and not batch:
        if kind == "map":
            failure = MapFailed(key, run.results, run.errors, rule.tolerated)
        else:
            failure = ParallelFailed(key, run.results, run.errors)
    if record is None and len(run.ended) < len(jobs):
        # Decided on some branches only: what the others do later must not change it. (A
        # decision on every branch is the same on every replay: it needs no record.)
        decision = {"counted": _ranges(run.ended), "reason": run.reason}
        state.checkpoints.append(
            Checkpoint(
                key,
                name,
                kind,
                position,
                "failed" if failure is not None else "succeeded",
                decision,
                error_of(failure) if failure is not None else None,
                None,
                before,
            )
        )
    if failure is not None:
        raise failure from run.errors[min(run.errors)]
    if batch:
        assert run.reason is not None
        return BatchResult(outcomes(len(jobs), run.results, run.errors, run.ended), run.reason)
    return run.results


def _decide(
    branches: _Branches[Any], run: FanOut, max_concurrency: int | None, rule: Completion
) -> None:
    """Run the branches in order until the rule decides the fan-out, or suspend."""
    state = branches.state
    mark = len(state.issued)
    waiting = started = 0
    for index in range(len(branches.jobs)):
        if max_concurrency is not None and waiting >= max_concurrency:
            break
        started += 1
        if not branches.run(index, run):
            waiting += 1
        elif index not in run.errors and rule.enough(len(run.ended) - len(run.errors)):
            run.reason = "min_successful_reached"
            break
        elif rule.fail_fast and len(run.errors) > rule.tolerated:
            run.reason = "failure_tolerance_exceeded"
            break
    if run.reason is not None:
        # Decided early: what the branches left out reached for the first time in this replay
        # is not started, now or ever.
        branches.drop(state.issued[mark:])
        del state.issued[mark:]
    elif waiting or started < len(branches.jobs):
        raise state.suspend(branches.key)
    elif len(run.errors) > rule.tolerated:
        run.reason = "failure_tolerance_exceeded"
    else:
        run.reason = "all_completed"
    state.pass_under(branches.inner)


def _replay(branches: _Branches[Any], run: FanOut, record: Recorded) -> None:
    """Answer as the recorded decision did: run the branches it counted, and only those."""
    state = branches.state
    decision = record.output if isinstance(record.output, dict) else {}
    counted = _indices(decision.get("counted") or [])
    run.reason = cast(CompletionReason, decision.get("reason") or "all_completed")
    total = len(branches.jobs)
    if any(index >= total for index in counted):
        raise state.mismatched(
            f"{record.kind} {branches.key!r} was decided on branch {max(counted)} when this run "
            f"started and the code now gives it {total}"
        )
    for index in counted:
        if not branches.run(index, run):
            raise state.mismatched(
                f"branch {index} of {branches.key!r} had ended when the {record.kind} was "
                f"decided and now waits for step {branches.waits_for!r}"
            )
    if run.reason == "failure_tolerance_exceeded" and not run.errors:
        raise state.mismatched(
            f"{record.kind} {branches.key!r} failed when this run started and the code now "
            "makes the branches it was decided on succeed"
        )
    state.pass_under(branches.inner)


class _Branches(Generic[S]):
    """The branches of one fan-out in one replay: each runs in its scope, and the steps after
    the fan-out come after their last steps."""

    def __init__(
        self,
        ctx: S,
        key: str,
        jobs: list[Callable[[S], Any]],
        before: list[str],
        replaying_all: bool,
    ) -> None:
        self.ctx = ctx
        self.state = ctx._state
        self.key = key
        self.inner = key + "."
        self.jobs = jobs
        self.before = before
        # Records in this scope past the fan-out: the code went on after it in an earlier
        # replay, so all of it is a replay (for ctx.logger).
        self.replaying_all = (
            replaying_all
            or ctx._replaying_all
            or self.state.unvisited(ctx._scope) > self.state.unvisited(self.inner)
        )
        self.lasts: list[str] = []
        self.dropped: dict[str, list[str]] = {}
        self.waits_for = ""

    def run(self, index: int, run: FanOut) -> bool:
        """Run branch ``index``: True once it ended (its result or error is on ``run``), False
        when it waits for a step."""
        state = self.state
        child = self.ctx.branch(
            f"{self.inner}{index}.", replaying_all=self.replaying_all, last=self.before
        )
        state.active = child
        try:
            run.results[index] = self.jobs[index](child)
        except Suspend as suspension:
            state.caught(suspension)
            self.waits_for = suspension.key
            return False
        except (ContextError, RunCancelled):
            raise  # a bug in the code, or the run's cancel: not a failed branch
        except Exception as exc:
            run.errors[index] = exc
        finally:
            state.active = self.ctx
            self.lasts.extend(child._last)
        run.ended.add(index)
        return True

    def drop(self, issued: Iterable[Any]) -> None:
        """Steps reached and not started: an edge through one runs from the step before it."""
        self.dropped.update((issue.key, issue.after) for issue in issued)

    def close(self) -> None:
        edges = [edge for key in self.lasts for edge in self.dropped.get(key, [key])]
        self.ctx._last = list(dict.fromkeys(edges)) or self.before


def _ranges(indices: Iterable[int]) -> list[list[int]]:
    """``{0, 1, 2, 5}`` -> ``[[0, 3], [5, 6]]``: a set of indices as ``[start, stop)`` runs, so
    a decision over thousands of items stays small."""
    runs: list[list[int]] = []
    for index in sorted(indices):
        if runs and runs[-1][1] == index:
            runs[-1][1] = index + 1
        else:
            runs.append([index, index + 1])
    return runs


def _indices(ranges: Iterable[Any]) -> list[int]:
    """The indices of ``[start, stop)`` runs, in order."""
    return [index for start, stop in ranges for index in range(int(start), int(stop))]
