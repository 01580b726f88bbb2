"""What a fan-out came to, item by item: ``ctx.parallel(..., batch=True)`` and
``ctx.map(..., batch=True)`` return a :class:`BatchResult` instead of raising.

Each branch or item has an :class:`Outcome`: ``succeeded`` (its value), ``failed`` (its
exception), or ``not_run`` (never started, or still running when the completion rule decided
the fan-out: its result is not waited for). ``completion_reason`` says which rule ended it, as
Lambda durable functions' ``BatchResult`` does.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

OutcomeStatus = Literal["succeeded", "failed", "not_run"]
CompletionReason = Literal["all_completed", "min_successful_reached", "failure_tolerance_exceeded"]


@dataclass(frozen=True)
class Outcome:
    """How one branch or item of a fan-out went."""

    index: int
    status: OutcomeStatus
    value: Any = None
    """What it returned, when it succeeded."""
    error: Exception | None = None
    """What it raised, when it failed."""


@dataclass(frozen=True)
class BatchResult:
    """Every branch's or item's outcome, in order, and why the fan-out ended."""

    items: list[Outcome]
    completion_reason: CompletionReason

    @property
    def succeeded(self) -> list[Outcome]:
        return [o for o in self.items if o.status == "succeeded"]

    @property
    def failed(self) -> list[Outcome]:
        return [o for o in self.items if o.status == "failed"]

    def values(self) -> list[Any]:
        """Each item's value in order (None where it did not succeed)."""
        return [o.value if o.status == "succeeded" else None for o in self.items]

    def raise_if_failed(self) -> None:
        """Raise the first failure, if any item failed."""
        for outcome in self.items:
            if outcome.error is not None:
                raise outcome.error


def outcomes(
    total: int, results: list[Any], errors: dict[int, Exception], ended: set[int]
) -> list[Outcome]:
    """The outcome of each of ``total`` items."""
    found = []
    for index in range(total):
        if index in errors:
            found.append(Outcome(index, "failed", error=errors[index]))
        elif index in ended:
            found.append(Outcome(index, "succeeded", value=results[index]))
        else:
            found.append(Outcome(index, "not_run"))
    return found
