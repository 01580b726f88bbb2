"""The journals of code-first runs as this process's last replays read them: a resume reads
only what can have changed since (see :class:`Journals`)."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from stepwell.code.protocol import WORKFLOW_KEY, Yield
from stepwell.engine.state import State, StepState
from stepwell.store.port import RunNotFound, Store


@dataclass
class _Seen:
    """What a replay of a run read and reached: enough for the next replay to read only what
    can have changed since."""

    attempt: int
    seq: int
    steps: dict[str, StepState]
    changing: frozenset[str]
    """Keys whose records may change before the next replay: those in flight when this one
    read, and those it reached (written after it)."""


MAX_JOURNALS = 1_000
"""Runs whose journal a process keeps between replays."""
READ_TRIES = 4
"""Tries of a replay's read of its journal (0.1, 0.2, 0.4 s apart)."""


class Journals:
    """The step records of code-first runs as the last replay in this process read them.

    The replay that follows attempt ``n`` is attempt ``n + 1``: if this process ran attempt
    ``n`` and the run record has not changed since (an operator action, a wait opening or
    closing: every run-level write bumps its ``seq``), only the records that can have changed
    are read again, in one BatchGetItem with the run and the replay's own step. Ended records
    never change, so a resume reads what is new, not the whole run. Otherwise the whole run is
    read (a Query)."""

    def __init__(self) -> None:
        self._seen: dict[str, _Seen] = {}
        self._lock = threading.Lock()

    def read(self, store: Store, run_id: str, attempt: int) -> State:
        """The run and every step record, for replay ``attempt``. A read that fails (a DynamoDB
        fault) is tried again a few times before the replay fails for it: a fault of
        Stepwell's own store must not use up the replay's retries."""
        for tries in range(READ_TRIES - 1):
            try:
                return self._read(store, run_id, attempt)
            except RunNotFound:
                raise
            except Exception:
                time.sleep(0.1 * 2**tries)
        return self._read(store, run_id, attempt)  # the last try: its error is the replay's

    def _read(self, store: Store, run_id: str, attempt: int) -> State:
        with self._lock:
            seen = self._seen.pop(run_id, None)
        if seen is not None and seen.attempt == attempt - 1:
            state = store.load_steps(run_id, seen.changing | {WORKFLOW_KEY})
            if state.run.seq == seen.seq:
                steps = {k: v for k, v in seen.steps.items() if k not in state.absent}
                steps.update(state.steps)
                # A fan-out in flight starts children no replay reached: the records read are
                # then all the replay needs, but not every record of the run.
                fanning = any(s.is_fanout and not s.terminal for s in steps.values())
                return State(run=state.run, steps=steps, complete=not fanning)
        run = store.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        return State(run=run, steps={s.key: s for s in store.steps(run_id)}, complete=True)

    def keep(self, state: State, attempt: int, answer: Yield) -> None:
        """Remember what replay ``attempt`` read and reached."""
        reached = {i.key for i in answer.issued} | {c.key for c in answer.checkpoints}
        changing = {k for k, s in state.steps.items() if not s.terminal} | reached
        seen = _Seen(attempt, state.run.seq, dict(state.steps), frozenset(changing))
        with self._lock:
            if len(self._seen) >= MAX_JOURNALS:
                self._seen.clear()
            self._seen[state.run.id] = seen
