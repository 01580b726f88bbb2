"""SQS queues on the stack's clock, and the event source mappings that feed them to functions.

A message sent with ``DelaySeconds`` becomes visible that many seconds later *on the stack's
clock* (so virtual time skips the wait). A mapping takes up to ``BatchSize`` visible messages,
makes them invisible for the queue's ``VisibilityTimeout``, and invokes its function with the
SQS event Lambda sends (``Records`` with messageId, receiptHandle, body, attributes ...). When
the function succeeds the messages are deleted; with ``ReportBatchItemFailures`` the ones it
names in ``batchItemFailures`` stay, and come back when their visibility timeout ends, as on
AWS. A message received ``maxReceiveCount`` times goes to the dead-letter queue.

SendMessage and SendMessageBatch are answered by the stack's queues (:func:`operations`).
"""

from __future__ import annotations

import hashlib
import itertools
import json
import threading
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from stepwell.local.clock import StackClock
from stepwell.local.errors import TemplateError
from stepwell.local.intercept import Operation, ServiceError
from stepwell.local.lambdas import InvokeResult, LambdaEmulator
from stepwell.local.template import FunctionSpec, QueueSource, QueueSpec

MAX_DELAY_S = 900
DEFAULT_VISIBILITY_S = 30
DEFAULT_MAX_MESSAGE_BYTES = 1024 * 1024
SENDER_ID = "AROAEXAMPLELOCALSTACK:stepwell-local"


class QueueError(Exception):
    """A request SQS would refuse: ``code`` is SQS's error code."""

    def __init__(self, code: str, message: str, status: int = 400) -> None:
        super().__init__(message)
        self.code = code
        self.status = status


@dataclass
class Message:
    """One message and its SQS bookkeeping."""

    id: str
    body: str
    sent: datetime
    visible_at: datetime
    attributes: dict[str, Any] = field(default_factory=dict)
    """Message attributes as SendMessage takes them (``{"name": {"DataType", "StringValue"}}``)."""
    receive_count: int = 0
    first_received: datetime | None = None
    receipt: str | None = None

    @property
    def md5(self) -> str:
        return hashlib.md5(self.body.encode(), usedforsecurity=False).hexdigest()


class LocalQueue:
    """One queue of the template, on the stack's clock."""

    def __init__(self, spec: QueueSpec, clock: StackClock, region: str) -> None:
        self.spec = spec
        self.name = spec.name
        self.url = spec.url
        self.arn = spec.arn
        self.region = region
        self._clock = clock
        attributes = spec.attributes
        self.delay_s = int(attributes.get("DelaySeconds", 0))
        self.visibility_s = int(attributes.get("VisibilityTimeout", DEFAULT_VISIBILITY_S))
        self.max_bytes = int(attributes.get("MaximumMessageSize", DEFAULT_MAX_MESSAGE_BYTES))
        redrive = json.loads(attributes.get("RedrivePolicy", "{}") or "{}")
        self.dead_letter_arn: str | None = redrive.get("deadLetterTargetArn")
        self.max_receives = int(redrive.get("maxReceiveCount", 0) or 0)
        self.dead_letter: LocalQueue | None = None
        self._messages: dict[str, Message] = {}
        self._lock = threading.Lock()
        self._receipts = itertools.count(1)
        self.on_send: Callable[[], None] = lambda: None

    def send(
        self, body: str, delay_s: int | None = None, attributes: dict[str, Any] | None = None
    ) -> Message:
        """SendMessage: the message becomes visible after ``delay_s`` (the queue's by default)."""
        if not isinstance(body, str) or not body:
            raise QueueError(
                "MissingParameter", "The request must contain the parameter MessageBody."
            )
        if len(body.encode()) > self.max_bytes:
            raise QueueError(
                "InvalidParameterValue",
                f"One or more parameters are invalid. Reason: Message must be shorter than "
                f"{self.max_bytes} bytes.",
            )
        delay = self.delay_s if delay_s is None else delay_s
        if not 0 <= delay <= MAX_DELAY_S:
            raise QueueError(
                "InvalidParameterValue",
                f"Value {delay} for parameter DelaySeconds is invalid. Reason: must be between 0 "
                f"and {MAX_DELAY_S}, if provided.",
            )
        now = self._clock.now()
        message = Message(
            str(uuid.uuid4()), body, now, now + timedelta(seconds=delay), dict(attributes or {})
        )
        with self._lock:
            self._messages[message.id] = message
        self.on_send()
        return message

    def receive(self, limit: int) -> list[Message]:
        """Up to ``limit`` visible messages, now invisible for the visibility timeout; messages
        past ``maxReceiveCount`` move to the dead-letter queue instead."""
        now = self._clock.now()
        taken: list[Message] = []
        dead: list[Message] = []
        with self._lock:
            for message in sorted(self._messages.values(), key=lambda m: (m.visible_at, m.sent)):
                if len(taken) >= limit:
                    break
                if message.visible_at > now:
                    continue
                if self.max_receives and message.receive_count >= self.max_receives:
                    del self._messages[message.id]
                    dead.append(message)
                    continue
                message.receive_count += 1
                message.first_received = message.first_received or now
                message.receipt = f"{message.id}#{next(self._receipts)}"
                message.visible_at = now + timedelta(seconds=self.visibility_s)
                taken.append(message)
        for message in dead:
            if self.dead_letter is not None:
                self.dead_letter.send(message.body, 0, message.attributes)
        return taken

    def delete(self, receipt: str) -> None:
        """DeleteMessage by receipt handle (a stale receipt deletes nothing)."""
        with self._lock:
            message_id = receipt.split("#", 1)[0]
            found = self._messages.get(message_id)
            if found is not None and found.receipt == receipt:
                del self._messages[message_id]

    def next_visible(self) -> datetime | None:
        """When the next message now in flight or delayed becomes visible."""
        with self._lock:
            return min((m.visible_at for m in self._messages.values()), default=None)

    def visible(self) -> int:
        """Messages visible now."""
        now = self._clock.now()
        with self._lock:
            return sum(1 for m in self._messages.values() if m.visible_at <= now)

    def __len__(self) -> int:
        with self._lock:
            return len(self._messages)

    def snapshot(self) -> list[dict[str, Any]]:
        """Every message, to keep across a restart (see :mod:`stepwell.local.state`). A message
        received and not yet deleted is kept as SQS keeps it: it comes back once its visibility
        timeout ends."""
        with self._lock:
            return [
                {
                    "id": m.id,
                    "body": m.body,
                    "sent": m.sent.isoformat(),
                    "visible_at": m.visible_at.isoformat(),
                    "attributes": m.attributes,
                    "receive_count": m.receive_count,
                    "first_received": m.first_received.isoformat() if m.first_received else None,
                }
                for m in self._messages.values()
            ]

    def restore(self, messages: list[dict[str, Any]]) -> None:
        """Put back the messages of :meth:`snapshot`."""
        with self._lock:
            for m in messages:
                first = m.get("first_received")
                self._messages[m["id"]] = Message(
                    m["id"],
                    m["body"],
                    datetime.fromisoformat(m["sent"]),
                    datetime.fromisoformat(m["visible_at"]),
                    dict(m.get("attributes") or {}),
                    int(m.get("receive_count", 0)),
                    datetime.fromisoformat(first) if first else None,
                )
        self.on_send()

    def record(self, message: Message) -> dict[str, Any]:
        """The message as an SQS event record (what Lambda's event source mapping sends)."""
        assert message.first_received is not None and message.receipt is not None
        record: dict[str, Any] = {
            "messageId": message.id,
            "receiptHandle": _receipt_handle(message.receipt),
            "body": message.body,
            "attributes": {
                "ApproximateReceiveCount": str(message.receive_count),
                "SentTimestamp": str(_ms(message.sent)),
                "SenderId": SENDER_ID,
                "ApproximateFirstReceiveTimestamp": str(_ms(message.first_received)),
            },
            "messageAttributes": {
                name: {
                    "stringValue": value.get("StringValue"),
                    "binaryValue": value.get("BinaryValue"),
                    "stringListValues": [],
                    "binaryListValues": [],
                    "dataType": value.get("DataType", "String"),
                }
                for name, value in message.attributes.items()
            },
            "md5OfBody": message.md5,
            "eventSource": "aws:sqs",
            "eventSourceARN": self.arn,
            "awsRegion": self.region,
        }
        return record


def _ms(when: datetime) -> int:
    return int(when.timestamp() * 1000)


def _receipt_handle(receipt: str) -> str:
    # Opaque like SQS's; the part before '#' is kept readable to find the message again.
    return receipt


Invoke = Callable[[dict[str, Any], Callable[[InvokeResult], None]], None]


class QueueMapping:
    """An SQS event source mapping: batches from one queue to one function."""

    def __init__(
        self, queue: LocalQueue, function: str, source: QueueSource, invoke: Invoke
    ) -> None:
        self.queue = queue
        self.function = function
        self.source = source
        self._invoke = invoke
        self._lock = threading.Lock()
        self.in_flight = 0
        self.batches = 0
        self.failed_items = 0

    def poll(self) -> bool:
        """Start batches while there are visible messages and capacity; True if any started."""
        started = False
        while self.source.enabled:
            with self._lock:
                if self.in_flight >= self.source.maximum_concurrency:
                    return started
                self.in_flight += 1
            batch = self.queue.receive(self.source.batch_size)
            if not batch:
                with self._lock:
                    self.in_flight -= 1
                return started
            self.batches += 1
            event = {"Records": [self.queue.record(m) for m in batch]}
            self._invoke(event, lambda result, batch=batch: self._finished(batch, result))  # type: ignore[misc]
            started = True
        return started

    def _finished(self, batch: list[Message], result: InvokeResult) -> None:
        try:
            failed = self._failed_ids(batch, result)
            self.failed_items += len(failed)
            for message in batch:
                if message.id not in failed and message.receipt is not None:
                    self.queue.delete(message.receipt)
            # Failed messages stay invisible until their visibility timeout ends, then return.
        finally:
            with self._lock:
                self.in_flight -= 1
            self.queue.on_send()

    def _failed_ids(self, batch: list[Message], result: InvokeResult) -> set[str]:
        every = {m.id for m in batch}
        if result.function_error:
            return every
        if not self.source.report_batch_item_failures:
            return set()
        response = result.decoded()
        if not isinstance(response, dict) or response.get("batchItemFailures") in (None, []):
            return set()
        failures = response["batchItemFailures"]
        if not isinstance(failures, list):
            return every
        named: set[str] = set()
        for item in failures:
            identifier = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not identifier or identifier not in every:
                return every  # an invalid response fails the whole batch, as on AWS
            named.add(identifier)
        return named


# -- the template's queues and mappings, and SQS's API over them ----------------------------


def build(
    specs: list[QueueSpec],
    functions: list[FunctionSpec],
    emulator: LambdaEmulator,
    clock: StackClock,
    region: str,
    on_send: Callable[[], None],
) -> tuple[dict[str, LocalQueue], list[QueueMapping]]:
    """The template's queues (by ARN, each with its dead-letter queue) and the event source
    mappings that feed them to its functions."""
    queues: dict[str, LocalQueue] = {}
    for spec in specs:
        queue = LocalQueue(spec, clock, region)
        queue.on_send = on_send
        queues[spec.arn] = queue
    for queue in queues.values():
        if queue.dead_letter_arn:
            queue.dead_letter = queues.get(queue.dead_letter_arn)
    mappings: list[QueueMapping] = []
    for function in functions:
        for event in function.events:
            if isinstance(event, QueueSource):
                source = queues.get(event.queue_arn)
                if source is None:
                    raise TemplateError(
                        f"function {function.logical_id} event {event.name}: no queue "
                        f"{event.queue_arn} in the template"
                    )
                mappings.append(
                    QueueMapping(source, function.name, event, _batch_invoker(emulator, function))
                )
    return queues, mappings


def _batch_invoker(emulator: LambdaEmulator, function: FunctionSpec) -> Invoke:
    def invoke(event: dict[str, Any], done: Callable[[InvokeResult], None]) -> None:
        emulator.submit(function, json.dumps(event).encode(), done, source="sqs")

    return invoke


def operations(queues: Mapping[str, LocalQueue]) -> dict[str, Operation]:
    """SQS's API, answered by the stack's queues."""

    def answer(send: Callable[[Mapping[str, LocalQueue], dict[str, Any]], dict[str, Any]]) -> Any:
        def sent(params: dict[str, Any]) -> dict[str, Any] | None:
            try:
                find(queues, str(params.get("QueueUrl", "")))
            except ServiceError:
                return None  # a queue made at run time (not the template's) is moto's
            return send(queues, params)

        return sent

    return {
        "sqs.SendMessage": answer(send_message),
        "sqs.SendMessageBatch": answer(send_message_batch),
    }


def find(queues: Mapping[str, LocalQueue], url: str) -> LocalQueue:
    """The queue a ``QueueUrl`` names (or its name), as SQS finds it."""
    name = url.rstrip("/").rsplit("/", 1)[-1]
    for queue in queues.values():
        if queue.url == url or queue.name == name:
            return queue
    raise ServiceError(
        "AWS.SimpleQueueService.NonExistentQueue",
        "The specified queue does not exist.",
        400,
        query_code="QueueDoesNotExist",
    )


def send_message(queues: Mapping[str, LocalQueue], params: dict[str, Any]) -> dict[str, Any]:
    queue = find(queues, str(params.get("QueueUrl", "")))
    delay = params.get("DelaySeconds")
    try:
        message = queue.send(
            str(params.get("MessageBody", "")),
            None if delay is None else int(delay),
            params.get("MessageAttributes"),
        )
    except QueueError as exc:
        raise ServiceError(exc.code, str(exc), exc.status, query_code=exc.code) from None
    return {"MessageId": message.id, "MD5OfMessageBody": message.md5}


def send_message_batch(queues: Mapping[str, LocalQueue], params: dict[str, Any]) -> dict[str, Any]:
    queue = find(queues, str(params.get("QueueUrl", "")))
    successful: list[dict[str, Any]] = []
    failed: list[dict[str, Any]] = []
    for entry in params.get("Entries") or []:
        delay = entry.get("DelaySeconds")
        try:
            message = queue.send(
                str(entry.get("MessageBody", "")),
                None if delay is None else int(delay),
                entry.get("MessageAttributes"),
            )
        except QueueError as exc:
            failed.append(
                {
                    "Id": entry.get("Id"),
                    "SenderFault": True,
                    "Code": exc.code,
                    "Message": str(exc),
                }
            )
            continue
        successful.append(
            {"Id": entry.get("Id"), "MessageId": message.id, "MD5OfMessageBody": message.md5}
        )
    return {"Successful": successful, "Failed": failed}
