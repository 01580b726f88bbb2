"""The event bus on AWS: EventBridge PutEvents."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from pydantic_core import to_json

from stepwell.engine.commands import EmitEvent

if TYPE_CHECKING:
    from mypy_boto3_events import EventBridgeClient
    from mypy_boto3_events.type_defs import PutEventsRequestEntryTypeDef


class EventPublishError(RuntimeError):
    """EventBridge accepted the call but refused the event (size, throttling, permissions)."""


class EventBridgeBus:
    """Implements the Bus port (and the notify step's publisher) with EventBridge PutEvents."""

    def __init__(self, client: EventBridgeClient, bus_name: str, source: str = "stepwell") -> None:
        self._client = client
        self._bus_name = bus_name
        self._source = source

    def emit(self, command: EmitEvent) -> None:
        """Publish one of Stepwell's own events (run.started, run.completed, ...), or one sent
        through ``POST /events`` (its source, and its sender's id and first time if it has one)."""
        entry: PutEventsRequestEntryTypeDef = {"Resources": command.resources}
        if command.time is not None:
            entry["Time"] = command.time
        self.publish(command.detail_type, command.detail, command.source, entry)

    def publish(
        self,
        detail_type: str,
        detail: dict[str, Any],
        source: str | None = None,
        more: PutEventsRequestEntryTypeDef | None = None,
    ) -> str:
        """Put one event on the bus (with ``more`` of PutEvents' entry fields) and return its
        event id.

        PutEvents answers 200 even when it refused an entry, so the entry's error is checked
        and raised: a lost event would otherwise go unnoticed.
        """
        response = self._client.put_events(
            Entries=[
                {
                    **(more or {}),
                    "EventBusName": self._bus_name,
                    "Source": source or self._source,
                    "DetailType": detail_type,
                    # pydantic's encoder: datetimes and other non-JSON values become ISO strings.
                    "Detail": to_json(detail).decode(),
                }
            ]
        )
        entry = response["Entries"][0] if response.get("Entries") else {}
        if response.get("FailedEntryCount") or "EventId" not in entry:
            raise EventPublishError(
                f"EventBridge refused event {detail_type!r} on bus {self._bus_name!r}: "
                f"{entry.get('ErrorCode', 'unknown')} {entry.get('ErrorMessage', '')}".strip()
            )
        return entry["EventId"]
