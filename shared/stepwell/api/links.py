"""A signed link, opened: what approval, form, delegation and callback routes share.

Its token is verified (403 forged, 410 expired), its purpose checked (403), its run found
(404) and the record of the step it points at read, in that order, before a route looks at
what the link asks for.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from stepwell import signing
from stepwell.api import errors
from stepwell.api.deps import current
from stepwell.engine.state import RunState, StepState
from stepwell.signing import TokenClaims


@dataclass(frozen=True)
class Opened:
    """An authentic, unexpired link and what it points at."""

    token: str
    claims: TokenClaims
    run: RunState
    step: StepState | None


def open_link(
    token: str, purposes: signing.Purpose | tuple[signing.Purpose, ...] = "approval"
) -> Opened:
    """The authentic, unexpired link ``token`` for one of ``purposes`` and what it points at."""
    deps = current()
    claims = signing.verify(token, deps.keys(), deps.clock.now())
    wanted = (purposes,) if isinstance(purposes, str) else purposes
    if claims.purpose not in wanted:
        raise signing.TokenTampered(f"not a token for {' or '.join(wanted)}")
    run = deps.store.get_run(claims.run_id)
    if run is None:
        raise errors.not_found(f"run {claims.run_id} no longer exists")
    step = deps.store.load(run.id, [claims.key]).steps.get(claims.key)
    return Opened(token, claims, run, step)


def link_id(claims: TokenClaims) -> str:
    """What a link's decision is recorded with on its step: a digest of the link's nonce."""
    return hashlib.sha256(f"link:{claims.nonce}".encode()).hexdigest()[:16]
