"""The notifications' channels in the local stack: the sender the stack names is verified in
moto's SES (which, as SES does, refuses a sender no identity covers), and a developer's Slack
webhook (``STEPWELL_SLACK_WEBHOOK_URL``) becomes the secret the stack names, so the
notifications function runs as on AWS. What SES sent is read back from moto's backend."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

import boto3

from stepwell.local.template import ACCOUNT, FunctionSpec

WEBHOOK_VARIABLE = "STEPWELL_SLACK_WEBHOOK_URL"
"""The developer's own webhook URL for the local stack (a secret on AWS)."""


def prepare(functions: Iterable[FunctionSpec], environ: Mapping[str, str], region: str) -> None:
    """Verify each notifications function's sender; make its webhook's secret from
    ``STEPWELL_SLACK_WEBHOOK_URL`` when the developer gives one."""
    for function in functions:
        sender = function.environment.get("STEPWELL_NOTIFY_EMAIL_FROM", "").strip()
        if sender:
            boto3.client("sesv2", region_name=region).create_email_identity(EmailIdentity=sender)
        secret = function.environment.get("STEPWELL_NOTIFY_SLACK_SECRET", "").strip()
        url = environ.get(WEBHOOK_VARIABLE, "").strip()
        if secret and url:
            client = boto3.client("secretsmanager", region_name=region)
            try:
                client.create_secret(Name=secret, SecretString=url)
            except client.exceptions.ResourceExistsException:
                client.put_secret_value(SecretId=secret, SecretString=url)


def sent_emails(region: str) -> list[dict[str, Any]]:
    """What SES sent so far (moto's backend), oldest first: from, to, subject, body."""
    from moto.ses.models import ses_backends

    backend = ses_backends[ACCOUNT][region]
    return [
        {
            "from": message.source,
            "to": list(message.destinations.get("ToAddresses", [])),
            "subject": message.subject,
            "body": message.body,
        }
        for message in list(backend.sent_messages)
        if hasattr(message, "subject")
    ]
