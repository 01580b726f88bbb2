"""A poison timer message ends in the dead-letter queue.

In a module of its own, so its stack is fresh: virtual time jumps only when the stack is idle,
and work another test left in flight on a shared stack must not hold this test's clock.
"""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from stepwell.local.stack import LocalStack


def test_a_poison_timer_ends_in_the_dead_letter_queue(stack: LocalStack) -> None:
    sqs = boto3.client("sqs")
    url = sqs.get_queue_url(QueueName="stepwell-local-StepwellTimerQueue")["QueueUrl"]
    sent = sqs.send_message(QueueUrl=url, MessageBody="not a timer", DelaySeconds=5)
    assert sent["MessageId"]
    with pytest.raises(ClientError) as refused:
        sqs.send_message(QueueUrl=url, MessageBody="x", DelaySeconds=901)
    assert refused.value.response["Error"]["Code"] == "InvalidParameterValue"
    dead = stack.queues[
        "arn:aws:sqs:us-east-1:123456789012:stepwell-local-StepwellTimerDeadLetterQueue"
    ]
    # The scheduler reports the message as a batch item failure each time; after
    # maxReceiveCount (5) receives it is moved (virtual time skips the visibility timeouts).
    assert stack.run_until(lambda: len(dead) == 1, 30)
    failures = [m for m in stack.mappings if m.queue.name == "stepwell-local-StepwellTimerQueue"]
    assert failures[0].failed_items >= 5
