"""The small HTML pages of approval and form links: what is asked, the buttons, and plain
answers.

Pages load nothing from elsewhere (no scripts, no fonts) and say so in their
Content-Security-Policy; ``Referrer-Policy: no-referrer`` keeps the token in the URL from
leaking to any link followed from the page.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from html import escape
from typing import Any

from aws_lambda_powertools.event_handler import Response

HEADERS = {
    "Cache-Control": "no-store",
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    ),
    "Referrer-Policy": "no-referrer",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
}

_STYLE = """
body{font:16px/1.5 system-ui,sans-serif;max-width:36rem;margin:3rem auto;padding:0 1rem;color:#222}
h1{font-size:1.4rem}dl{display:grid;grid-template-columns:max-content 1fr;gap:.2rem 1rem}
dt{color:#666}dd{margin:0;word-break:break-all}.ask{font-size:1.1rem;padding:.8rem;
background:#f4f4f4;border-radius:.4rem}textarea{width:100%;min-height:5rem;box-sizing:border-box}
button{font-size:1rem;padding:.5rem 1.2rem;margin:.8rem .6rem 0 0;border-radius:.3rem;
border:1px solid #888;cursor:pointer}.primary{background:#1a6b3c;color:#fff;border-color:#1a6b3c}
.reject.primary{background:#a12a2a;border-color:#a12a2a}.note{color:#666;font-size:.9rem}
input,select{font-size:1rem;padding:.3rem;min-width:12rem}.problems{color:#a12a2a}
"""


@dataclass(frozen=True)
class AskPage:
    """What the approval page shows."""

    workflow: str
    run_id: str
    step: str
    message: str
    decision: str
    """The decision of the link that was opened (its button comes first)."""
    approver: str | None
    quorum: int
    approvals: int
    expires_at: datetime
    approve_action: str
    """Relative URL of the approve token (from the page's own URL)."""
    reject_action: str
    decisions: list[dict[str, Any]]
    hand_on: str = ""
    """The form that hands the link on (:func:`hand_on_form`), when it can be."""


def html(status: int, title: str, content: str) -> Response[str]:
    """A whole page."""
    document = (
        '<!doctype html><html lang="en"><head><meta charset="utf-8">'
        '<meta name="viewport" content="width=device-width,initial-scale=1">'
        '<meta name="robots" content="noindex,nofollow">'
        f"<title>{escape(title)}</title><style>{_STYLE}</style></head>"
        f"<body><h1>{escape(title)}</h1>{content}</body></html>"
    )
    return Response(
        status_code=status,
        content_type="text/html; charset=utf-8",
        body=document,
        headers=dict(HEADERS),
    )


def message(status: int, title: str, text: str) -> Response[str]:
    """A page that only says something (errors, confirmations)."""
    return html(status, title, f"<p>{escape(text)}</p>")


def ask(page: AskPage) -> Response[str]:
    """The approval page: never decides by itself (mail scanners follow links), the buttons
    POST. Both buttons share the comment box; each posts to its own signed URL."""
    buttons = [
        ("approve", "Approve", page.approve_action),
        ("reject", "Reject", page.reject_action),
    ]
    buttons.sort(key=lambda b: b[0] != page.decision)
    rendered = "".join(
        f'<button type="submit" class="{name}{" primary" if name == page.decision else ""}" '
        f'formaction="{escape(action)}" name="decision" value="{name}">{label}</button>'
        for name, label, action in buttons
    )
    rows = [
        ("Workflow", page.workflow),
        ("Run", page.run_id),
        ("Step", page.step),
        ("As", page.approver or "anyone with this link"),
        ("Approvals", f"{page.approvals} of {page.quorum} needed; any rejection decides"),
        ("Link expires", page.expires_at.strftime("%Y-%m-%d %H:%M UTC")),
    ]
    details = "".join(f"<dt>{escape(k)}</dt><dd>{escape(v)}</dd>" for k, v in rows)
    earlier = "".join(
        f"<li>{escape(str(d.get('approver')))}: {escape(str(d.get('decision')))}"
        + (f" ({escape(str(d['comment']))})" if d.get("comment") else "")
        + "</li>"
        for d in page.decisions
    )
    content = (
        f'<p class="ask">{escape(page.message)}</p><dl>{details}</dl>'
        + (f"<p>Decided so far:</p><ul>{earlier}</ul>" if earlier else "")
        + '<form method="post"><label for="comment">Comment (optional)</label>'
        '<textarea id="comment" name="comment" maxlength="2000"></textarea>'
        f"{rendered}</form>"
        '<p class="note">Nothing is decided until you press a button.</p>' + page.hand_on
    )
    return html(200, f"Approval requested: {page.workflow} / {page.step}", content)


def hand_on_form(token: str, person: str | None, delegate: str | None) -> str:
    """A form that hands the link on to someone else (``POST /delegations/{token}``), for a
    link of a named person that was not handed on already; else nothing."""
    if person is None or delegate is not None:
        return ""
    return (
        f'<details><summary>Hand this on to someone else</summary><form method="post" '
        f'action="../delegations/{escape(token)}"><label for="to">Their e-mail</label> '
        '<input id="to" name="to" type="email" required maxlength="254"> '
        '<label for="until">until (optional, ISO 8601 with a zone)</label> '
        '<input id="until" name="until" maxlength="64" placeholder="2030-01-31T17:00:00Z">'
        '<button type="submit">Hand on</button></form>'
        f'<p class="note">They get links of their own; their decision counts as '
        f"{escape(person)}'s.</p></details>"
    )
