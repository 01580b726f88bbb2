"""Notifications on the local stack: the engine's notifications function hears each approval's
request on the bus and sends every person their links by e-mail (moto's SES, read back from its
backend) and to a Slack webhook (a listener of the test's own), noting each delivery on the
step's timeline and in the outbox. A failing channel (the webhook answering 500, SES refusing an
unverified sender) is noted, tried again after its delay, and never holds the run up."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import boto3
import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import (
    Webhook,
    approval_requested,
    finished,
    remind_for_two_days,
)

from stepwell.local.client import Client
from stepwell.local.notifications import sent_emails
from stepwell.local.stack import LocalStack
from stepwell.local.template import REGION

SENDER = "approvals@example.com"
WEBHOOK_SECRET = "stepwell-local/slack-approvals"
PEOPLE = ["ann@example.com", "bob@example.com", "cy@example.com"]
ESCALATED = """\
name: escalated-payment
steps:
  approve:
    type: approval
    message: Pay ${input.amount} EUR?
    approvers: [ann@example.com, bob@example.com, cy@example.com]
    quorum: 2
    remind: 4h
    escalate:
      - {after: 1d, to: [cfo@example.com]}
      - {after: 2d, action: reject}
"""
SIMPLE = """\
name: pay-once
steps:
  approve:
    type: approval
    message: Pay ${input.amount} EUR?
    approvers: [ann@example.com]
"""
OWN_HOOK_SECRET = "stepwell-local/sign-off-hook"
SIGN_OFF = f'''\
from stepwell import workflow


@workflow(
    name="sign-off-code",
    notify={{
        "email": {{"subject": "Sign-off of ${{workflow}}: ${{message}}"}},
        "slack": {{"webhook": "{OWN_HOOK_SECRET}"}},
    }},
)
def sign_off(ctx, input):
    decision = ctx.approval(
        "approve", message=f"Ship {{input['ref']}}?", approvers=["ann@example.com"]
    )
    return {{"approved": decision.approved}}
'''


@pytest.fixture(scope="module")
def webhook() -> Iterator[Webhook]:
    hook = Webhook()
    yield hook
    hook.server.shutdown()


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory, webhook: Webhook) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    (folder / "escalated-payment.yaml").write_text(ESCALATED, encoding="utf-8")
    (folder / "pay-once.yaml").write_text(SIMPLE, encoding="utf-8")
    (folder / "sign_off.py").write_text(SIGN_OFF, encoding="utf-8")
    with local_stack(
        folder,
        parameters={"NotifyEmailFrom": SENDER, "NotifySlackWebhookSecret": WEBHOOK_SECRET},
        environment={"STEPWELL_SLACK_WEBHOOK_URL": webhook.url},
    ) as started:
        yield started


def _emails(run_id: str) -> list[dict[str, Any]]:
    return [m for m in sent_emails(REGION) if run_id in m["body"]]


def _noted(api: Client, run_id: str, kind: str) -> list[dict[str, Any]]:
    return [e for e in api.timeline(run_id) if e["type"] == kind]


def test_reminders_and_an_escalation_reach_people_by_email_and_slack(
    stack: LocalStack, webhook: Webhook
) -> None:
    api = Client(stack.url)
    run_id = api.start_run("escalated-payment", {"amount": 120}).body["run_id"]
    approval_requested(stack, run_id)
    # Two days, 4 h at a time: reminders at 4 ... 44 h, the CFO's links at 24 h, rejected at
    # 48 h. Time moves only when the test says, so each reminder comes at its own time.
    with stack.hold():
        remind_for_two_days(stack, run_id)
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "failed"  # rejected by the escalation
    assert stack.wait_idle(30)

    emails = _emails(run_id)
    to = [m["to"][0] for m in emails]
    assert {p: to.count(p) for p in PEOPLE} == dict.fromkeys(PEOPLE, 12)  # asked, 11 reminders
    assert to.count("cfo@example.com") == 1 + 5  # escalated at 24 h, reminded at 28 ... 44 h
    assert {m["from"] for m in emails} == {SENDER}
    # The first request's, by subject: on a loaded machine a reminder's may be sent before it.
    first = next(
        m
        for m in emails
        if m["to"] == ["ann@example.com"] and m["subject"] == "Approval requested: Pay 120 EUR?"
    )
    approve, reject = (line.split(": ", 1)[1].strip() for line in first["body"].splitlines()[2:4])
    assert approve.startswith(f"{stack.url}/approvals/") and reject != approve
    cfo = [m["subject"] for m in emails if m["to"] == ["cfo@example.com"]]
    assert cfo.count("Escalated to you: approval requested: Pay 120 EUR?") == 1, cfo

    posts = [p for p in webhook.posts if run_id in json.dumps(p)]
    assert len(posts) == 1 + 11 + 1
    (requested,) = [p for p in posts if p["text"] == "Approval requested: Pay 120 EUR?"]
    buttons = [
        element
        for block in requested["blocks"]
        if block["type"] == "actions"
        for element in block["elements"]
    ]
    assert [b["text"]["text"] for b in buttons] == ["Approve", "Reject"] * 3
    assert all(b["url"].startswith(f"{stack.url}/approvals/") for b in buttons)
    assert buttons[0]["url"] == approve  # Ann's own link, as her e-mail gives it

    sent = _noted(api, run_id, "notification_sent")
    assert len(sent) == len(emails) + len(posts)
    assert {(e["data"]["channel"], e["data"]["to"]) for e in sent} >= {
        ("email", "cfo@example.com"),
        ("slack", WEBHOOK_SECRET),
    }
    assert webhook.url not in json.dumps(api.timeline(run_id))

    outbox = [n for n in api.get("/_local/outbox").body["notifications"] if n["run_id"] == run_id]
    assert len(outbox) == 1 + 11 + 1
    escalation = next(n for n in outbox if n["reason"] == "escalation")
    assert sorted((d["channel"], d["to"], d["sent"]) for d in escalation["deliveries"]) == [
        ("email", "cfo@example.com", True),
        ("slack", WEBHOOK_SECRET, True),
    ]


def test_a_failing_channel_is_noted_tried_again_and_never_holds_the_run(
    stack: LocalStack, webhook: Webhook
) -> None:
    api = Client(stack.url)
    ses = boto3.client("sesv2", region_name=REGION)
    ses.delete_email_identity(EmailIdentity=SENDER)  # SES refuses the sender now
    webhook.failing = 2
    # Time moves only when the test says (the stack would skip to each retry by itself).
    with stack.hold():
        try:
            run_id = api.start_run("pay-once", {"amount": 5}).body["run_id"]
            (link,) = approval_requested(stack, run_id)["links"]
            assert stack.run_until(lambda: len(_noted(api, run_id, "notification_failed")) == 2)
            failed = {e["data"]["channel"]: e for e in _noted(api, run_id, "notification_failed")}
            assert "HTTP 500" in failed["slack"]["message"]
            assert "not verified" in failed["email"]["message"]
            assert failed["email"]["data"]["retry_at"]
            # The run goes on: the approval is decided and the run ends while both fail.
            assert api.decide(link["approve_url"], "approve").status == 200
            assert finished(stack, api, run_id)["run"]["status"] == "succeeded"
        finally:
            ses.create_email_identity(EmailIdentity=SENDER)
        # A minute later both are tried again: the e-mail goes, the webhook fails once more;
        # two minutes after that it takes the message.
        stack.advance(timedelta(minutes=1, seconds=5))
        assert stack.run_until(
            lambda: (
                len(_noted(api, run_id, "notification_failed")) == 3
                and len(_noted(api, run_id, "notification_sent")) == 1
            )
        )
        stack.advance(timedelta(minutes=2, seconds=5))
        assert stack.run_until(lambda: len(_noted(api, run_id, "notification_sent")) == 2)
    sent = {e["data"]["channel"]: e["data"] for e in _noted(api, run_id, "notification_sent")}
    assert sent["email"]["tries"] == 2 and sent["slack"]["tries"] == 3
    assert len(_emails(run_id)) == 1
    assert len([p for p in webhook.posts if run_id in json.dumps(p)]) == 1
    outbox = [n for n in api.get("/_local/outbox").body["notifications"] if n["run_id"] == run_id]
    assert sorted((d["channel"], d["sent"], d["tries"]) for d in outbox[0]["deliveries"]) == [
        ("email", True, 2),
        ("slack", True, 3),
    ]


def test_a_code_first_workflows_own_channels_reach_its_people(
    stack: LocalStack, webhook: Webhook
) -> None:
    own = Webhook()
    try:
        secrets = boto3.client("secretsmanager", region_name=REGION)
        secrets.create_secret(Name=OWN_HOOK_SECRET, SecretString=own.url)
        api = Client(stack.url)
        with stack.hold():  # the link stays good while the test reads what was sent
            run_id = api.start_run("sign-off-code", {"ref": "r-7"}).body["run_id"]
            (link,) = approval_requested(stack, run_id)["links"]
            assert stack.run_until(lambda: len(_noted(api, run_id, "notification_sent")) == 2)
            (email,) = _emails(run_id)
            assert (email["to"], email["subject"]) == (
                ["ann@example.com"],
                "Sign-off of sign-off-code: Ship r-7?",
            )
            (post,) = [p for p in own.posts if run_id in json.dumps(p)]
            assert post["text"] == "Approval requested: Ship r-7?"
            assert not [p for p in webhook.posts if run_id in json.dumps(p)]  # not the stack's
            sent = {
                (e["data"]["channel"], e["data"]["to"])
                for e in _noted(api, run_id, "notification_sent")
            }
            assert sent == {("email", "ann@example.com"), ("slack", OWN_HOOK_SECRET)}
            assert api.decide(link["approve_url"], "approve").status == 200
        detail = finished(stack, api, run_id)
        assert (detail["run"]["status"], detail["run"]["output"]) == (
            "succeeded",
            {"approved": True},
        )
    finally:
        own.server.shutdown()
