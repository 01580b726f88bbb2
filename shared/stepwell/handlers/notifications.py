"""Notifications: the engine's bus brings each approval's and input's request (an EventBridge
rule), the notifications queue brings back a delivery that failed; each is sent by e-mail and
Slack and noted on the step's timeline (runtime/notifications.py)."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stepwell.runtime.aws.metrics import metrics
from stepwell.runtime.notifications import Delivery, Notifier
from stepwell.runtime.wiring import Runtime, current

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)


def _notifier(runtime: Runtime) -> Notifier:
    if runtime.notifier is None:
        raise RuntimeError("the notifications function has no STEPWELL_NOTIFY_QUEUE_URL")
    return runtime.notifier


def again(record: SQSRecord) -> None:
    """A delivery that failed before, tried again (a crash here makes SQS bring it back)."""
    runtime = current()
    delivery = Delivery.from_json(record.body)
    logger.append_keys(run_id=delivery.detail.get("run_id"), step_id=delivery.detail.get("step"))
    _notifier(runtime).send(delivery, runtime.orchestrator, runtime.orchestrator.ports.bus)


@logger.inject_lambda_context(correlation_id_path="id")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """An SQS batch of deliveries to try again, or a request event from the bus."""
    if "Records" in event:
        return dict(process_partial_response(event, again, processor, context))
    runtime = current()
    notifier = _notifier(runtime)
    detail = event.get("detail") or {}
    logger.append_keys(run_id=detail.get("run_id"), step_id=detail.get("step"))
    failed = notifier.requested(event, runtime.orchestrator, runtime.orchestrator.ports.bus)
    logger.info("notified", extra={"failed": failed})
    return {"failed": failed}
