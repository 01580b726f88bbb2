"""One replay of a code-first workflow: run the function from the top over the run's journal.

    state = Replay(journal, info, now)   # context.replay runs the function over it

Every Context call is given a key (its name; ``name~2`` for its second occurrence in the same
scope; ``parallel.0.name`` inside branch 0 of a parallel) and a position (the order in which the
code reaches steps in that scope). A call whose key has an ended record returns its stored
result (or raises its stored failure); a record still in flight suspends the replay; a call with
no record is new: an issued kind becomes an :class:`~stepwell.code.protocol.Issue` and
suspends, an inline kind runs here and becomes a :class:`~stepwell.code.protocol.Checkpoint`.

Before a record is used it is checked against the code (see :meth:`Replay.reached`): a different
kind under the key, a different position, or a different key at the position means the code
changed under the run, and the replay fails with ``ReplayMismatch`` naming the step.

Pure: no I/O and no clock (``now`` is given; it only feeds ``ctx.now()``). The one side effect
is the ``sleep`` between retries of an inline step, injectable for tests.
"""

from __future__ import annotations

import json
import logging
import time
from collections import Counter
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from stepwell import intake
from stepwell.code.errors import ReplayMismatch, RunCancelled, Suspend
from stepwell.code.protocol import (
    FAN_OUT_KINDS,
    WORKFLOW_KEY,
    Checkpoint,
    Issue,
    Recorded,
    RunInfo,
    Yield,
)

VERSION_HINT = (
    "the workflow's code changed under a run in flight; give the new code a new version "
    "(@workflow(version=...)) and keep the old function for the runs that started with it"
)

LOGGER_NAME = "stepwell.workflow"

Links = Callable[[str, datetime], dict[str, str]]
"""A callback's signed link: ``(key, expires_at) -> {"token", "url"}``."""
Services = Callable[[str, str, dict[str, Any], str | None], Any]
"""An AWS call as an aws step makes it, ``(service, action, parameters, role) -> response``:
what a job's check calls (``ctx.aws_job``), as the role its start named (None: the
workflow's role, as an aws step without one)."""
"""The logger ``ctx.logger`` writes to unless the runner passes its own."""

_KIND_WORDS = {
    "task": "a task",
    "http": "an http step",
    "agent": "an agent step",
    "notify": "a notify step",
    "shell": "a shell step",
    "aws": "an aws step",
    "delay": "a sleep",
    "approval": "an approval",
    "input": "an input form",
    "callback": "a callback wait",
    "event": "an event wait",
    "workflow": "a child workflow",
    "step": "an inline step",
    "operation": "an operation",
    "now": "a ctx.now()",
    "parallel": "a parallel",
    "map": "a map",
    "for_each": "a for_each",
    "child": "a child block",
}

SCOPE_KINDS = FAN_OUT_KINDS | {"child"}
"""Kinds whose steps lie in scopes of their own (``key.<i>.``): a fan-out (its decision
recorded on ``key``), or a child block (one scope, ``key.0.``, its result recorded on ``key``)."""


def kind_word(kind: str) -> str:
    """``delay`` -> ``a sleep``: a kind as the code writes it."""
    return _KIND_WORDS.get(kind, f"a {kind} step")


def scope_of(key: str) -> str:
    """``checks.0.lint~2`` -> ``checks.0.``; a top-level key's scope is ``""``."""
    return key[: key.rfind(".") + 1]


def describe_scope(scope: str) -> str:
    """Where a scope is, in words: ``the workflow`` or ``branch 1 of 'checks'``."""
    if not scope:
        return "the workflow"
    parent, _, index = scope[:-1].rpartition(".")
    return f"branch {index} of {parent!r}"


def _prefixes(key: str) -> list[str]:
    """``a.0.b`` -> ``["", "a/", "a.0."]``: the scopes (and fan-outs) a key lies under."""
    out = [""]
    index = key.find(".")
    while index >= 0:
        out.append(key[: index + 1])
        index = key.find(".", index + 1)
    return out


def to_json(value: Any, what: str) -> Any:
    """``value`` as it will come back from the run's records; TypeError naming ``what`` if it is
    not JSON, :class:`~stepwell.intake.JsonTooDeep` if it nests too deep. Returning the
    round-tripped value gives the code the same value (lists for tuples, string keys) on the
    first run as on every replay."""
    intake.check(value, what)
    try:
        text = json.dumps(value, allow_nan=False)
    except (TypeError, ValueError) as exc:
        raise TypeError(
            f"{what} is not JSON ({exc}): steps pass JSON values (dict, list, str, int, float, "
            "bool, None); convert it, e.g. a datetime to .isoformat()"
        ) from None
    return json.loads(text)


def error_of(exc: BaseException) -> dict[str, Any]:
    """The ``{"type", "message"}`` a failure is recorded as: the exception's type name, or the
    name it gives itself (``error_name``, as an ASL machine's ``Fail`` state does; None there
    is a failure with no name, as a ``Fail`` state without ``Error`` ends an execution)."""
    named = getattr(exc, "error_name", type(exc).__name__)
    if named is not None and not (isinstance(named, str) and named):
        named = type(exc).__name__
    return {"type": named, "message": str(exc)}


class Replay:
    """The state of one replay, shared by the root Context and every branch Context."""

    def __init__(
        self,
        journal: Mapping[str, Recorded],
        info: RunInfo,
        now: datetime,
        *,
        sleep: Callable[[float], None] = time.sleep,
        logger: Any = None,
        links: Links | None = None,
        services: Services | None = None,
    ) -> None:
        self.links = links
        self.services = services
        self._cancel_told = False
        """``(key, expires_at) -> {"token", "url"}``: a callback's signed link (None: the replay
        has no signing keys, as in unit tests)."""
        # A pending record is a step the engine has not started: a callback that arrived
        # before its wait opened leaves one, to be kept for the wait. The code issues it.
        self.records = {
            key: r for key, r in journal.items() if key != WORKFLOW_KEY and r.status != "pending"
        }
        self.info = info
        self.now = now if now.tzinfo is not None else now.replace(tzinfo=UTC)
        self.sleep = sleep
        self.logger: Any = logger if logger is not None else logging.getLogger(LOGGER_NAME)
        self.issued: list[Issue] = []
        self.checkpoints: list[Checkpoint] = []
        self.active: Any = None
        """The Context whose code runs now (a branch's while the branch runs)."""
        self.inside_step: str | None = None
        """The key of the inline step whose function runs now."""
        self.finished = False
        self.suspensions: list[Suspend] = []
        """Suspensions raised and not yet caught by the replay (left over: the code caught one)."""
        self.mismatch: ReplayMismatch | None = None
        self._at_position: dict[tuple[str, int], Recorded] = {}
        self._fan_outs: set[str] = set()
        self._total: Counter[str] = Counter()
        self._seen: Counter[str] = Counter()
        self._visited: set[str] = set()
        for key, record in self.records.items():
            self._at_position[(scope_of(key), record.position)] = record
            prefixes = _prefixes(key)
            self._total.update(prefixes)
            # "a/", "a.0.", "a.0.b/", "a.0.b.1.": every other prefix is a fan-out's key + ".".
            self._fan_outs.update(prefix[:-1] for prefix in prefixes[1::2])

    # -- reaching a step --------------------------------------------------------------------

    def reached(self, key: str, kind: str, scope: str, position: int) -> Recorded | None:
        """The record of a step the code reached, once it is checked to match the code."""
        record = self.records.get(key)
        if record is not None and record.kind != kind:
            raise self.mismatched(
                f"step {key!r} was {kind_word(record.kind)} when this run started and the code "
                f"now makes it {kind_word(kind)}"
            )
        if record is None and kind not in SCOPE_KINDS and key in self._fan_outs:
            raise self.mismatched(
                f"step {key!r} was a parallel or a map when this run started and the code now "
                f"makes it {kind_word(kind)}"
            )
        other = self._at_position.get((scope, position))
        if other is not None and other.key != key:
            raise self.mismatched(
                f"step {key!r} is reached where step {other.key!r} was when this run started "
                f"(step {position + 1} of {describe_scope(scope)})"
            )
        if record is not None and record.position != position:
            raise self.mismatched(
                f"step {key!r} was step {record.position + 1} of {describe_scope(scope)} when "
                f"this run started and is now step {position + 1}"
            )
        if record is not None:
            self.visit(key)
        return record

    def mismatched(self, what: str) -> ReplayMismatch:
        """A ReplayMismatch to raise; the first one is kept, so catching it changes nothing."""
        error = ReplayMismatch(f"{what}: {VERSION_HINT}")
        if self.mismatch is None:
            self.mismatch = error
        return error

    def interrupt(self) -> None:
        """Raise RunCancelled the first time in this replay the code reaches a step that has
        not ended, while the run is asked to cancel (its clean-up steps then run)."""
        if self.info.cancelled is not None and not self._cancel_told:
            self._cancel_told = True
            raise RunCancelled(self.info.cancelled)

    def suspend(self, key: str) -> Suspend:
        """A suspension to raise at ``key``."""
        suspension = Suspend(key)
        self.suspensions.append(suspension)
        return suspension

    def unwinding(self) -> None:
        """Raise again the suspension on its way out of the code, if one is: what the code
        asks for meanwhile (in a ``finally`` block, an ``__exit__``, an ``except
        BaseException``) is clean-up for a real end, and a suspension is not one."""
        if self.suspensions:
            raise self.suspensions[-1]

    def caught(self, suspension: Suspend) -> None:
        """The replay (a fan-out, or the top) caught ``suspension``."""
        self.suspensions = [s for s in self.suspensions if s is not suspension]

    # -- which part of the code is replayed ---------------------------------------------------

    def visit(self, key: str) -> None:
        """The code reached the record ``key``."""
        if key in self._visited:
            return
        self._visited.add(key)
        self._seen.update(_prefixes(key))

    def pass_under(self, prefix: str) -> None:
        """Count every record under ``prefix`` as reached (a fan-out given up on fail fast)."""
        for key in self.records:
            if key.startswith(prefix):
                self.visit(key)

    def unvisited(self, prefix: str) -> int:
        """Records under ``prefix`` the code has not reached yet in this replay."""
        return self._total[prefix] - self._seen[prefix]

    def unreached_top(self) -> list[Recorded]:
        """Top-level records this replay did not reach, in position order."""
        left = [r for k, r in self.records.items() if not scope_of(k) and k not in self._visited]
        return sorted(left, key=lambda r: r.position)

    # -- the answer -------------------------------------------------------------------------

    def answer(self, status: str, output: Any, error: dict[str, Any] | None) -> Yield:
        """The Yield, once the function returned, raised or suspended."""
        checkpoints = list(self.checkpoints)
        if self.mismatch is not None:
            return Yield("failed", error=error_of(self.mismatch), checkpoints=checkpoints)
        if self.suspensions:
            key = self.suspensions[0].key
            return Yield(
                "failed",
                error={
                    "type": "ContextError",
                    "message": (
                        f"the code caught the replay's suspension at step {key!r} (with a bare "
                        "'except:' or 'except BaseException:'), so it ran on without the step's "
                        "result: catch Exception instead"
                    ),
                },
                checkpoints=checkpoints,
            )
        if status == "suspended":
            open_ = [r for r in self.records.values() if not r.ended]
            return Yield(
                "suspended",
                issued=list(self.issued),
                checkpoints=checkpoints,
                in_flight=len(open_),
                running=sum(r.status in ("running", "retrying") for r in open_),
            )
        if status == "failed":
            return Yield("failed", error=error, checkpoints=checkpoints)
        left = self.unreached_top()
        if left:
            mismatch = self.mismatched(
                f"step {left[0].key!r} ran when this run started, but the code now returns "
                "without reaching it"
            )
            return Yield("failed", error=error_of(mismatch), checkpoints=checkpoints)
        what = "the input of ctx.continue_as_new" if status == "continued" else None
        try:
            value = to_json(output, what or "the workflow's return value")
        except TypeError as exc:
            return Yield("failed", error=error_of(exc), checkpoints=checkpoints)
        return Yield(
            "continued" if status == "continued" else "completed",
            output=value,
            checkpoints=checkpoints,
        )
