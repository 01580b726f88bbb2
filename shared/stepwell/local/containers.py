"""A container: one warm execution environment of a function, and what runs on each thread.

The invocation a worker thread runs is per-thread state: its container (whose runtime
``wiring.current()`` returns, and whose copy of the Powertools log keys its lines carry), the
step attempt its envelope runs and the log book its lines go to. The Lambda emulator sets it
around each invocation (:func:`enter`, :func:`leave`); :mod:`stepwell.local.logs` reads it.
"""

from __future__ import annotations

import itertools
import threading
from collections.abc import Callable
from typing import Any

from stepwell.local.template import FunctionSpec
from stepwell.runtime.wiring import Runtime

RuntimeFactory = Callable[[FunctionSpec], Runtime]
LogBookAdd = Callable[[tuple[str, str, int], dict[str, Any]], None]

_local = threading.local()


class Container:
    """One warm execution environment of a function."""

    _ids = itertools.count(1)

    def __init__(
        self, function: FunctionSpec, factory: RuntimeFactory, generation: int = 0
    ) -> None:
        self.function = function
        self.id = next(self._ids)
        self.generation = generation
        """The deployment it was started for (see :meth:`LambdaEmulator.retire_warm`)."""
        self._factory = factory
        self._runtime: Runtime | None = None
        self.handler: Callable[[Any, Any], Any] | None = None
        self.init_error: dict[str, Any] | None = None
        self.log_formats: dict[int, dict[str, Any]] = {}
        """Powertools log keys of this container, per formatter (see stepwell.local.logs)."""

    def runtime(self) -> Runtime:
        """This container's Stepwell runtime (built on first use, kept while warm)."""
        if self._runtime is None:
            self._runtime = self._factory(self.function)
        return self._runtime

    @property
    def built(self) -> Runtime | None:
        """Its runtime if it was built (a log line must not build one)."""
        return self._runtime


def current_container() -> Container | None:
    """The container whose invocation runs on this thread, if any."""
    found: Container | None = getattr(_local, "container", None)
    return found


def current_log_book() -> LogBookAdd | None:
    """Where the invocation on this thread keeps its log lines (the stack's log book), if any."""
    found: LogBookAdd | None = getattr(_local, "log_book", None)
    return found


def current_attempt() -> tuple[str, str, int] | None:
    """(run id, step key, attempt) of the step envelope the invocation on this thread runs."""
    found: tuple[str, str, int] | None = getattr(_local, "attempt", None)
    return found


def enter(container: Container, log_book: LogBookAdd | None) -> None:
    """An invocation begins on this thread, in ``container``."""
    _local.container = container
    _local.log_book = log_book


def note_attempt(attempt: tuple[str, str, int] | None) -> None:
    """The invocation on this thread runs that step attempt (None: no step envelope)."""
    _local.attempt = attempt


def leave() -> None:
    """The invocation on this thread ended."""
    _local.container = None
    _local.attempt = None
    _local.log_book = None


class ContainerRuntime(Runtime):
    """The runtime ``wiring.current()`` returns inside the local stack: that of the container
    running on the calling thread, so each warm container keeps its own orchestrator as each
    Lambda container does. Outside any invocation (a thread a handler started) it is the
    ``fallback`` runtime."""

    def __init__(self, fallback: Callable[[], Runtime]) -> None:
        object.__setattr__(self, "_fallback", fallback)

    def __getattribute__(self, name: str) -> Any:
        if name == "_fallback" or name.startswith("__"):
            return object.__getattribute__(self, name)
        container = current_container()
        if container is not None:
            return getattr(container.runtime(), name)
        return getattr(object.__getattribute__(self, "_fallback")(), name)

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the local stack's runtime is read-only")
