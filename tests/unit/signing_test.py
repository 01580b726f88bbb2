"""Signed approval and callback tokens: every tampering is refused, keys rotate."""

from __future__ import annotations

import base64
import json
import string
from datetime import UTC, datetime, timedelta

import pytest

from stepwell import signing
from stepwell.signing import TokenClaims, TokenExpired, TokenTampered, sign, verify

NOW = datetime(2026, 1, 1, 12, tzinfo=UTC)
OLD_KEY = b"old-key-0123456789abcdef"
NEW_KEY = b"new-key-fedcba9876543210"
ALPHABET = string.ascii_letters + string.digits + "-_"


def approval(decision="approve", **fields) -> TokenClaims:
    return TokenClaims.for_approval(
        fields.pop("run_id", "run-1"),
        fields.pop("key", "approve_refund"),
        fields.pop("attempt", 1),
        decision=decision,
        expires_at=fields.pop("expires_at", NOW + timedelta(hours=1)),
        approver=fields.pop("approver", "ana@example.com"),
    )


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def reforge(token: str, change) -> str:
    """Re-encode a token with its payload fields changed and the original signature."""
    payload, signature = token.split(".")
    fields = json.loads(unb64(payload))
    change(fields)
    return b64(json.dumps(fields, separators=(",", ":")).encode()) + "." + signature


class TestRoundTrip:
    def test_approval_claims_come_back(self):
        claims = approval()
        assert verify(sign(claims, [NEW_KEY]), [NEW_KEY], NOW) == claims

    def test_callback_claims_come_back(self):
        claims = TokenClaims.for_callback("run-1", "wait_for_psp", 2, NOW + timedelta(days=1))
        back = verify(sign(claims, [NEW_KEY]), [NEW_KEY], NOW.timestamp())
        assert back == claims
        assert back.decision is None

    def test_tokens_are_url_safe_and_short(self):
        token = sign(approval(), [NEW_KEY])
        assert set(token) <= set(ALPHABET + ".")
        assert len(token) < 220

    def test_every_token_is_distinct(self):
        assert sign(approval(), [NEW_KEY]) != sign(approval(), [NEW_KEY])

    def test_non_ascii_fields_survive(self):
        claims = approval(key="zustimmung_für_rückerstattung", approver="zoë@example.com")
        assert verify(sign(claims, [NEW_KEY]), [NEW_KEY], NOW) == claims


class TestTampering:
    def test_every_character_changed_is_refused(self):
        token = sign(approval(), [NEW_KEY])
        tried = 0
        for i, original in enumerate(token):
            for replacement in ALPHABET + ".":
                if replacement == original:
                    continue
                forged = token[:i] + replacement + token[i + 1 :]
                with pytest.raises(TokenTampered):
                    verify(forged, [NEW_KEY], NOW)
                tried += 1
        assert tried == len(token) * len(ALPHABET)

    def test_every_byte_flipped_is_refused(self):
        payload, signature = sign(approval(), [NEW_KEY]).split(".")
        for part in ("payload", "signature"):
            raw = bytearray(unb64(payload if part == "payload" else signature))
            for i in range(len(raw)):
                for bit in range(8):
                    flipped = bytearray(raw)
                    flipped[i] ^= 1 << bit
                    forged = (
                        f"{b64(bytes(flipped))}.{signature}"
                        if part == "payload"
                        else f"{payload}.{b64(bytes(flipped))}"
                    )
                    with pytest.raises(TokenTampered):
                        verify(forged, [NEW_KEY], NOW)

    def test_truncated_extended_and_mangled_tokens_are_refused(self):
        token = sign(approval(), [NEW_KEY])
        for forged in (
            token[:-1],
            token + "A",
            token.replace(".", ""),
            token + ".x",
            "." + token,
            token.split(".")[0] + ".",
            "",
            "a" * 5000,
            f" {token}",
            token + "=",
        ):
            with pytest.raises(TokenTampered):
                verify(forged, [NEW_KEY], NOW)

    def test_swapping_the_decision_is_refused(self):
        token = sign(approval("approve"), [NEW_KEY])

        def to_reject(fields):
            fields[6] = "n"

        with pytest.raises(TokenTampered):
            verify(reforge(token, to_reject), [NEW_KEY], NOW)

    def test_the_reject_url_is_not_the_approve_url(self):
        claims = approval("reject")
        assert verify(sign(claims, [NEW_KEY]), [NEW_KEY], NOW).decision == "reject"

    @pytest.mark.parametrize(
        ("index", "value"),
        [(3, "run-2"), (4, "other_step"), (5, 2), (7, "mallory@example.com"), (7, None)],
        ids=["run", "key", "attempt", "approver", "no-approver"],
    )
    def test_changing_what_it_grants_is_refused(self, index, value):
        token = sign(approval(), [NEW_KEY])

        def change(fields):
            fields[index] = value

        with pytest.raises(TokenTampered):
            verify(reforge(token, change), [NEW_KEY], NOW)

    def test_extending_the_expiry_is_refused(self):
        token = sign(approval(expires_at=NOW - timedelta(seconds=1)), [NEW_KEY])

        def later(fields):
            fields[8] += 86_400

        with pytest.raises(TokenTampered):
            verify(reforge(token, later), [NEW_KEY], NOW)

    def test_a_callback_token_is_not_an_approval(self):
        token = sign(TokenClaims.for_callback("run-1", "k", 1, NOW + timedelta(1)), [NEW_KEY])

        def as_approval(fields):
            fields[2], fields[6] = "A", "y"

        with pytest.raises(TokenTampered):
            verify(reforge(token, as_approval), [NEW_KEY], NOW)

    def test_a_payload_that_is_not_json_is_refused(self):
        token = sign(approval(), [NEW_KEY])
        with pytest.raises(TokenTampered):
            verify(b64(b"[" * 3000) + "." + token.split(".")[1], [NEW_KEY], NOW)

    def test_tampered_is_a_403(self):
        assert TokenTampered.status == 403
        assert TokenExpired.status == 410


class TestKeys:
    def test_wrong_key_is_refused(self):
        token = sign(approval(), [b"someone-elses-key-0123"])
        with pytest.raises(TokenTampered):
            verify(token, [NEW_KEY, OLD_KEY], NOW)

    def test_rotation_new_key_signs_old_key_still_verifies(self):
        old_token = sign(approval(), [OLD_KEY])
        new_token = sign(approval(), [NEW_KEY, OLD_KEY])
        rotated = [NEW_KEY, OLD_KEY]
        assert verify(old_token, rotated, NOW).run_id == "run-1"
        assert verify(new_token, rotated, NOW).run_id == "run-1"
        # The new token really is signed with the new key: the old key alone refuses it.
        with pytest.raises(TokenTampered):
            verify(new_token, [OLD_KEY], NOW)

    def test_a_retired_key_no_longer_verifies(self):
        old_token = sign(approval(), [OLD_KEY])
        with pytest.raises(TokenTampered):
            verify(old_token, [NEW_KEY], NOW)

    def test_no_keys_or_a_short_key_cannot_sign(self):
        with pytest.raises(ValueError, match="no signing key"):
            sign(approval(), [])
        with pytest.raises(ValueError, match="at least 16"):
            sign(approval(), [b"short"])

    def test_key_ids_are_short_and_differ(self):
        assert len(signing.key_id(NEW_KEY)) == 6
        assert signing.key_id(NEW_KEY) != signing.key_id(OLD_KEY)

    def test_the_signature_is_over_the_key_id_too(self):
        token = sign(approval(), [NEW_KEY])

        def claim_old_key(fields):
            fields[1] = signing.key_id(OLD_KEY)

        with pytest.raises(TokenTampered):
            verify(reforge(token, claim_old_key), [NEW_KEY, OLD_KEY], NOW)


class TestExpiry:
    def test_valid_until_the_second_it_expires(self):
        expires = NOW + timedelta(minutes=10)
        token = sign(approval(expires_at=expires), [NEW_KEY])
        assert verify(token, [NEW_KEY], expires - timedelta(seconds=1))
        with pytest.raises(TokenExpired) as caught:
            verify(token, [NEW_KEY], expires)
        assert caught.value.claims.run_id == "run-1"

    def test_a_tampered_expired_token_says_tampered(self):
        token = sign(approval(expires_at=NOW - timedelta(days=1)), [NEW_KEY])
        with pytest.raises(TokenTampered):
            verify(token, [OLD_KEY], NOW)

    def test_naive_now_is_refused(self):
        token = sign(approval(), [NEW_KEY])
        with pytest.raises(ValueError, match="timezone-aware"):
            verify(token, [NEW_KEY], NOW.replace(tzinfo=None))


class TestClaims:
    def test_an_approval_needs_a_decision(self):
        with pytest.raises(ValueError, match="approve"):
            TokenClaims("approval", "r", "k", 1, 10)

    def test_a_callback_has_no_decision(self):
        with pytest.raises(ValueError, match="no decision"):
            TokenClaims("callback", "r", "k", 1, 10, decision="approve")

    def test_attempts_start_at_one(self):
        with pytest.raises(ValueError, match="attempt"):
            TokenClaims("callback", "r", "k", 0, 10)
