"""Secrets on AWS: Secrets Manager through Powertools Parameters (cached per container)."""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.utilities.parameters import SecretsProvider

if TYPE_CHECKING:
    from mypy_boto3_secretsmanager import SecretsManagerClient

DEFAULT_MAX_AGE_S = 300
"""How long a secret value is reused before it is read again (rotation shows within this)."""


class SecretNotString(TypeError):
    """The secret holds binary data; Stepwell substitutes text only."""


class SecretsReader:
    """Reads secrets by name or ARN; ``reader(name)`` is the ``secrets`` callable steps use.

    Values are cached in memory for ``max_age`` seconds, so a warm container does not call
    Secrets Manager for every step.
    """

    def __init__(
        self, client: SecretsManagerClient | None = None, max_age: int = DEFAULT_MAX_AGE_S
    ) -> None:
        self._provider = SecretsProvider(boto3_client=client)
        self._max_age = max_age

    def get(self, name: str) -> str:
        """The secret's current string value (``SecretString``)."""
        value = self._provider.get(name, max_age=self._max_age)
        if isinstance(value, bytes):
            raise SecretNotString(f"secret {name!r} is binary; store it as a string")
        if not isinstance(value, str):
            raise SecretNotString(f"secret {name!r} did not read as a string")
        return value

    def __call__(self, name: str) -> str:
        return self.get(name)


def signing_keys(secret_value: str) -> list[bytes]:
    """The signing keys a secret holds, newest first.

    Accepts a JSON list of keys (``["new", "old"]``), an object ``{"keys": [...]}`` or a plain
    string (one key). The first key signs; every key verifies, so a rotation prepends a key and
    drops the oldest once the tokens it signed have expired.
    """
    parsed: Any
    try:
        parsed = json.loads(secret_value)
    except ValueError:
        parsed = secret_value
    if not isinstance(parsed, dict | list | str):
        parsed = secret_value  # "12345" or "true" is a key that happens to parse as JSON
    if isinstance(parsed, dict):
        parsed = parsed.get("keys")
    if isinstance(parsed, str):
        parsed = [parsed]
    if (
        not isinstance(parsed, list)
        or not parsed
        or not all(isinstance(k, str) and k for k in parsed)
    ):
        raise ValueError(
            'the signing secret must be a string, a JSON list of strings or {"keys": [...]} '
            "with at least one non-empty key"
        )
    return [k.encode() for k in parsed]
