"""The notifications' channels on AWS: e-mail through SES (v2 ``SendEmail``), Slack through an
incoming webhook whose URL a secret holds, and the SQS queue a failed delivery waits in."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from datetime import timedelta
from typing import Any

from stepwell.runtime.clock import Clock
from stepwell.runtime.notifications import Delivery, Notifier, StackChannels

WEBHOOK_TIMEOUT_S = 10.0
"""A webhook that has not answered by then failed (the delivery is tried again later)."""


class WebhookFailed(RuntimeError):
    """A webhook refused the message or could not be reached (the message names no URL)."""


class AwsChannels:
    """Implements the notifications' Channels port."""

    def __init__(self, ses: Any, secret: Callable[[str], str]) -> None:
        self._ses = ses
        self._secret = secret

    def email(self, sender: str, to: str, subject: str, text: str) -> None:
        self._ses.send_email(
            FromEmailAddress=sender,
            Destination={"ToAddresses": [to]},
            Content={
                "Simple": {
                    "Subject": {"Data": subject, "Charset": "UTF-8"},
                    "Body": {"Text": {"Data": text, "Charset": "UTF-8"}},
                }
            },
        )

    def slack(self, webhook_secret: str, message: dict[str, Any]) -> None:
        url = self._secret(webhook_secret).strip()
        if not url.startswith(("https://", "http://")):
            raise WebhookFailed(f"secret {webhook_secret!r} does not hold a webhook URL")
        request = urllib.request.Request(
            url,
            data=json.dumps(message).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        try:
            with urllib.request.urlopen(request, timeout=WEBHOOK_TIMEOUT_S) as answer:
                answer.read()
        except urllib.error.HTTPError as exc:
            body = exc.read(200).decode(errors="replace").strip()
            raise WebhookFailed(f"the webhook answered HTTP {exc.code}: {body}") from None
        except (urllib.error.URLError, OSError) as exc:
            # URLError's reason never holds the URL; nothing else of it is shown.
            reason = getattr(exc, "reason", exc)
            raise WebhookFailed(f"the webhook could not be reached: {reason}") from None


class QueueLater:
    """Implements Later: the delivery as a message of the notifications queue, delayed."""

    def __init__(self, sqs: Any, queue_url: str) -> None:
        self._sqs = sqs
        self._queue_url = queue_url

    def later(self, delivery: Delivery, delay: timedelta) -> None:
        self._sqs.send_message(
            QueueUrl=self._queue_url,
            MessageBody=delivery.to_json(),
            DelaySeconds=min(900, int(delay.total_seconds())),
        )


def notifier(env: Mapping[str, str], clock: Clock, secret: Callable[[str], str]) -> Notifier:
    """The notifications function's notifier, from its environment."""
    import boto3

    return Notifier(
        StackChannels.from_env(env),
        AwsChannels(boto3.client("sesv2"), secret),
        QueueLater(boto3.client("sqs"), env["STEPWELL_NOTIFY_QUEUE_URL"]),
        clock,
    )
