"""The notify step: put one event on the EventBridge bus; output ``{"event_id"}``.

Fails with ``NotifyDetailInvalid`` (not retried) when the rendered detail is not a JSON object,
which EventBridge requires; with ``EventPublishError`` when EventBridge refuses the entry.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, ClassVar, Protocol

from stepwell.runtime.step_context import StepContext

DEFAULT_SOURCE = "stepwell"


class EventPublisher(Protocol):
    """Puts one event on the bus and returns its id (EventBridgeBus is one)."""

    def publish(self, detail_type: str, detail: dict[str, Any], source: str | None = None) -> str:
        """Publish and return the event id."""
        ...


class NotifyDetailInvalid(TypeError):
    """The step's detail did not render to a JSON object."""

    retryable: ClassVar[bool] = False


ERROR_NAMES = ("NotifyDetailInvalid", "EventPublishError")
"""The error names a notify step fails with."""


def run(params: Mapping[str, Any], ctx: StepContext, publisher: EventPublisher) -> Any:
    """Publish the event ``params`` describe: ``{detail_type, detail, source}``."""
    detail_type = str(params["detail_type"])
    detail = params.get("detail")
    if detail is None:
        detail = {}
    if not isinstance(detail, dict):
        raise NotifyDetailInvalid(
            f"notify step '{ctx.step_id}': detail must be an object (EventBridge requires one), "
            f"got {type(detail).__name__}; wrap it, e.g. detail: {{value: ...}}"
        )
    event_id = publisher.publish(detail_type, detail, params.get("source") or DEFAULT_SOURCE)
    ctx.logger.info("notify step published %s as %s", detail_type, event_id)
    return {"event_id": event_id}
