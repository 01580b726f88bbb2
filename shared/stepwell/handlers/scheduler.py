"""Scheduler: the rate(1 minute) sweep of due timers, timer messages from SQS, Lambda's
reports of step invocations that failed outside their step, and the bus's events for event
waits."""

from __future__ import annotations

from typing import Any

from aws_lambda_powertools import Logger, Tracer
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.sqs_event import SQSRecord

from stepwell.runtime import events_in, results, timers
from stepwell.runtime.aws.metrics import metrics
from stepwell.runtime.envelope import TimerMessage
from stepwell.runtime.wiring import current

logger = Logger()
tracer = Tracer()
processor = BatchProcessor(event_type=EventType.SQS)


def fire(record: SQSRecord) -> None:
    """One timer message (SQS delay or EventBridge Scheduler); a failure retries that message."""
    message = TimerMessage.from_json(record.body)
    logger.append_keys(run_id=message.run_id, step_id=message.key)
    timers.fire(current().orchestrator, message)


@logger.inject_lambda_context(correlation_id_path="Records[0].messageId")
@tracer.capture_lambda_handler
@metrics.log_metrics
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """SQS batches fire their timers; a lost invocation fails its attempt; else the sweep."""
    if "Records" in event:
        return dict(process_partial_response(event, fire, processor, context))
    runtime = current()
    if results.is_lost_invocation(event):
        result = results.record_lost_invocation(runtime.orchestrator, event)
        logger.warning(
            "step invocation failed outside its step",
            extra={"run_id": result.run_id, "step_id": result.key, "error": result.error_type},
        )
        return {"failed": result.key}
    if events_in.is_bus_event(event):
        arrival = events_in.receive(runtime.orchestrator, event)
        logger.info(
            "event received",
            extra={"waits": len(arrival.waiters), "duplicate": arrival.duplicate},
        )
        return {"waits": len(arrival.waiters), "duplicate": arrival.duplicate}
    report = timers.sweep(runtime.orchestrator, runtime.store)
    logger.info(
        "sweep", extra={"due": report.due, "fired": report.fired, "overdue": report.overdue}
    )
    return {"due": report.due, "fired": report.fired}
