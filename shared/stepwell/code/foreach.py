"""``ctx.for_each``: the arguments checked into a step spec, and a failed step's record read back.

The step is one engine step: a task with ``for_each`` over the items the code gave (the step's
input), fanned out and counted by the engine as a YAML ``for_each`` task step is. Its record
holds the children's outputs in item order; a failed one (``ForEachFailed``) also holds the
failed children's errors by index, which become a :class:`MapFailed`, and one that succeeded
the errors of the failures it tolerated, which a ``batch`` gives back.
"""

from __future__ import annotations

from typing import Any

from stepwell.code.batch import BatchResult, Outcome
from stepwell.code.errors import MapFailed, StepFailed
from stepwell.code.protocol import FOR_EACH_ITEMS, Recorded
from stepwell.code.specs import Duration, RetryPolicy, put_duration, put_retry
from stepwell.definition.models import count_of, share_of

MAX_CONCURRENCY = 1000
"""As YAML's ``max_parallel``: children of one fan-out running at once."""
FAILED = "ForEachFailed"
"""The error of a fan-out with more failed children than it tolerates."""


def items_of(name: str, items: Any) -> list[Any]:
    """The items as a list; TypeError naming the step unless they are a list or a tuple."""
    if not isinstance(items, list | tuple):
        raise TypeError(
            f"step {name!r}: items must be a list (one child per item), not "
            f"{type(items).__name__}: pass list(...) of them"
        )
    return list(items)


def spec_of(
    name: str,
    function: str,
    max_concurrency: int,
    tolerated_failures: int | str,
    retry: RetryPolicy | None,
    timeout: Duration | None,
    heartbeat: Duration | None,
) -> dict[str, Any]:
    """The step's spec as a YAML ``for_each`` task step writes it; ValueError naming the step
    and the fix for a bad argument."""
    if not isinstance(function, str) or not function:
        raise ValueError(
            f"step {name!r}: function must name a Lambda function (a logical id in "
            f"template.yaml, a function name or an ARN), not {function!r}"
        )
    if (
        isinstance(max_concurrency, bool)
        or not isinstance(max_concurrency, int)
        or not 1 <= max_concurrency <= MAX_CONCURRENCY
    ):
        raise ValueError(
            f"step {name!r}: max_concurrency must be an int from 1 to {MAX_CONCURRENCY} (the "
            f"children running at once), not {max_concurrency!r}"
        )
    try:
        tolerated = share_of(tolerated_failures)
    except ValueError as exc:
        raise ValueError(f"step {name!r}: tolerated_failures: {exc}") from None
    spec: dict[str, Any] = {
        "function": function,
        "for_each": FOR_EACH_ITEMS,
        "max_parallel": max_concurrency,
        "tolerated_failures": tolerated,
    }
    put_retry(spec, name, retry)
    put_duration(spec, name, "timeout", timeout)
    put_duration(spec, name, "heartbeat", heartbeat)
    return spec


def tolerated_of(tolerated_failures: int | str, total: int) -> int:
    """Failed children a fan-out of ``total`` items tolerates (as the engine counts them)."""
    return count_of(share_of(tolerated_failures), total)


def raise_failed(record: Recorded, total: int, tolerated: int) -> None:
    """Raise MapFailed for a record of a fan-out that failed past its tolerance (with the
    failed children's errors by index and the outputs of those that succeeded)."""
    error = record.error or {}
    if record.status != "failed" or error.get("type") != FAILED:
        return
    failures = _errors(record, error.get("errors"), total)
    if failures:  # else (no child's error recorded) it is raised as the step's failure
        outputs = record.output if isinstance(record.output, list) else []
        results = [outputs[i] if i < len(outputs) else None for i in range(total)]
        raise MapFailed(record.key, results, failures, tolerated)


def batch_of(record: Recorded, outputs: list[Any]) -> BatchResult:
    """Each item's outcome of a fan-out that succeeded: the failures it tolerated with their
    errors, the other items with their outputs."""
    failures = _errors(record, record.failed_items, len(outputs))
    items = [
        Outcome(i, "failed", error=failures[i]) if i in failures else Outcome(i, "succeeded", v)
        for i, v in enumerate(outputs)
    ]
    return BatchResult(items, "all_completed")


def _errors(record: Recorded, listed: Any, total: int) -> dict[int, Exception]:
    """The failed children's errors (``{"index", "type", "message"}`` each) as StepFailed, by
    index."""
    failures: dict[int, Exception] = {}
    for failure in listed or []:
        index = int(failure.get("index", -1))
        if 0 <= index < total:
            trace = {k: failure[k] for k in ("requestId", "stackTrace") if k in failure}
            failures[index] = StepFailed(
                f"{record.key}[{index}]",
                str(failure.get("type") or "StepFailed"),
                str(failure.get("message") or ""),
                trace,
            )
    return failures
