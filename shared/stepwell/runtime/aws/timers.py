"""Timers on AWS: SQS ``DelaySeconds`` for short waits, EventBridge Scheduler for long ones.

Both deliver the same :class:`~stepwell.runtime.envelope.TimerMessage` body to the timer queue,
so one handler serves both. Neither is the source of truth: every timer is also a due time on
the store's sparse due index, which the ``rate(1 minute)`` sweep reads. A timer this adapter
loses (a failed call, a crash between commit and send, a schedule deleted by hand) therefore
fires late, never not at all; a timer delivered twice or early is ignored by the engine, which
compares ``due_at`` with the step's current due time.
"""

from __future__ import annotations

import hashlib
import math
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING

from botocore.exceptions import ClientError

from stepwell.engine.commands import ScheduleTimer
from stepwell.runtime.clock import Clock
from stepwell.runtime.envelope import TimerMessage

if TYPE_CHECKING:
    from mypy_boto3_scheduler import EventBridgeSchedulerClient
    from mypy_boto3_sqs import SQSClient

SQS_MAX_DELAY_S = 900
"""SQS holds a message back for at most 15 minutes; longer waits go to the Scheduler."""


def schedule_name(command: ScheduleTimer) -> str:
    """A deterministic schedule name for one timer (<= 64 chars, ``[0-9A-Za-z-_.]``).

    Equal timers (same run, key and due time) get the same name, so sending one twice creates
    one schedule: the second CreateSchedule answers ConflictException.
    """
    due = _utc(command.due_at).isoformat()
    digest = hashlib.sha256(f"{command.run_id}\x1f{command.key or ''}\x1f{due}".encode())
    return f"stepwell-{digest.hexdigest()[:48]}"


def at_expression(due_at: datetime) -> str:
    """``at(yyyy-mm-ddThh:mm:ss)`` in UTC, rounded *up* to the second so it never fires early."""
    due = _utc(due_at)
    if due.microsecond:
        due = due.replace(microsecond=0) + timedelta(seconds=1)
    return f"at({due.strftime('%Y-%m-%dT%H:%M:%S')})"


class AwsTimers:
    """Implements the Timers port with SQS and EventBridge Scheduler.

    ``scheduler_target_arn`` is the timer queue's ARN (the Scheduler sends there, the same queue
    SQS delays use), ``scheduler_role_arn`` a role the Scheduler assumes to send to it, and
    ``group`` the schedule group the one-time schedules are created in.
    """

    def __init__(
        self,
        sqs_client: SQSClient,
        scheduler_client: EventBridgeSchedulerClient,
        *,
        queue_url: str,
        scheduler_target_arn: str,
        scheduler_role_arn: str,
        clock: Clock,
        group: str = "default",
    ) -> None:
        self._sqs = sqs_client
        self._scheduler = scheduler_client
        self._queue_url = queue_url
        self._target_arn = scheduler_target_arn
        self._role_arn = scheduler_role_arn
        self._clock = clock
        self._group = group

    def schedule(self, command: ScheduleTimer) -> None:
        """Send the timer by SQS when due within 15 minutes, else create a one-time schedule."""
        body = TimerMessage.from_command(command).to_json()
        seconds = (_utc(command.due_at) - self._clock.now()).total_seconds()
        if seconds <= SQS_MAX_DELAY_S:
            # Rounded up: SQS has one-second precision and an early timer is wasted work.
            delay = min(max(math.ceil(seconds), 0), SQS_MAX_DELAY_S)
            self._sqs.send_message(QueueUrl=self._queue_url, MessageBody=body, DelaySeconds=delay)
            return
        try:
            self._scheduler.create_schedule(
                Name=schedule_name(command),
                GroupName=self._group,
                ScheduleExpression=at_expression(command.due_at),
                ScheduleExpressionTimezone="UTC",
                FlexibleTimeWindow={"Mode": "OFF"},
                ActionAfterCompletion="DELETE",
                Target={"Arn": self._target_arn, "RoleArn": self._role_arn, "Input": body},
            )
        except ClientError as exc:
            # The same timer sent again (a retried command, a sweep) is already scheduled.
            if exc.response.get("Error", {}).get("Code") != "ConflictException":
                raise


def _utc(when: datetime) -> datetime:
    # The engine's times are aware UTC; a naive time is taken to be UTC rather than local.
    return when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
