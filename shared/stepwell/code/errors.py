"""What a code-first workflow's Context raises.

The code may catch :class:`StepFailed`, :class:`ParallelFailed` and :class:`MapFailed` (a
step's failure is the code's to handle, as in Temporal and Lambda durable functions).
:class:`ReplayMismatch` and the internal suspension derive from ``BaseException`` so that an
``except Exception`` in the workflow cannot swallow them.
"""

from __future__ import annotations

from typing import Any


class StepFailed(Exception):
    """A step ended in failure (after its retries): catch it to handle the failure in code."""

    def __init__(
        self, step: str, error_type: str, message: str, trace: dict[str, Any] | None = None
    ) -> None:
        super().__init__(f"step {step!r} failed: {error_type}: {message}")
        self.step = step
        """The step's key (its name, ``name~2`` in a loop, ``checks.0.name`` in branch 0 of a
        parallel named ``checks``)."""
        self.error_type = error_type
        """The error's name: the exception type the step raised, ``StepTimedOut``,
        ``ApprovalTimedOut``, ``CallbackTimedOut`` ..."""
        self.message = message
        self.trace = trace or {}
        """Where a function's failure came from: its invocation's ``requestId`` and its
        ``stackTrace`` (empty for other failures)."""


class ParallelFailed(Exception):
    """A branch of ``ctx.parallel`` raised."""

    def __init__(self, parallel: str, results: list[Any], errors: dict[int, Exception]) -> None:
        detail = "; ".join(
            f"branch {index}: {type(error).__name__}: {error}"
            for index, error in sorted(errors.items())
        )
        super().__init__(f"parallel {parallel!r} failed: {detail}")
        self.parallel = parallel
        self.results = results
        """Each branch's return value by index (None for a branch that failed or had not ended)."""
        self.errors = errors
        """The exception of each failed branch, by index."""


class MapFailed(Exception):
    """More items of ``ctx.map`` failed than it tolerates."""

    def __init__(
        self, map_key: str, results: list[Any], errors: dict[int, Exception], tolerated: int
    ) -> None:
        first = min(errors)
        super().__init__(
            f"map {map_key!r} failed: {len(errors)} items failed, {tolerated} tolerated "
            f"(item {first}: {type(errors[first]).__name__}: {errors[first]})"
        )
        self.map = map_key
        self.results = results
        """Each item's result by index (None for an item that failed or had not ended)."""
        self.errors = errors
        """The exception of each failed item, by index."""
        self.tolerated = tolerated


class RunCancelled(Exception):
    """The run was asked to cancel: raised at the code's next step (once per replay). Catch it
    (or use ``finally``) to clean up: steps made after it run, until the grace period ends;
    the run then ends ``cancelled`` whatever the code returns. (A suspension passes through
    ``finally`` too, but the Context refuses every call while it does: no clean-up step runs
    then.)"""

    def __init__(self, reason: str) -> None:
        super().__init__(f"the run was cancelled: {reason}")
        self.reason = reason


class ContextError(RuntimeError):
    """The Context was used in a way the replay cannot follow (a bug in the workflow's code)."""


class ReplayMismatch(BaseException):
    """The code no longer matches the run's records: it changed under a run in flight."""


class ContinueAsNew(BaseException):
    """Internal: ``ctx.continue_as_new`` ends this run for a new one. Never catch it."""

    def __init__(self, input: Any) -> None:
        super().__init__("continue as new")
        self.input = input


class Suspend(BaseException):
    """Internal: the replay cannot go past this point until a step ends. Never catch it. While
    it leaves the code, every Context call raises it again (``Replay.unwinding``)."""

    def __init__(self, key: str) -> None:
        super().__init__(key)
        self.key = key
