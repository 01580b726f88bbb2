"""A code-first step's definition: the replay step's own, or the one kept on a step's record."""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

from pydantic import TypeAdapter

from stepwell.definition.models import CodeStep, Retry, Step

_STEP: TypeAdapter[Step] = TypeAdapter(Step)

REPLAY_RETRY = Retry(max_attempts=3, interval=timedelta(seconds=2))
"""A replay that crashed (not the workflow's own exception: that fails the run) is retried."""


@cache
def replay_spec(replay_timeout: timedelta | None) -> CodeStep:
    """The definition of a code-first run's own step."""
    return CodeStep(timeout=replay_timeout, retry=REPLAY_RETRY)


def parse_spec(spec: dict[str, Any]) -> Step:
    """A code-first step's definition from the spec on its record."""
    return _STEP.validate_python(spec)
