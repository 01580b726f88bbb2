"""What a notification says: the e-mail each person gets (Stepwell's, or a workflow's own
template) and the Slack message with a button per signed link. Pure: the request's event in,
text and Slack's block JSON out."""

from __future__ import annotations

from typing import Any

from stepwell import expressions

SLACK_MAX_PEOPLE = 20
"""People shown with their buttons in one Slack message (Slack takes 50 blocks a message)."""

_TITLES = {
    ("approval", "requested"): "Approval requested",
    ("approval", "reminder"): "Reminder: approval requested",
    ("approval", "escalation"): "Escalated to you: approval requested",
    ("approval", "delegation"): "Handed on to you: approval requested",
    ("input", "requested"): "Form to fill in",
    ("input", "reminder"): "Reminder: form to fill in",
    ("input", "escalation"): "Escalated to you: form to fill in",
    ("input", "delegation"): "Handed on to you: form to fill in",
}
_BUTTONS = (("approve_url", "Approve", "primary"), ("reject_url", "Reject", "danger"))


def kind_of(detail_type: str) -> str:
    """``approval`` or ``input``, from the request's detail-type."""
    return "input" if detail_type.startswith("input.") else "approval"


def title(detail_type: str, detail: dict[str, Any]) -> str:
    """What the notification is: a request, a reminder, an escalation, a link handed on."""
    reason = str(detail.get("reason") or "requested")
    return _TITLES.get((kind_of(detail_type), reason), "Approval requested")


def person_of(link: dict[str, Any]) -> str | None:
    """Who holds a link: the delegate it was handed on to, else its approver or assignee (None:
    a link for anyone)."""
    found = link.get("delegate") or link.get("approver") or link.get("assignee")
    return str(found) if found else None


def email_data(detail_type: str, detail: dict[str, Any], link: dict[str, Any]) -> dict[str, Any]:
    """What an e-mail template's ``${...}`` see: the request and this person's links."""
    return {
        **{k: detail.get(k) for k in ("message", "workflow", "run_id", "step", "expires_at")},
        "reason": detail.get("reason") or "requested",
        "kind": kind_of(detail_type),
        "title": title(detail_type, detail),
        "person": person_of(link),
        "delegated_by": detail.get("delegated_by"),
        **{k: link.get(k) for k in ("approve_url", "reject_url", "form_url")},
    }


def email(
    detail_type: str, detail: dict[str, Any], link: dict[str, Any], own: dict[str, Any] | None
) -> tuple[str, str]:
    """The subject and plain-text body of one person's e-mail: the workflow's own template
    (``notify.email``'s ``subject``/``text``, ``${...}`` over :func:`email_data`) where it has
    one, else Stepwell's (ValueError: a template that does not render)."""
    data = email_data(detail_type, detail, link)
    subject = f"{data['title']}: {data['message']}"
    text = _default_text(data)
    own = own or {}
    try:
        if own.get("subject"):
            subject = expressions.as_text(expressions.render(own["subject"], data))
        if own.get("text"):
            text = expressions.as_text(expressions.render(own["text"], data))
    except Exception as exc:
        raise ValueError(f"the workflow's notify.email template: {exc}") from None
    # A header holds one line: a message's own line breaks must not make more.
    return " ".join(subject.split())[:998], text


def _default_text(data: dict[str, Any]) -> str:
    lines = [str(data["message"] or data["title"]), ""]
    if data.get("form_url"):
        lines.append(f"Fill in the form: {data['form_url']}")
    else:
        lines.append(f"Approve: {data['approve_url']}")
        lines.append(f"Reject:  {data['reject_url']}")
    lines.append("")
    if data.get("delegated_by"):
        lines.append(f"{data['delegated_by']} handed this on to you: you decide in their name.")
    lines.append(f"Workflow {data['workflow']}, run {data['run_id']}, step {data['step']}.")
    expiry = f"The links expire {data['expires_at']}; each" if data.get("expires_at") else "Each"
    lines.append(f"{expiry} link works once.")
    return "\n".join(lines) + "\n"


def slack(detail_type: str, detail: dict[str, Any]) -> dict[str, Any]:
    """An incoming webhook's message: the request, then each person with a button per link
    (Slack opens the URL: the signed link's own page confirms, so a preview decides nothing)."""
    head = title(detail_type, detail)
    message = str(detail.get("message") or "")
    blocks: list[dict[str, Any]] = [
        {"type": "section", "text": _mrkdwn(f"*{_escape(head)}*\n{_escape(message)}")},
        {
            "type": "context",
            "elements": [
                _mrkdwn(
                    _escape(
                        f"{detail.get('workflow')} · run {detail.get('run_id')} · step "
                        f"{detail.get('step')}"
                        + (
                            f" · links expire {detail['expires_at']}"
                            if detail.get("expires_at")
                            else ""
                        )
                    )
                )
            ],
        },
    ]
    links = list(detail.get("links") or [])
    for index, link in enumerate(links[:SLACK_MAX_PEOPLE]):
        person = person_of(link)
        named = _escape(person) if person else "Anyone with the link"
        if link.get("delegate"):
            named += f" (for {_escape(str(link.get('approver') or link.get('assignee')))})"
        blocks.append({"type": "section", "text": _mrkdwn(named)})
        blocks.append({"type": "actions", "elements": _buttons(link, index)})
    if len(links) > SLACK_MAX_PEOPLE:
        more = len(links) - SLACK_MAX_PEOPLE
        blocks.append({"type": "context", "elements": [_mrkdwn(f"and {more} more, by e-mail")]})
    return {"text": f"{head}: {message}", "blocks": blocks}


def _buttons(link: dict[str, Any], index: int) -> list[dict[str, Any]]:
    if link.get("form_url"):
        return [_button("Fill in the form", str(link["form_url"]), f"form-{index}", "primary")]
    return [
        _button(text, str(link[key]), f"{key.removesuffix('_url')}-{index}", style)
        for key, text, style in _BUTTONS
        if link.get(key)
    ]


def _button(text: str, url: str, action_id: str, style: str) -> dict[str, Any]:
    return {
        "type": "button",
        "text": {"type": "plain_text", "text": text},
        "url": url,
        "action_id": action_id,
        "style": style,
    }


def _mrkdwn(text: str) -> dict[str, str]:
    return {"type": "mrkdwn", "text": text}


def _escape(text: str) -> str:
    """Slack's three control characters (a message's ``<url|text>`` is not the person's to
    write)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
