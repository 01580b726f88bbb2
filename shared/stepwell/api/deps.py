"""What the API needs besides the runtime: signing keys, used tokens and idempotency records.

By default they follow the installed :class:`~stepwell.runtime.wiring.Runtime`: the keys are the
ones its approval links are signed with, and on a DynamoDB store used tokens and idempotency
records are items of the same table (in memory otherwise). Tests may install their own with
:func:`use`.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

from aws_lambda_powertools.utilities.idempotency import BasePersistenceLayer

from stepwell.api.claims import DynamoUsedTokens, MemoryUsedTokens, UsedTokens
from stepwell.api.idempotency import MemoryLayer, dynamodb_layer
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks
from stepwell.runtime.clock import Clock
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.runtime.wiring import Runtime
from stepwell.store.port import Store

MAX_BODY_BYTES = 256 * 1024
"""Request bodies above this are refused with 413 (a run's input belongs in S3 beyond it)."""


class NoSigningKeys(RuntimeError):
    """Neither the runtime nor the environment gives signing keys."""


@dataclass
class ApiDeps:
    """The runtime and the API's own stores."""

    runtime: Runtime
    keys: Callable[[], Sequence[bytes]]
    """Signing keys, newest first (the newest signs, all verify)."""
    used_tokens: UsedTokens
    idempotency: BasePersistenceLayer
    max_body_bytes: int = MAX_BODY_BYTES

    @property
    def orchestrator(self) -> Orchestrator:
        """The runtime's orchestrator."""
        return self.runtime.orchestrator

    @property
    def store(self) -> Store:
        """The runtime's store."""
        return self.runtime.store

    @property
    def clock(self) -> Clock:
        """The runtime's clock."""
        return self.runtime.clock


def for_runtime(runtime: Runtime, environ: Mapping[str, str] | None = None) -> ApiDeps:
    """The API's dependencies that go with ``runtime``."""
    from stepwell.store.dynamodb import DynamoStore

    keys = signing_keys_of(runtime, os.environ if environ is None else environ)
    store = runtime.store
    if isinstance(store, DynamoStore):
        client = store.client
        return ApiDeps(
            runtime,
            keys,
            DynamoUsedTokens(store.table, client),
            dynamodb_layer(store.table, client),
        )
    return ApiDeps(runtime, keys, MemoryUsedTokens(), MemoryLayer())


def signing_keys_of(runtime: Runtime, environ: Mapping[str, str]) -> Callable[[], Sequence[bytes]]:
    """The keys approval links are signed with: the runtime's approvals port's own keys (so
    what signs and what verifies cannot differ), else the signing secret of the environment."""
    approvals = runtime.orchestrator.ports.approvals
    if isinstance(approvals, ApprovalLinks):
        return approvals.keys
    secret_id = environ.get("STEPWELL_SIGNING_SECRET")
    if not secret_id:

        def missing() -> Sequence[bytes]:
            raise NoSigningKeys("no signing keys: set STEPWELL_SIGNING_SECRET")

        return missing
    from stepwell.runtime.aws.secrets import SecretsReader, signing_keys

    reader = SecretsReader()
    return lambda: signing_keys(reader.get(secret_id))


_installed: ApiDeps | None = None
_built: tuple[Runtime, ApiDeps] | None = None
_lock = threading.Lock()


def current() -> ApiDeps:
    """The installed dependencies, or those of the current runtime (built once per runtime)."""
    global _built
    with _lock:
        if _installed is not None:
            return _installed
    runtime = wiring.current()
    with _lock:
        if _built is None or _built[0] is not runtime:
            _built = (runtime, for_runtime(runtime))
        return _built[1]


def use(deps: ApiDeps | None) -> None:
    """Install dependencies (tests); None goes back to following the runtime."""
    global _installed, _built
    with _lock:
        _installed = deps
        _built = None
