"""``ctx.logger``: a logger that stays quiet while a replay re-runs code an earlier replay ran.

Each replay runs the workflow function from the top, so a plain ``logging`` call in it would be
written once per replay. The replay-aware logger writes a line only when the code is past the
part the run's records cover (as Temporal's workflow logger does); see docs/code-first.md for
the one case it cannot tell apart.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any


class ReplayLogger:
    """Logs to ``sink`` (a ``logging.Logger``, a Powertools Logger ...) unless replaying."""

    def __init__(self, sink: Any, replaying: Callable[[], bool]) -> None:
        self._sink = sink
        self._replaying = replaying

    def debug(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at DEBUG unless replaying."""
        self._log("debug", msg, args, kwargs)

    def info(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at INFO unless replaying."""
        self._log("info", msg, args, kwargs)

    def warning(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at WARNING unless replaying."""
        self._log("warning", msg, args, kwargs)

    def error(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR unless replaying."""
        self._log("error", msg, args, kwargs)

    def exception(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at ERROR with the exception being handled, unless replaying."""
        self._log("exception", msg, args, kwargs)

    def critical(self, msg: object, *args: Any, **kwargs: Any) -> None:
        """Log at CRITICAL unless replaying."""
        self._log("critical", msg, args, kwargs)

    @property
    def replaying(self) -> bool:
        """True while lines are being dropped."""
        return self._replaying()

    def _log(self, level: str, msg: object, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        if not self._replaying():
            getattr(self._sink, level)(msg, *args, **kwargs)
