"""A callback wait the code opened without waiting on it: ``ctx.create_callback``.

``wait_for_callback`` blocks where it is called. Often the code must first hand the token to
the system that will answer (start a job with it, send it in a mail) and only then wait, or do
other steps meanwhile: ``create_callback`` opens the wait at once and returns a handle::

    job = ctx.create_callback("export_done", timeout="2h")
    ctx.task("start_export", function="StartExportFunction", input={"callback": job.url})
    report = job.result()          # the export's answer; StepFailed on a failure or timeout

The wait's end is fixed when the code first reaches the call (its ``timeout`` counts from
there), and the signed link is made from that end, so every replay hands out the same token and
URL as ``callback.requested`` on the bus does. An answer that arrives before ``result()`` is
called, even before the engine opened the wait, is kept for it.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from stepwell.code.errors import ContextError

if TYPE_CHECKING:
    from stepwell.code.protocol import Recorded


@dataclass(frozen=True)
class Callback:
    """The handle of an open callback wait (see the module's docstring)."""

    _wait: Callable[[str], Any] = field(repr=False)
    """Wait for a step's answer in the replay that made the handle (``Context._await``)."""
    key: str
    """The wait's step key (what the timeline and ``stepwell callback`` name)."""
    token: str | None
    """The signed token an answer carries (None in tests without signing keys)."""
    url: str | None
    """Where the answering system POSTs (``{api}/callbacks/{token}``)."""
    expires_at: datetime
    """When the wait fails with ``CallbackTimedOut`` if nothing answered."""

    def result(self) -> Any:
        """Wait for the answer and return its payload. Raises StepFailed on a failure answer,
        ``CallbackTimedOut`` or ``HeartbeatTimedOut``."""
        return self._wait(self.key)


def open_callback(record: Recorded) -> datetime:
    """When the wait of a callback reached in an earlier replay ends."""
    if record.expires_at is None:
        raise ContextError(
            f"step {record.key!r} is a callback whose end was never set: it was made by "
            "wait_for_callback when this run started, and the code now makes it with "
            "create_callback (keep the call the run started with, or start a new run)"
        )
    return datetime.fromisoformat(record.expires_at)
