"""What a step function receives besides its input."""

from __future__ import annotations

import logging
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
