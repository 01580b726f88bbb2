"""Signed, expiring tokens for approval URLs, input steps' form URLs and callbacks. Pure: no
AWS, no clock reads.

A token is ``base64url(payload) "." base64url(signature)`` without padding, where the payload is
a compact JSON array (version, key id, purpose, run id, step key, attempt, decision, approver,
expiry in epoch seconds, nonce, and for a delegated link the delegate) and the signature is
HMAC-SHA256 over a fixed prefix and the payload bytes. The key id is a short hash of the signing
key, so :func:`verify` goes straight to the right key of a list.

Keys rotate as a list, newest first: :func:`sign` uses ``keys[0]``, :func:`verify` accepts any
key in the list. To rotate, prepend a new key; drop the old one once every token it signed has
expired.

What this module does *not* do: make a token single-use. A token verifies as often as it is
presented until it expires. The API makes a decision final with a conditional write on the
approval (or callback) record, and answers 409 to a second use.

Failures: :class:`TokenTampered` (bad format, unknown key, wrong signature: answer 403) and
:class:`TokenExpired` (authentic but past its expiry: answer 410). Tampering is checked first,
so only an authentic token is ever reported as expired.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import re
import secrets
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, ClassVar, Literal

Purpose = Literal["approval", "callback", "input"]
Decision = Literal["approve", "reject"]

VERSION = 1
MIN_KEY_BYTES = 16
"""Shorter signing keys are refused: a token is only as strong as its key."""
MAX_TOKEN_CHARS = 4096
"""Longer input is rejected before any decoding (tokens arrive in URLs and request bodies)."""

_SIGNED_PREFIX = b"stepwell-token/1\x00"
_KID_PREFIX = b"stepwell-key-id\x00"
_PURPOSE_CODE: dict[str, str] = {"approval": "A", "callback": "C", "input": "I"}
_DECISION_CODE: dict[str, str] = {"approve": "y", "reject": "n"}
_B64 = re.compile(r"[A-Za-z0-9_-]+")


class TokenError(Exception):
    """A token was refused; ``status`` is the HTTP status to answer with."""

    status: ClassVar[int] = 400


class TokenTampered(TokenError):
    """Not a token this deployment signed: malformed, unknown key or wrong signature (403)."""

    status: ClassVar[int] = 403


class TokenExpired(TokenError):
    """An authentic token past its expiry (410). ``claims`` says what it was for."""

    status: ClassVar[int] = 410

    def __init__(self, claims: TokenClaims) -> None:
        super().__init__(f"token expired at {claims.expires_at} (epoch seconds)")
        self.claims = claims


_NONCE_PREFIX = b"stepwell-callback-nonce\x00"


def new_nonce() -> str:
    """12 random URL-safe characters (72 bits): makes every token distinct."""
    return secrets.token_urlsafe(9)


@dataclass(frozen=True)
class TokenClaims:
    """What a token grants: one decision (or one callback) for one attempt of one step."""

    purpose: Purpose
    run_id: str
    key: str
    """The step record's key."""
    attempt: int
    """The attempt the token was issued for; a token for an older attempt is stale."""
    expires_at: int
    """Expiry, epoch seconds (UTC); the token is refused from that second on."""
    decision: Decision | None = None
    """approve or reject for approval tokens; None for form links and callbacks."""
    approver: str | None = None
    """Who the URL was sent to, when the approval names approvers (a form, its assignees)."""
    nonce: str = field(default_factory=new_nonce)
    delegate: str | None = None
    """Who the approver handed the link on to (a delegated link): that person decides, in the
    approver's name."""

    def __post_init__(self) -> None:
        if self.purpose not in _PURPOSE_CODE:
            raise ValueError(
                f"purpose must be 'approval', 'callback' or 'input', not {self.purpose!r}"
            )
        if self.purpose == "approval" and self.decision not in _DECISION_CODE:
            raise ValueError("an approval token needs decision 'approve' or 'reject'")
        if self.purpose != "approval" and self.decision is not None:
            raise ValueError(f"a {self.purpose} token carries no decision")
        if type(self.attempt) is not int or self.attempt < 1:
            raise ValueError("attempt must be a positive integer")
        if type(self.expires_at) is not int:
            raise ValueError("expires_at must be whole epoch seconds")
        if self.delegate is not None and (self.approver is None or self.purpose == "callback"):
            raise ValueError("only an approver's or an assignee's link is handed on")

    @classmethod
    def for_approval(
        cls,
        run_id: str,
        key: str,
        attempt: int,
        *,
        decision: Decision,
        expires_at: datetime,
        approver: str | None = None,
        delegate: str | None = None,
    ) -> TokenClaims:
        """Claims of an approve or reject URL for one approver (or anyone, when None); given a
        ``delegate``, the URL the approver handed on to them."""
        expires = _epoch(expires_at)
        return cls("approval", run_id, key, attempt, expires, decision, approver, delegate=delegate)

    @classmethod
    def for_input(
        cls,
        run_id: str,
        key: str,
        attempt: int,
        *,
        expires_at: datetime,
        assignee: str | None = None,
        delegate: str | None = None,
    ) -> TokenClaims:
        """Claims of a form link for one assignee (or anyone, when None): it answers once;
        given a ``delegate``, the link the assignee handed on to them."""
        expires = _epoch(expires_at)
        return cls("input", run_id, key, attempt, expires, None, assignee, delegate=delegate)

    @classmethod
    def for_callback(cls, run_id: str, key: str, attempt: int, expires_at: datetime) -> TokenClaims:
        """Claims of a callback step's token. Its nonce derives from what it grants, so the
        token is the same wherever it is made: the link ``callback.requested`` carries and the
        one a code-first ``ctx.create_callback`` hands out (on every replay) are one token, used
        once. (The signature, not the nonce, makes it unforgeable.)"""
        expires = _epoch(expires_at)
        seed = f"{run_id}\x00{key}\x00{attempt}\x00{expires}".encode()
        nonce = _b64encode(hashlib.sha256(_NONCE_PREFIX + seed).digest()[:9])
        return cls("callback", run_id, key, attempt, expires, nonce=nonce)

    def _pack(self, kid: str) -> bytes:
        decision = _DECISION_CODE[self.decision] if self.decision else None
        fields = [
            VERSION,
            kid,
            _PURPOSE_CODE[self.purpose],
            self.run_id,
            self.key,
            self.attempt,
            decision,
            self.approver,
            self.expires_at,
            self.nonce,
        ]
        if self.delegate is not None:
            fields.append(self.delegate)
        return json.dumps(fields, separators=(",", ":")).encode()


def key_id(key: bytes) -> str:
    """A short, stable id of a key (6 characters), written into every token it signs."""
    return _b64encode(hashlib.sha256(_KID_PREFIX + key).digest()[:4])


def sign(claims: TokenClaims, keys: Sequence[bytes]) -> str:
    """A token for ``claims``, signed with ``keys[0]`` (the newest key)."""
    if not keys:
        raise ValueError("no signing key: the signing secret holds no keys")
    key = keys[0]
    if len(key) < MIN_KEY_BYTES:
        raise ValueError(f"the signing key is {len(key)} bytes; use at least {MIN_KEY_BYTES}")
    payload = claims._pack(key_id(key))
    return f"{_b64encode(payload)}.{_b64encode(_mac(key, payload))}"


def verify(token: str, keys: Sequence[bytes], now: datetime | float) -> TokenClaims:
    """The claims of ``token`` if one of ``keys`` signed it and it has not expired.

    ``now`` is a datetime (aware) or epoch seconds. Raises :class:`TokenTampered` or
    :class:`TokenExpired`. Does not check single use (see the module docstring).
    """
    if not isinstance(token, str) or len(token) > MAX_TOKEN_CHARS or token.count(".") != 1:
        raise TokenTampered("malformed token")
    payload_part, signature_part = token.split(".")
    payload = _b64decode(payload_part)
    signature = _b64decode(signature_part)
    try:
        fields = json.loads(payload)
    except (ValueError, RecursionError):
        raise TokenTampered("malformed token") from None
    if not isinstance(fields, list) or len(fields) not in (10, 11) or fields[0] != VERSION:
        raise TokenTampered("malformed token")
    kid = fields[1]
    candidates = [k for k in keys if key_id(k) == kid]  # the key id is no secret
    if not candidates:
        raise TokenTampered("token signed with an unknown key")
    # Every candidate is checked, even after a match: the time taken says nothing about which.
    valid = False
    for key in candidates:
        valid |= hmac.compare_digest(_mac(key, payload), signature)
    if not valid:
        raise TokenTampered("bad signature")
    claims = _unpack(fields)
    if _epoch(now) >= claims.expires_at:
        raise TokenExpired(claims)
    return claims


def _unpack(fields: list[Any]) -> TokenClaims:
    # Only authentic payloads get here, so a failure means a bug or a key used elsewhere.
    _, _, purpose, run_id, key, attempt, decision, approver, expires_at, nonce = fields[:10]
    delegate = fields[10] if len(fields) == 11 else None
    purposes = {v: k for k, v in _PURPOSE_CODE.items()}
    decisions = {v: k for k, v in _DECISION_CODE.items()}
    try:
        if not all(isinstance(v, str) for v in (run_id, key, nonce)):
            raise ValueError("run_id, key and nonce must be strings")
        if approver is not None and not isinstance(approver, str):
            raise ValueError("approver must be a string")
        if len(fields) == 11 and not isinstance(delegate, str):
            raise ValueError("delegate must be a string")
        return TokenClaims(
            purpose=purposes[purpose],  # type: ignore[arg-type]
            run_id=run_id,
            key=key,
            attempt=attempt,
            expires_at=expires_at,
            decision=decisions[decision] if decision is not None else None,  # type: ignore[arg-type]
            approver=approver,
            nonce=nonce,
            delegate=delegate,
        )
    except (KeyError, TypeError, ValueError):
        raise TokenTampered("malformed token") from None


def _mac(key: bytes, payload: bytes) -> bytes:
    return hmac.new(key, _SIGNED_PREFIX + payload, hashlib.sha256).digest()


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    # Strict: only the URL-safe alphabet, and only the one canonical spelling of the bytes.
    # Python's decoder ignores stray characters and the unused low bits of the last character,
    # which would let several spellings of one token verify.
    if not _B64.fullmatch(text):
        raise TokenTampered("malformed token")
    try:
        data = base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
    except (binascii.Error, ValueError):
        raise TokenTampered("malformed token") from None
    if _b64encode(data) != text:
        raise TokenTampered("malformed token")
    return data


def _epoch(when: datetime | float) -> int:
    if isinstance(when, datetime):
        if when.tzinfo is None:
            raise ValueError("use a timezone-aware datetime (UTC)")
        return int(when.timestamp())
    return int(when)
