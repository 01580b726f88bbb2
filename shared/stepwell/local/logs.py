"""Powertools log keys kept per container, as they are on Lambda.

Powertools' ``Logger`` keeps the keys it adds to every line (``function_name``,
``function_request_id``, ``cold_start``, whatever a handler appends: ``run_id`` ...) on the
formatter of the ``logging`` logger of its service. On Lambda a container has that formatter to
itself. In the local stack every container of every function shares one process, hence one
formatter per service, and two invocations running at once would print each other's keys.

:func:`isolate_log_keys` gives such formatters one key set per container: their ``log_format``
becomes a property that reads and writes the running container's own copy. Code running
outside any container (the CLI, a test) sees the formatter's own keys, unchanged.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from stepwell.local.containers import current_attempt, current_container, current_log_book
from stepwell.runtime.ports import AttemptLogs

_STORE = "_stepwell_local_log_format"
_patched: dict[type, type] = {}
_HUMAN = {"on": False}
"""Whether the functions' Powertools lines print as short human lines (``stepwell dev``'s
default) rather than JSON."""
_SHOWN = ("run_id", "step_id", "attempt", "workflow", "error")
_QUIET = frozenset(
    {
        "level",
        "location",
        "message",
        "timestamp",
        "service",
        "cold_start",
        "function_name",
        "function_memory_size",
        "function_arn",
        "function_request_id",
        "xray_trace_id",
        "sampling_rate",
        "exception",
        "exception_name",
        "stack_trace",
    }
)


def human_logs(on: bool = True) -> None:
    """Print the functions' Powertools log lines as human lines (True) or JSON (False)."""
    _HUMAN["on"] = on


def human_line(log: dict[str, Any]) -> str:
    """``12:00:01.234 INFO  ChargeCard  step attempt  run_id=... step_id=charge attempt=2``."""
    when = str(log.get("timestamp", ""))[11:23]
    function = str(log.get("function_name") or log.get("service") or "")
    function = function.rsplit("-", 1)[-1] if function.startswith("stepwell-local-") else function
    keys = [f"{k}={log[k]}" for k in _SHOWN if log.get(k) not in (None, "")]
    keys += [f"{k}={v}" for k, v in log.items() if k not in _QUIET and k not in _SHOWN]
    line = f"{when} {log.get('level', '')!s:<5} {function}  {log.get('message', '')}"
    if keys:
        line += "  " + " ".join(keys)
    if log.get("exception"):
        line += "\n" + str(log["exception"])
    return line


def _get(self: Any) -> dict[str, Any]:
    base: dict[str, Any] = self.__dict__[_STORE]
    container = current_container()
    if container is None:
        return base
    found = container.log_formats.get(id(self))
    if found is None:
        found = container.log_formats[id(self)] = dict(base)
    return found


def _set(self: Any, value: dict[str, Any]) -> None:
    container = current_container()
    if container is None:
        self.__dict__[_STORE] = value
    else:
        container.log_formats[id(self)] = value


def _serializer(cls: type) -> Any:
    base = getattr(cls, "serialize")  # noqa: B009 (a formatter class of Powertools)

    def serialize(self: Any, log: dict[str, Any]) -> str:
        _keep(log)
        return human_line(log) if _HUMAN["on"] else str(base(self, log))

    return serialize


class LogBook:
    """The log lines the local stack's functions wrote while running each step attempt (the
    newest attempts), for the dashboard to show beside the step; on AWS CloudWatch Logs keeps
    them. A line is every one a function logs through Powertools (the runner's, a step's
    ``ctx.logger``, a Powertools Logger of its own): the lines ``stepwell dev`` prints."""

    ATTEMPTS = 2000
    LINES = 500

    def __init__(self, now: Callable[[], datetime]) -> None:
        self._now = now
        self._lines: OrderedDict[tuple[str, str, int], list[dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, attempt: tuple[str, str, int], log: dict[str, Any]) -> None:
        """Keep one line of ``attempt`` (a Powertools log record as a dict)."""
        message = str(log.get("message", ""))
        if log.get("exception"):
            message += "\n" + str(log["exception"])
        line = {
            "at": self._now().isoformat(),
            "level": str(log.get("level", "")),
            "message": message,
            "source": str(log.get("function_name") or log.get("service") or ""),
        }
        with self._lock:
            lines = self._lines.setdefault(attempt, [])
            self._lines.move_to_end(attempt)
            if len(lines) < self.LINES:
                lines.append(line)
            while len(self._lines) > self.ATTEMPTS:
                self._lines.popitem(last=False)

    def attempt(
        self,
        run_id: str,
        key: str,
        attempt: int,
        since: datetime | None,
        until: datetime | None,
        functions: Sequence[str] = (),
    ) -> AttemptLogs:
        """The StepLogs port: the lines kept of that attempt."""
        with self._lock:
            lines = list(self._lines.get((run_id, key, attempt), []))
        return AttemptLogs(
            where=f"the local stack's memory (the newest {self.ATTEMPTS:,} attempts)", lines=lines
        )


def _keep(log: dict[str, Any]) -> None:
    """Note a function's log line in its stack's log book, under the attempt it runs."""
    attempt = current_attempt()
    book = current_log_book()
    if attempt is not None and book is not None:
        book(attempt, log)


def isolate_log_keys() -> int:
    """Give every Powertools formatter in the process per-container keys; returns how many
    formatters were changed now."""
    try:
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
    except ImportError:  # Powertools is not installed: nothing to isolate
        return 0
    # A snapshot first: other threads may create loggers meanwhile.
    every = list(logging.Logger.manager.loggerDict.values())
    loggers = [logging.getLogger()] + [
        found for found in every if isinstance(found, logging.Logger)
    ]
    changed = 0
    for logger in loggers:
        for handler in list(logger.handlers):
            formatter = handler.formatter
            if not isinstance(formatter, LambdaPowertoolsFormatter) or _STORE in formatter.__dict__:
                continue
            cls = type(formatter)
            if cls not in _patched:
                _patched[cls] = type(
                    f"PerContainer{cls.__name__}",
                    (cls,),
                    {"log_format": property(_get, _set), "serialize": _serializer(cls)},
                )
            formatter.__dict__[_STORE] = formatter.__dict__.pop("log_format", {})
            formatter.__class__ = _patched[cls]
            changed += 1
    return changed
