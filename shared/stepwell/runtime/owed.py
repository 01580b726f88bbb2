"""What committed decisions owe: their commands, carried out in order after the write, and
what a call could not carry out, kept for the next call of the same process.

A command that fails does not stop the others: it is tried again after them (a few rounds
within the call), then kept owed for the process's next call, and its error raised (the caller
sends its event again, or answers an error and is called again: that call carries it out
first). A decision whose write DynamoDB left in doubt is kept too: at the next round or call
the store says whether it landed, and its commands are carried out, or its event decided again.
An outbox entry is cleared only once its command was carried out. Only a dying process leaves
anything to the watches.
"""

from __future__ import annotations

import logging
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field

from stepwell.engine.commands import OUTBOX_KINDS, Command, CountItem
from stepwell.engine.decision import Decision
from stepwell.store.port import Mark, WriteInDoubt

log = logging.getLogger(__name__)

ROUNDS = 3
"""Rounds of carrying out the commands that failed, within one call (0.05 s, then 0.1 s apart)."""
MAX_CALLS = 3
"""Calls of this process a failing command is carried into before the watches are left it."""


@dataclass
class _Batch:
    """The outbox entries one decision's commands carry, and those carried out so far."""

    run_id: str
    delivered: list[str] = field(default_factory=list)
    cleared: bool = False


@dataclass(frozen=True)
class _Clear:
    """Clear the outbox entries of a batch that were carried out."""

    batch: _Batch
    kind: str = "clear_outbox"


@dataclass(frozen=True)
class _Again:
    """Decide again what a write left in doubt was for (it did not land)."""

    call: Callable[[], object]
    kind: str = "again"


@dataclass
class _Entry:
    """A command to carry out (``entry``: its outbox entry, cleared once it is carried out)."""

    run_id: str
    command: Command | _Clear | _Again
    entry: str | None = None
    batch: _Batch | None = None
    calls: int = 0
    """Calls of this process whose drain it failed in."""


@dataclass
class _Doubt:
    """A decision whose write DynamoDB left in doubt, and what to do if it did not land."""

    run_id: str
    mark: Mark
    decision: Decision
    again: Callable[[], object]


class Owed:
    """The commands of one process's committed decisions, carried out through the callbacks
    the orchestrator gives: ``do`` carries out one command, ``clear`` clears outbox entries,
    ``landed`` asks the store about a write in doubt, ``committed`` takes a decision that
    landed as committed, and ``drained`` follows every drain."""

    def __init__(
        self,
        do: Callable[[str, Command], None],
        clear: Callable[[str, tuple[str, ...]], None],
        landed: Callable[[Mark], bool],
        committed: Callable[[str, Decision], None],
        drained: Callable[[], None],
    ) -> None:
        self._do = do
        self._clear = clear
        self._landed = landed
        self._committed = committed
        self._drained = drained
        self._queue: deque[_Entry] = deque()
        self._owed: list[_Entry] = []
        """Commands that failed in an earlier call of this process: carried out first."""
        self._doubts: list[_Doubt] = []
        """Decisions whose write was left in doubt: looked up first."""
        self.draining = False

    def add(self, run_id: str, commands: list[Command], outbox: list[str] | None = None) -> None:
        """Queue a committed decision's commands, then the clearing of the outbox entries that
        carry some of them (in order), and carry them out unless a drain is under way (a
        follow-up's commands join the queue being carried out)."""
        entries = deque(outbox or [])
        batch = _Batch(run_id) if entries else None
        for command in commands:
            entry = entries.popleft() if entries and command.kind in OUTBOX_KINDS else None
            self._queue.append(_Entry(run_id, command, entry, batch))
        if batch is not None:
            self._queue.append(_Entry(run_id, _Clear(batch)))
        if not self.draining:
            self._drain()

    def follow(self, run_id: str, command: Command) -> None:
        """Queue one more command in the drain under way."""
        self._queue.append(_Entry(run_id, command))

    def doubt(
        self, run_id: str, mark: Mark, decision: Decision, again: Callable[[], object]
    ) -> None:
        """Keep a decision whose write was left in doubt, to be looked up at the next round or
        call (``again`` decides its event again if it did not land)."""
        self._doubts.append(_Doubt(run_id, mark, decision, again))

    def catch_up(self) -> None:
        """At the start of a call: what earlier calls of this process left owed is carried out
        first (an error then keeps it owed, and this call goes on)."""
        if self.draining or not (self._owed or self._doubts):
            return
        owed, self._owed = self._owed, []
        self._queue.extend(owed)
        try:
            self._drain()
        except Exception:
            log.warning("commands owed by earlier calls failed again; kept for the next call")

    def _drain(self) -> None:
        """Carry out the queue (see the module). A count is never sent twice (its add may have
        counted): the fan-out's watch recounts one that failed."""
        self.draining = True
        failed: list[tuple[_Entry, Exception]] = []
        doubt: WriteInDoubt | None = None
        try:
            for rounds in range(ROUNDS):
                self._settle_doubts()
                while self._queue:
                    owed = self._queue.popleft()
                    try:
                        self._carry_out(owed)
                    except WriteInDoubt as exc:
                        doubt = exc  # kept as a doubt, settled in the next round
                    except Exception as exc:
                        if isinstance(owed.command, CountItem):
                            _count_lost(owed.run_id, owed.command, exc)
                        else:
                            failed.append((owed, exc))
                if not (failed or self._doubts) or rounds == ROUNDS - 1:
                    break
                time.sleep(0.05 * 2**rounds)
                self._queue.extend(owed for owed, _ in failed)
                failed.clear()
        finally:
            self.draining = False
            self._drained()
        if failed:
            self._keep([owed for owed, _ in failed])
            raise failed[0][1]
        if doubt is not None and self._doubts:
            raise doubt

    def _keep(self, owed: list[_Entry]) -> None:
        """Keep commands for the next call; one that failed through ``MAX_CALLS`` calls is
        left to the watches (a command failing for good must not fail every call)."""
        for one in owed:
            one.calls += 1
            if one.calls < MAX_CALLS:
                self._owed.append(one)
            else:
                log.error(
                    "gave up carrying out a %s command of run %s; the run's watches find what "
                    "it was for",
                    one.command.kind,
                    one.run_id,
                )

    def _settle_doubts(self) -> None:
        """Look up the writes left in doubt: the commands of those that landed are carried
        out; the events of those that did not are decided again."""
        doubts, self._doubts = self._doubts, []
        for index, doubt in enumerate(doubts):
            try:
                landed = self._landed(doubt.mark)
            except Exception:
                self._doubts.extend(doubts[index:])  # DynamoDB still does not answer
                return
            if landed:
                self._committed(doubt.run_id, doubt.decision)
            else:
                self._queue.append(_Entry(doubt.run_id, _Again(doubt.again)))

    def _carry_out(self, owed: _Entry) -> None:
        command = owed.command
        if isinstance(command, _Again):
            command.call()
            return
        if isinstance(command, _Clear):
            command.batch.cleared = True
            if command.batch.delivered:
                self._clear(owed.run_id, tuple(command.batch.delivered))
            return
        self._do(owed.run_id, command)
        batch = owed.batch
        if owed.entry is not None and batch is not None:
            batch.delivered.append(owed.entry)
            if batch.cleared:  # carried out in a later round: its own clearing follows
                late = _Batch(owed.run_id, [owed.entry])
                self._queue.append(_Entry(owed.run_id, _Clear(late)))


def _count_lost(run_id: str, count: CountItem, exc: Exception) -> None:
    log.warning(
        "the count of %s[%d] of run %s was lost (%s): its fan-out's watch recounts it",
        count.parent_key,
        count.index,
        run_id,
        exc,
    )
