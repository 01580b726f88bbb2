"""``POST /events``: put an event on the engine's bus (IAM-authorised, like the operator
routes), where the engine's rule hands it to the event waits like any other event."""

from __future__ import annotations

from typing import Annotated, Any

from aws_lambda_powertools.event_handler.openapi.params import Body
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import BaseModel, Field, StringConstraints, field_validator

from stepwell.api.deps import current
from stepwell.api.models import _Request
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.engine.commands import EmitEvent

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

RESERVED_SOURCES = frozenset({"stepwell", "lambda"})
"""Sources the engine's rule does not hand to event waits (its own events, Lambda's reports)."""


class EventRequest(_Request):
    """An event to put on the engine's bus."""

    source: Annotated[str, StringConstraints(min_length=1, max_length=256)] = Field(
        description="The event's source (not stepwell or lambda, which event waits never get)."
    )
    detail_type: Annotated[str, StringConstraints(min_length=1, max_length=128)] = Field(
        description="The event's detail-type."
    )
    detail: dict[str, Any] = Field(default_factory=dict, description="The event's detail.")
    id: Annotated[str, StringConstraints(min_length=1, max_length=128)] | None = Field(
        None,
        description="An id of your own: the event's id as waits see it, and sent again (a "
        "retry) it is the same event, kept once and completing nothing twice (known for 7 "
        "days). Without one, every request is a new event.",
    )

    @field_validator("source")
    @classmethod
    def _not_reserved(cls, value: str) -> str:
        if value in RESERVED_SOURCES:
            raise ValueError(
                f"source {value!r} is reserved: event waits never receive it; use your own, "
                "e.g. payments"
            )
        return value


class EventSent(BaseModel):
    """The event is on the bus."""

    source: str
    detail_type: str
    id: str | None = None


@router.post(
    "/events",
    status_code=202,
    summary="Send an event",
    description=(
        "Puts an event on the engine's bus. Every run waiting for an event of its source and "
        "detail-type that carries its correlation value gets it; one no wait takes yet is kept "
        "for the waits that look back."
    ),
    tags=["events"],
    security=MANAGEMENT,
    responses=responses(202, "The event is on the bus"),
)
def send_event(request: Annotated[EventRequest, Body()]) -> EventSent:
    orchestrator = current().runtime.orchestrator
    time = None
    if request.id is not None:
        now = orchestrator.clock.now()
        time = orchestrator.event_waits.first_sent(request.source, request.id, now)
    event = EmitEvent(
        request.detail_type, request.detail, source=request.source, event_id=request.id, time=time
    )
    runtime = current().runtime
    (runtime.event_waits_bus or orchestrator.ports.bus).emit(event)
    return EventSent(source=request.source, detail_type=request.detail_type, id=request.id)
