"""Approval links: signed approve/reject URLs for each approver, and an input step's form URL
for each assignee, announced on the bus."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any

from stepwell import signing
from stepwell.engine.commands import EmitEvent, RequestApproval
from stepwell.runtime.clock import Clock
from stepwell.runtime.ports import Bus

LINK_LIFETIME_WITHOUT_TIMEOUT = timedelta(days=30)
"""Links of an approval with no timeout still expire: a link must not live forever."""


class ApprovalLinks:
    """Implements the Approvals port: one approve and one reject URL per approver.

    When the step names approvers, each gets links bound to them (the signature covers the
    approver), so a forwarded link still decides as the person it was sent to, and the quorum
    counts people, not clicks. Without approvers, one pair of links is made for anyone.
    """

    def __init__(
        self,
        bus: Bus,
        keys: Callable[[], Sequence[bytes]],
        api_url: str | Callable[[], str],
        clock: Clock,
    ) -> None:
        self._bus = bus
        self.keys = keys
        """The signing keys, newest first (the API verifies with the same)."""
        self._base_url = api_url if callable(api_url) else lambda: api_url
        """The API's base URL, asked for each link (the API function's comes with each request)."""
        self._clock = clock

    @property
    def _api_url(self) -> str:
        return self._base_url().rstrip("/")

    def links(self, command: RequestApproval) -> list[dict[str, Any]]:
        """The URLs for each approver (or for anyone); for a form, each assignee's one URL."""
        expires = command.expires_at or self._clock.now() + LINK_LIFETIME_WITHOUT_TIMEOUT
        keys = self.keys()
        out = []
        # A delegation's links go to the delegate and decide in the approver's name.
        by = command.delegated_by
        for person in command.approvers or (None,):
            owner, delegate = (by, person) if by is not None else (person, None)
            named = {"delegate": delegate} if delegate is not None else {}
            if command.form is not None:
                claims = signing.TokenClaims.for_input(
                    command.run_id,
                    command.key,
                    command.attempt,
                    expires_at=expires,
                    assignee=owner,
                    delegate=delegate,
                )
                url = f"{self._api_url}/inputs/{signing.sign(claims, keys)}"
                out.append({"assignee": owner, **named, "form_url": url})
                continue
            urls = {}
            for decision in ("approve", "reject"):
                claims = signing.TokenClaims.for_approval(
                    command.run_id,
                    command.key,
                    command.attempt,
                    decision=decision,
                    expires_at=expires,
                    approver=owner,
                    delegate=delegate,
                )
                urls[f"{decision}_url"] = f"{self._api_url}/approvals/{signing.sign(claims, keys)}"
            out.append({"approver": owner, **named, **urls})
        return out

    def request(self, command: RequestApproval) -> None:
        """Put ``approval.requested`` (a form: ``input.requested``) with the links on the bus,
        for a mailer or a chat bot."""
        detail = {
            "run_id": command.run_id,
            "workflow": command.workflow,
            "step": command.key,
            "attempt": command.attempt,
            "message": command.message,
            "quorum": command.quorum,
            "expires_at": command.expires_at.isoformat() if command.expires_at else None,
            "links": self.links(command),
            "reason": command.reason,
        }
        if command.delegated_by is not None:
            detail["delegated_by"] = command.delegated_by
        if command.notify is not None:
            detail["notify"] = command.notify
        if command.form is not None:
            detail = {**detail, "form": command.form}
            del detail["quorum"]
        kind = "approval" if command.form is None else "input"
        self._bus.emit(EmitEvent(f"{kind}.requested", detail))

    def callback_link(self, detail: dict[str, Any]) -> dict[str, str]:
        """The signed token and URL an external system calls back with, for one attempt."""
        expires_raw = detail.get("expires_at")
        expires = (
            datetime.fromisoformat(expires_raw)
            if isinstance(expires_raw, str)
            else self._clock.now() + LINK_LIFETIME_WITHOUT_TIMEOUT
        )
        claims = signing.TokenClaims.for_callback(
            str(detail["run_id"]), str(detail["step"]), int(detail["attempt"]), expires
        )
        token = signing.sign(claims, self.keys())
        return {"token": token, "url": f"{self._api_url}/callbacks/{token}"}


class LinkedBus:
    """The Bus port with signed callback links added to ``callback.requested`` events."""

    def __init__(self, bus: Bus, links: ApprovalLinks) -> None:
        self._bus = bus
        self._links = links

    def emit(self, command: EmitEvent) -> None:
        """Publish, first adding the token and URL to a callback request."""
        if command.detail_type == "callback.requested":
            detail = {**command.detail, **self._links.callback_link(command.detail)}
            command = EmitEvent(command.detail_type, detail)
        self._bus.emit(command)
