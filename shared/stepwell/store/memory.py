"""An in-memory store with the same conditional semantics as the DynamoDB one.

Used by unit tests of the runtime, property tests and the in-process demo. Records are copied in
and out, so callers can never change stored state except through ``commit``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Iterable
from dataclasses import replace
from datetime import datetime
from typing import Any

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine import fanout
from stepwell.engine.commands import CountItem
from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.slots import KeySlots, SlotChange
from stepwell.engine.state import RunState, State, StepState
from stepwell.store import codec
from stepwell.store.port import (
    Conflict,
    DebounceHeld,
    Due,
    Mark,
    OwnedElsewhere,
    Page,
    Registration,
    RunNotFound,
    SlotsTaken,
)


class MemoryStore:
    """Runs, steps and timelines in dicts, behind one lock."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._runs: dict[str, RunState] = {}
        self._steps: dict[str, dict[str, StepState]] = {}
        self._timeline: dict[str, list[TimelineEntry]] = {}
        self._definitions: dict[tuple[str, str], Workflow] = {}
        self._registry: dict[str, Registration] = {}
        self._held: dict[str, set[str]] = {}
        self._changes: dict[str, int] = {}
        self._pending: dict[str, str] = {}
        self._recent: dict[str, tuple[str, ...]] = {}
        self._queues: dict[str, dict[str, str]] = {}
        self.commits = 0
        self.conflicts = 0

    def create(self, decision: Decision) -> None:
        assert decision.run is not None
        with self._lock:
            if decision.run.id in self._runs:
                raise Conflict(f"run {decision.run.id} exists")
            self._check_slot(decision)
            self._check_pending(decision)
            self._steps[decision.run.id] = {}
            self._timeline[decision.run.id] = []
            self._apply(decision)

    def load(self, run_id: str, keys: Iterable[str]) -> State:
        with self._lock:
            run = self._runs.get(run_id)
            if run is None:
                raise RunNotFound(run_id)
            state = State(run=run.copy())
            self._fill(state, set(keys))
            return state

    def load_more(self, state: State, keys: frozenset[str] | None) -> None:
        with self._lock:
            if keys is None:
                state.steps = {k: s.copy() for k, s in self._steps[state.run.id].items()}
                state.complete = True
            else:
                self._fill(state, set(keys))

    def _fill(self, state: State, keys: set[str]) -> None:
        stored = self._steps[state.run.id]
        for key in keys:
            if key in stored:
                state.steps[key] = stored[key].copy()
            else:
                state.absent.add(key)

    def load_steps(self, run_id: str, keys: Iterable[str], run: RunState | None = None) -> State:
        state = self.load(run_id, keys)
        if run is not None:
            state.run = run.copy()
        return state

    def write_step(self, run: RunState, decision: Decision) -> None:
        key = decision.single_step
        if key is None:
            raise ValueError("write_step takes a decision that writes exactly one step")
        with self._lock:
            before = decision.before.get(key)
            if before is None or decision.steps[key] != before:
                self._check_revs(run.id, decision)
                self._write(run.id, decision, key)
            elif key not in self._steps.get(run.id, {}):
                raise Conflict(f"run {run.id}: step {key} is gone")
            # else: only timeline entries (a duplicate result noted), as DynamoStore writes them
            self._timeline[run.id].extend(decision.timeline)
            self.commits += 1

    def count_item(self, run_id: str, count: CountItem, now: datetime) -> StepState | None:
        with self._lock:
            parent = self._steps.get(run_id, {}).get(count.parent_key)
            after = fanout.counted(parent, count, now) if parent is not None else None
            if after is None:
                return None
            self._steps[run_id][count.parent_key] = after
            return after.copy()

    def wake_replay(self, run_id: str, attempt: int) -> bool:
        with self._lock:
            own = self._steps.get(run_id, {}).get(WORKFLOW_KEY)
            if own is None or own.status != "running" or own.attempt != attempt:
                return False
            woken = own.copy()
            woken.wake = True
            woken.rev += 1
            self._steps[run_id][WORKFLOW_KEY] = woken
            return True

    def _check_revs(self, run_id: str, decision: Decision) -> None:
        """Conflict unless every step the decision writes is still the record it loaded (and,
        for a decision that sets a fan-out's counters, no count came in since)."""
        stored = self._steps.get(run_id, {})
        for key, record in decision.steps.items():
            before = decision.before.get(key)
            current = stored.get(key)
            if current is None and before is None:
                continue
            if current is None or before is None or current.rev != before.rev:
                self.conflicts += 1
                raise Conflict(f"run {run_id}: step {key} changed")
            if _counters(record) != _counters(before) and current.counted_at != before.counted_at:
                self.conflicts += 1
                raise Conflict(f"run {run_id}: step {key} was counted")

    def _write(self, run_id: str, decision: Decision, key: str) -> None:
        """Store a step as an update of what changed would: counts that came in since the
        record was loaded stay, unless the decision set the counters itself."""
        record = decision.steps[key].copy()
        before = decision.before.get(key)
        current = self._steps[run_id].get(key)
        if current is not None and before is not None and _counters(record) == _counters(before):
            record.children_succeeded = current.children_succeeded
            record.children_failed = current.children_failed
            record.next_child = current.next_child
            record.counted_at = current.counted_at
            record.usage = copy.copy(current.usage)
        record.rev += 1
        self._steps[run_id][key] = record

    def commit(self, decision: Decision, expected_seq: int) -> None:
        assert decision.run is not None
        with self._lock:
            current = self._runs.get(decision.run.id)
            if current is None or current.seq != expected_seq:
                self.conflicts += 1
                raise Conflict(f"run {decision.run.id} changed (seq {expected_seq})")
            self._check_revs(decision.run.id, decision)
            self._check_slot(decision)
            self._check_pending(decision)
            self._apply(decision)

    def landed(self, mark: Mark) -> bool:
        """Never asked: a write here is applied or refused, never in doubt."""
        return False

    def _apply(self, decision: Decision) -> None:
        assert decision.run is not None
        run = decision.run.copy()
        run.seq += 1
        self._runs[run.id] = run
        for key in decision.steps:
            self._write(run.id, decision, key)
        self._timeline[run.id].extend(decision.timeline)
        self._change_slot(decision)
        self._change_pending(decision)
        self.commits += 1

    def get_run(self, run_id: str) -> RunState | None:
        with self._lock:
            run = self._runs.get(run_id)
            return run.copy() if run else None

    def runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        with self._lock:
            found = [
                r.copy()
                for r in self._runs.values()
                if (not workflow or r.workflow == workflow) and (not status or r.status == status)
            ]
        found.sort(key=lambda r: (r.created_at, r.id), reverse=True)
        start = int(cursor or 0)
        if start < 0:
            raise ValueError("negative cursor")
        taken = found[start : start + max(1, limit)]
        end = start + len(taken)
        return Page(taken, str(end) if end < len(found) else None)

    def waiting_for_people(self, cursor: str | None = None, limit: int = 50) -> Page:
        """The steps waiting for people, newest first (the reference: it looks at every step)."""
        with self._lock:
            found = [
                (sk, self._runs[run_id].copy(), step.copy())
                for run_id, steps in self._steps.items()
                if run_id in self._runs
                for step in steps.values()
                if (sk := codec.waiting_sk(run_id, step)) is not None
            ]
        found.sort(key=lambda hit: hit[0], reverse=True)
        start = int(cursor or 0)
        if start < 0:
            raise ValueError("negative cursor")
        taken = found[start : start + max(1, limit)]
        end = start + len(taken)
        return Page([(run, step) for _, run, step in taken], str(end) if end < len(found) else None)

    def steps(self, run_id: str) -> list[StepState]:
        with self._lock:
            return [s.copy() for s in self._steps.get(run_id, {}).values()]

    def timeline(self, run_id: str, cursor: str | None = None, limit: int = 100) -> Page:
        with self._lock:
            entries = self._timeline.get(run_id, [])
            start = int(cursor or 0)
            page = entries[start : start + limit]
            end = start + len(page)
            return Page(list(page), str(end) if end < len(entries) else None)

    def due(self, now: datetime, limit: int = 100) -> list[Due]:
        with self._lock:
            found: list[Due] = []
            for run in self._runs.values():
                if run.next_due is not None and run.next_due <= now:
                    found.append(Due(run.id, None, run.next_due))
                for step in self._steps[run.id].values():
                    if step.due_at is not None and step.due_at <= now:
                        found.append(Due(run.id, step.key, step.due_at))
            found.sort(key=lambda d: d.at)
            return found[:limit]

    def next_due(self) -> datetime | None:
        """The earliest due time of any timer (for virtual time)."""
        with self._lock:
            dues = [r.next_due for r in self._runs.values() if r.next_due is not None]
            for steps in self._steps.values():
                dues.extend(s.due_at for s in steps.values() if s.due_at is not None)
            return min(dues) if dues else None

    def save_definition(self, workflow: Workflow) -> None:
        with self._lock:
            self._definitions.setdefault((workflow.name, workflow.version), workflow)

    def get_definition(self, name: str, version: str) -> Workflow | None:
        with self._lock:
            return self._definitions.get((name, version))

    def definition_versions(self, name: str) -> list[str]:
        with self._lock:
            return [version for known, version in self._definitions if known == name]

    def register(self, registration: Registration) -> Registration | None:
        with self._lock:
            current = self._registry.get(registration.name)
            if current is not None and not current.retired and current.owner != registration.owner:
                raise OwnedElsewhere(current)
            self._registry[registration.name] = registration
            return current

    def retire(self, name: str, owner: str, resource: str, now: datetime) -> bool:
        with self._lock:
            current = self._registry.get(name)
            if current is None or current.owner != owner or current.resource != resource:
                return False
            self._registry[name] = replace(current, retired=True, published_at=now)
            return True

    def registration(self, name: str) -> Registration | None:
        with self._lock:
            return self._registry.get(name)

    def registrations(self) -> list[Registration]:
        with self._lock:
            return [self._registry[name] for name in sorted(self._registry)]

    # -- concurrency keys (engine.slots) ----------------------------------------------------
    def _check_slot(self, decision: Decision) -> None:
        for change in decision.slot_changes:
            if not change.checked:
                continue
            held = self._held.get(change.key, set())
            moved = self._changes.get(change.key, 0) != change.seen
            if change.op == "queue" and moved:
                self.conflicts += 1
                raise SlotsTaken(f"a slot of {change.key} changed hands since it was read")
            if (
                change.op == "take"
                and change.run_id not in held
                and (len(held) >= change.limit or moved)
            ):
                self.conflicts += 1
                raise SlotsTaken(f"no slot of {change.key} is free since the offer")

    def _check_pending(self, decision: Decision) -> None:
        change = decision.pending
        if change is not None and change.op == "claim" and change.key in self._pending:
            self.conflicts += 1
            raise DebounceHeld(f"run {self._pending[change.key]} of {change.key} waits to start")

    def _change_pending(self, decision: Decision) -> None:
        change = decision.pending
        if change is not None and change.op == "claim":
            self._pending[change.key] = change.run_id
        elif change is not None and self._pending.get(change.key) == change.run_id:
            del self._pending[change.key]

    def pending(self, key: str) -> str | None:
        with self._lock:
            return self._pending.get(key)

    def _change_slot(self, decision: Decision) -> None:
        for change in decision.slot_changes:
            self._change_key(change)

    def _change_key(self, change: SlotChange) -> None:
        held = self._held.setdefault(change.key, set())
        queue = self._queues.setdefault(change.key, {})
        if change.op == "queue":
            queue[change.place] = change.run_id
        elif change.op == "leave":
            queue.pop(change.place, None)
        elif change.op == "take" and change.recent:
            queue.pop(change.place, None)
            self._recent[change.key] = change.recent
            self._changes[change.key] = self._changes.get(change.key, 0) + 1
        elif change.op == "take":
            queue.pop(change.place, None)
            held.add(change.run_id)
            self._changes[change.key] = self._changes.get(change.key, 0) + 1
        else:
            held.discard(change.run_id)
            self._changes[change.key] = self._changes.get(change.key, 0) + 1

    def slots(self, key: str) -> KeySlots:
        with self._lock:
            queue = self._queues.get(key, {})
            first = min(queue, default="")
            return KeySlots(
                tuple(sorted(self._held.get(key, set()))),
                self._changes.get(key, 0),
                queue.get(first),
                first,
                self._recent.get(key, ()),
            )


def _counters(step: StepState) -> tuple[Any, ...]:
    """What a count changes on a for_each parent."""
    usage = (step.usage.cost_usd, step.usage.input_tokens, step.usage.output_tokens)
    return (step.children_succeeded, step.children_failed, step.next_child, step.counted_at, usage)
