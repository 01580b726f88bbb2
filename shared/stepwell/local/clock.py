"""The local stack's clock: real time, plus (with virtual time) jumps over idle waits.

``StackClock`` is the wall clock shifted by an offset that only grows. In real-time mode the
offset stays zero. In virtual-time mode the stack moves it forward whenever nothing is running
and nothing is queued, straight to the next due item (a delayed message, a one-time schedule, a
retried async invocation), so an hour-long delay passes at once while every piece of code still
sees time flow normally: durations measured during an invocation are real.

It implements the Clock port, so the store, the timers, the engine (through the orchestrator)
and the stack's own queues and schedules all read the same time.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, timedelta

from stepwell.runtime.clock import Clock, SystemClock


class StackClock:
    """Wall time + an offset that only moves forward (never backwards: monotonic stays so)."""

    def __init__(
        self,
        virtual: bool = False,
        start: datetime | None = None,
        wall: Clock | None = None,
    ) -> None:
        self.virtual = virtual
        self._wall = wall or SystemClock()
        self._lock = threading.Lock()
        self._offset = timedelta(0)
        if start is not None:
            if not virtual:
                raise ValueError("a start time needs virtual time")
            if start.tzinfo is None:
                raise ValueError("the start time must be timezone-aware")
            self._offset = start.astimezone(UTC) - self._wall.now()
        self.jumped = timedelta(0)
        """How far the clock has jumped in total (virtual time skipped)."""

    def now(self) -> datetime:
        with self._lock:
            offset = self._offset
        return self._wall.now() + offset

    def monotonic(self) -> float:
        with self._lock:
            offset = self._offset
        return self._wall.monotonic() + offset.total_seconds()

    def jump_to(self, when: datetime) -> timedelta:
        """Move to ``when`` if it is ahead (virtual time only); returns how far it moved."""
        if not self.virtual:
            raise RuntimeError("only a virtual clock jumps")
        with self._lock:
            delta = when - (self._wall.now() + self._offset)
            if delta <= timedelta(0):
                return timedelta(0)
            self._offset += delta
            self.jumped += delta
            return delta

    def wall(self) -> Clock:
        """The real clock underneath (for timeouts, which are real)."""
        return self._wall


class Activity:
    """What the stack is doing: invocations and HTTP requests in flight, and holds.

    Virtual time jumps only while nothing is in flight and nobody holds time still (a CLI about
    to decide an approval holds it, so the approval's timeout cannot overtake the decision).
    Every change wakes whoever waits on it (the stack's pump, ``wait_idle``).
    """

    def __init__(self) -> None:
        self._cond = threading.Condition()
        self._busy = 0
        self._holds = 0
        self._changes = 0

    def begin(self) -> None:
        """Something started (an invocation, a request)."""
        with self._cond:
            self._busy += 1
            self._changes += 1
            self._cond.notify_all()

    def end(self) -> None:
        """Something ended."""
        with self._cond:
            self._busy -= 1
            self._changes += 1
            self._cond.notify_all()

    def hold(self) -> None:
        """Keep virtual time still until :meth:`release`."""
        with self._cond:
            self._holds += 1
            self._changes += 1
            self._cond.notify_all()

    def release(self) -> None:
        """End a :meth:`hold`."""
        with self._cond:
            self._holds -= 1
            self._changes += 1
            self._cond.notify_all()

    @contextmanager
    def unchanged_since(self, seen: int) -> Iterator[bool]:
        """Whether nothing began, ended or was queued since ``changes`` was ``seen``; nothing
        can while the block runs (a jump of virtual time decided on a quiet stack must not
        overtake a request that began meanwhile: it would decide with the time before the
        jump and write a wait that the jump already expired)."""
        with self._cond:
            yield self._changes == seen

    def poke(self) -> None:
        """New work was queued (a message, a schedule): wake the pump."""
        with self._cond:
            self._changes += 1
            self._cond.notify_all()

    @property
    def busy(self) -> int:
        """Invocations and requests in flight."""
        with self._cond:
            return self._busy

    @property
    def held(self) -> bool:
        """True while someone holds time still."""
        with self._cond:
            return self._holds > 0

    @property
    def changes(self) -> int:
        """A counter that moves on every change (compare to see whether anything happened)."""
        with self._cond:
            return self._changes

    def wait(self, seen: int, timeout: float | None) -> int:
        """Wait until the change counter moves past ``seen`` (or ``timeout`` seconds pass)."""
        with self._cond:
            if self._changes == seen:
                self._cond.wait(timeout)
            return self._changes
