"""What a step function receives besides its input."""

from __future__ import annotations

import logging
from collections.abc import Callable
from dataclasses import dataclass, field


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
    logger: logging.Logger = field(default_factory=lambda: logging.getLogger("stepwell.step"))
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
