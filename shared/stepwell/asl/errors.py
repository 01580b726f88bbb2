"""A state's errors as Step Functions names them: ``Error`` and ``Cause``, the ``States.*``
names, and which ``ErrorEquals`` list matches which error."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

from stepwell.code.errors import StepFailed

ERRORS = {
    "StepTimedOut": "States.Timeout",
    "CallbackTimedOut": "States.Timeout",
    "HeartbeatTimedOut": "States.HeartbeatTimeout",
}
"""Stepwell's error names for what Step Functions names otherwise."""
STEPWELL = {"States.Timeout": "StepTimedOut", "States.HeartbeatTimeout": "HeartbeatTimedOut"}
"""The other way: a ``States.*`` name as the engine's retry policy names it."""


class MachineFailed(Exception):
    """A machine ended in a Fail state (or an error nothing caught): its error is ``Error``
    (None: a Fail state without one, which Step Functions gives no error name)."""

    def __init__(self, error: str | None, cause: str) -> None:
        super().__init__(cause)
        self.error_name = error
        self.cause = cause


def error_of(failed: StepFailed | MachineFailed) -> tuple[str | None, str]:
    """A state's error as Step Functions names it: ``Error`` and ``Cause`` (a Lambda's is the
    JSON of its errorMessage, errorType, requestId and stackTrace, compact as Step Functions
    writes it)."""
    if isinstance(failed, MachineFailed):
        return failed.error_name, failed.cause
    error = ERRORS.get(failed.error_type, failed.error_type)
    cause = {"errorMessage": failed.message, "errorType": failed.error_type, **failed.trace}
    return error, json.dumps(cause, separators=(",", ":"))


def matches(names: Any, error: str | None) -> bool:
    """Whether an ErrorEquals list matches ``error`` (States.ALL: any; States.TaskFailed: any
    but a timeout)."""
    listed = names if isinstance(names, list) else []
    if error in listed:
        return True
    if "States.ALL" in listed:
        return error != "States.Runtime"  # a runtime error always fails the execution
    return "States.TaskFailed" in listed and error not in ("States.Timeout", "States.Runtime")


def first(errors: dict[int, Exception]) -> MachineFailed | StepFailed:
    """The error of a Parallel's or a Map's first failed branch or item."""
    return failure_of(errors[min(errors)])


def failure_of(failure: Exception) -> MachineFailed | StepFailed:
    """A branch's or an item's failure as a state's (anything else it raised is
    ``States.BranchFailed``)."""
    if isinstance(failure, MachineFailed | StepFailed):
        return failure
    return MachineFailed("States.BranchFailed", str(failure))


@dataclass(frozen=True)
class FailedItem:
    """A Map item that failed within the Map's tolerated failures, in the Map's results where
    its output would be: its ``Error`` and ``Cause``, which its entry of ``FAILED_n.json``
    carries (the Map's own output has null there)."""

    error: str | None
    cause: str

    @classmethod
    def of(cls, failure: Exception) -> FailedItem:
        return cls(*error_of(failure_of(failure)))


def outputs_of(results: list[Any]) -> list[Any]:
    """A Map's output from its items' results: null where an item failed (tolerated)."""
    return [None if isinstance(result, FailedItem) else result for result in results]
