"""Workflows: an app's function that holds its workflow files (its CodeUri): it describes them
to the engine's publisher, and replays its code-first workflows and Step Functions machines
(as the engine's runner runs a replay)."""

from __future__ import annotations

from typing import Any

from stepwell.handlers import runner
from stepwell.runtime import describing
from stepwell.runtime.wiring import current


def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """A describe request from the publisher, or one replay of a code-first run."""
    if describing.is_request(event):
        return describing.answer(event, current().code.folder)
    answer: dict[str, Any] = runner.handler(event, context)
    return answer
