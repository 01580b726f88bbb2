"""What a step function receives besides its input."""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

LOGGER = "stepwell.step"
"""The logger of ``ctx.logger``: each line it writes during an attempt carries the attempt's
``run_id``, ``step_id`` and ``attempt`` (a JSON log line's keys; CloudWatch Logs Insights
finds an attempt's lines by them)."""
_attempt: ContextVar[dict[str, Any] | None] = ContextVar("stepwell_step_attempt", default=None)


class _AttemptKeys(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        for name, value in (_attempt.get() or {}).items():
            if not hasattr(record, name):
                setattr(record, name, value)
        return True


logging.getLogger(LOGGER).addFilter(_AttemptKeys())


@dataclass(frozen=True)
class StepContext:
    """The attempt a step function is running.

    ``idempotency_key`` (``run:step:attempt``) is the same for every delivery of one attempt:
    pass it to payment APIs and the like so a duplicate delivery has no second effect.
    """

    run_id: str
    step_id: str
    key: str
    attempt: int
    idempotency_key: str
    workflow: str = ""
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger(LOGGER))
    beat: Callable[[], None] | None = field(default=None, repr=False, compare=False)
    """How this attempt tells its run it is alive (set by the step's handler)."""

    def heartbeat(self) -> None:
        """Tell the run this attempt is alive: a step with ``heartbeat:`` must call this at
        least that often, or its attempt fails with ``HeartbeatTimedOut``. Never raises: a
        heartbeat that could not be recorded is only a missed one."""
        if self.beat is None:
            return
        try:
            self.beat()
        except Exception:
            self.logger.warning("heartbeat of %s attempt %d not recorded", self.key, self.attempt)


@contextmanager
def attempt_keys(ctx: StepContext) -> Iterator[None]:
    """While the block runs, ``ctx.logger``'s lines carry the attempt's keys."""
    token = _attempt.set({"run_id": ctx.run_id, "step_id": ctx.key, "attempt": ctx.attempt})
    try:
        yield
    finally:
        _attempt.reset(token)
