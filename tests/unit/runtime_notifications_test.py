"""Notifications: who gets what (an e-mail per person with an address, one Slack message per
request, as the stack and the workflow's ``notify`` say), what they say, and a failed delivery
tried again after 1, 2, 4, 8 and 15 minutes, then given up, each try noted on the step's
timeline through the engine (a note on the step alone: the wait goes on untouched)."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest

from stepwell.definition.models import Workflow
from stepwell.engine.commands import EmitEvent
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime import messages
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.notifications import Delivery, Notifier, StackChannels

LINKS = [
    {
        "approver": "ann@example.com",
        "approve_url": "https://x/approvals/a1",
        "reject_url": "https://x/approvals/r1",
    },
    {
        "approver": "bob@example.com",
        "approve_url": "https://x/approvals/a2",
        "reject_url": "https://x/approvals/r2",
    },
    {
        "approver": "ops",
        "approve_url": "https://x/approvals/a3",
        "reject_url": "https://x/approvals/r3",
    },
]


def request(run_id: str = "r1", **detail: Any) -> dict[str, Any]:
    return {
        "id": "ev-1",
        "detail-type": "approval.requested",
        "source": "stepwell",
        "detail": {
            "run_id": run_id,
            "workflow": "pay",
            "step": "approve",
            "attempt": 1,
            "message": "Pay 90?",
            "quorum": 1,
            "expires_at": "2026-01-08T00:00:00+00:00",
            "reason": "requested",
            "links": LINKS,
            **detail,
        },
    }


class Channels:
    def __init__(self, failing: int = 0) -> None:
        self.failing = failing
        self.emails: list[tuple[str, str, str, str]] = []
        self.posts: list[tuple[str, dict[str, Any]]] = []

    def _maybe_fail(self) -> None:
        if self.failing:
            self.failing -= 1
            raise RuntimeError("the webhook answered HTTP 500: oops")

    def email(self, sender: str, to: str, subject: str, text: str) -> None:
        self._maybe_fail()
        self.emails.append((sender, to, subject, text))

    def slack(self, webhook_secret: str, message: dict[str, Any]) -> None:
        self._maybe_fail()
        self.posts.append((webhook_secret, message))


class Later:
    def __init__(self) -> None:
        self.queued: list[tuple[Delivery, timedelta]] = []

    def later(self, delivery: Delivery, delay: timedelta) -> None:
        self.queued.append((delivery, delay))


class Recorder:
    def __init__(self) -> None:
        self.events: list[tuple[str, Any]] = []
        self.emitted: list[EmitEvent] = []

    def handle(self, run_id: str, event: Any) -> None:
        self.events.append((run_id, event))

    def emit(self, command: EmitEvent) -> None:
        self.emitted.append(command)


STACK = StackChannels(email_from="approvals@example.com", slack_secret="team/slack")


def notifier(channels: Channels, stack: StackChannels = STACK) -> tuple[Notifier, Later]:
    later = Later()
    return Notifier(stack, channels, later, FakeClock()), later


def test_each_person_with_an_address_gets_an_email_and_the_request_one_slack_message() -> None:
    found = notifier(Channels())[0].deliveries(request())
    assert [(d.channel, d.to) for d in found] == [
        ("email", "ann@example.com"),
        ("email", "bob@example.com"),
        ("slack", "team/slack"),
    ]
    assert {d.request_id for d in found} == {"ev-1"}


@pytest.mark.parametrize(
    ("notify", "stack", "expected"),
    [
        ({"email": False, "slack": True}, STACK, [("slack", "team/slack")]),
        ({"email": True, "slack": False}, STACK, [("email", "ann@example.com")]),
        (
            {"slack": {"webhook": "pay/slack"}},
            STACK,
            [("email", "ann@example.com"), ("slack", "pay/slack")],
        ),
        (None, StackChannels(), []),
        ({"slack": {"webhook": "pay/slack"}}, StackChannels(), [("slack", "pay/slack")]),
    ],
)
def test_the_workflows_notify_turns_a_channel_off_or_names_its_own(
    notify: dict[str, Any] | None, stack: StackChannels, expected: list[tuple[str, str]]
) -> None:
    event = request(links=LINKS[:1], **({"notify": notify} if notify else {}))
    found = notifier(Channels(), stack)[0].deliveries(event)
    assert [(d.channel, d.to) for d in found] == expected


def test_events_other_than_requests_send_nothing() -> None:
    event = {**request(), "detail-type": "run.completed"}
    assert notifier(Channels())[0].deliveries(event) == []


def test_a_failed_delivery_is_tried_again_after_1_2_4_8_15_minutes_then_given_up() -> None:
    channels = Channels(failing=100)
    notify, later = notifier(channels)
    recorder = Recorder()
    (delivery,) = [d for d in notify.deliveries(request()) if d.channel == "slack"]
    for _ in range(6):
        assert notify.send(delivery, recorder, recorder) is False
        if later.queued:
            delivery = later.queued[-1][0]
    assert [delay for _, delay in later.queued] == [timedelta(minutes=m) for m in (1, 2, 4, 8, 15)]
    noted = [event for _, event in recorder.events]
    assert [n.tries for n in noted] == [1, 2, 3, 4, 5, 6]
    assert all(n.retry_at for n in noted[:5]) and noted[5].retry_at is None
    assert noted[0].error == "the webhook answered HTTP 500: oops"
    assert [e.detail["sent"] for e in recorder.emitted] == [False] * 6
    # A retry after a failure sends only what failed.
    channels.failing = 0
    assert notify.send(later.queued[0][0], recorder, recorder) is True
    assert len(channels.posts) == 1 and channels.emails == []


def test_the_email_says_what_is_asked_with_the_persons_own_links() -> None:
    subject, text = messages.email("approval.requested", request()["detail"], LINKS[1], None)
    assert subject == "Approval requested: Pay 90?"
    assert "Approve: https://x/approvals/a2\nReject:  https://x/approvals/r2\n" in text
    assert "a1" not in text
    assert "Workflow pay, run r1, step approve." in text
    reminder = {**request()["detail"], "reason": "reminder", "message": "Pay\n90?"}
    assert messages.email("approval.requested", reminder, LINKS[0], None)[0] == (
        "Reminder: approval requested: Pay 90?"
    )


def test_a_workflows_own_email_template_renders_over_the_notification() -> None:
    own = {"subject": "${person}: ${message}", "text": "Go to ${approve_url} (${reason})"}
    subject, text = messages.email("approval.requested", request()["detail"], LINKS[0], own)
    assert (subject, text) == (
        "ann@example.com: Pay 90?",
        "Go to https://x/approvals/a1 (requested)",
    )
    with pytest.raises(ValueError, match=r"notify\.email template"):
        messages.email("approval.requested", request()["detail"], LINKS[0], {"text": "${$x(}"})


def test_the_slack_message_has_a_button_per_link_and_escapes_the_message() -> None:
    detail = {**request()["detail"], "message": "Pay <b>90</b> & more?"}
    message = messages.slack("approval.requested", detail)
    assert message["blocks"][0]["text"]["text"] == (
        "*Approval requested*\nPay &lt;b&gt;90&lt;/b&gt; &amp; more?"
    )
    actions = [b for b in message["blocks"] if b["type"] == "actions"]
    urls = [[e["url"] for e in a["elements"]] for a in actions]
    assert urls == [[link["approve_url"], link["reject_url"]] for link in LINKS]
    ids = [e["action_id"] for a in actions for e in a["elements"]]
    assert len(ids) == len(set(ids))  # Slack refuses a message with two alike
    form = messages.slack(
        "input.requested",
        {**detail, "links": [{"assignee": "ann@example.com", "form_url": "https://x/inputs/f"}]},
    )
    assert form["text"].startswith("Form to fill in: ")
    assert form["blocks"][-1]["elements"][0]["url"] == "https://x/inputs/f"


def test_a_delivery_is_a_note_on_the_steps_timeline_and_changes_nothing_else() -> None:
    workflow = Workflow.model_validate(
        {
            "name": "pay",
            "steps": {"approve": {"type": "approval", "approvers": ["ann@example.com"]}},
        }
    )
    world = InProcessWorld({"pay": workflow}, {})
    run_id = world.start("pay", {})
    world.run_until_idle(virtual_time=False)
    before = world.store.load_steps(run_id, {"approve"}).steps["approve"]
    notify, _ = notifier(Channels(failing=1))
    (email, slack) = notify.deliveries(request(run_id, links=LINKS[:1]))
    notify.send(email, world.orchestrator, world.orchestrator.ports.bus)
    notify.send(slack, world.orchestrator, world.orchestrator.ports.bus)
    found = world.store.timeline(run_id, limit=100).items
    noted = [(e.type, e.step, e.data.get("channel"), e.data.get("to")) for e in found[-2:]]
    assert noted == [
        ("notification_failed", "approve", "email", "ann@example.com"),
        ("notification_sent", "approve", "slack", "team/slack"),
    ]
    assert "tried again at" in found[-2].message
    after = world.store.load_steps(run_id, {"approve"}).steps["approve"]
    assert after.status == before.status == "waiting"
    assert after.rev == before.rev  # a note, not a change of the wait
