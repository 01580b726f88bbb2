"""The DynamoDB store: every run, step, timeline and definition version in one table.

Over 500 lines: every access pattern of the one table (commits, reads, listings, definitions,
claims) shares its item models and its handling of faults.

Concurrency is optimistic on the run item. A commit is ONE TransactWriteItems: the run item,
put on the condition that its ``seq`` is still the one loaded (and bumped by one), the step
records the decision changed, and one timeline item holding the decision's entries. Two
invocations deciding on one run never both win; the loser gets :class:`Conflict`, reloads and
decides again, so every attempt is recorded, and dispatched, once.

Loads read the run item first (consistent GetItem) and then the step records an event needs
(consistent BatchGetItem): a step written after the run was read was written by a commit that
also bumped ``seq``, so deciding on a stale step record always ends in a Conflict, never in a
lost update. The hot path is key lookups and one transaction; Query serves the rare whole-run
reads (cancel, run failure), the listings, timelines and the due sweep. See docs/storage.md.
"""

from __future__ import annotations

import json
import logging
import os
import random
import secrets
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import Any, cast

from botocore.exceptions import BotoCoreError, ClientError
from pynamodb.exceptions import DoesNotExist, PutError, TransactWriteError, UpdateError
from pynamodb.expressions.condition import size as size_of
from pynamodb.models import Model
from pynamodb.transactions import TransactWrite

from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.models import Workflow
from stepwell.engine.commands import CountItem
from stepwell.engine.decision import Decision, TimelineEntry
from stepwell.engine.slots import KeySlots, Pending, SlotChange
from stepwell.engine.state import RunState, State, StepState
from stepwell.store import codec, faults
from stepwell.store.models import (
    BY_STATUS,
    BY_WORKFLOW,
    BY_WORKFLOW_STATUS,
    EVERY_RUN,
    WAITING_PEOPLE,
    Models,
    bind,
)
from stepwell.store.payloads import Offloader, PayloadStore, threshold_from_env
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
    WriteInDoubt,
)

log = logging.getLogger(__name__)

DEFAULT_RETENTION_DAYS = 90
DUE_SHARDS = 16
"""Partitions of the due index; fixed for a table's life (changing it hides timers)."""
LISTING_SHARDS = 4
"""Partitions per workflow/status in the listing indexes; fixed for a table's life."""
MESSAGE_LIMIT = 2048
"""Timeline messages longer than this are truncated, the full text kept in the payload store."""
TRANSACTION_BYTES = 3_500_000
"""Keep a transaction under DynamoDB's 4 MB, moving payloads out when it would not fit."""
MAX_TRANSACTION_STEPS = 97
"""Step records in one transaction (DynamoDB's limit is 100 items; the run and the timeline item
take two). The engine writes at most 40 per decision."""
SLOTS_PREFIX = "SLOTS#"
SLOTS_SK = "HELD"
QUEUE_PREFIX = "Q#"
DEBOUNCE_PREFIX = "DEBOUNCE#"
PENDING_SK = "PENDING"
"""A concurrency key's items (engine.slots): its slots, and its queue in order."""
_BATCH_GET = 100
BUSY_RETRIES = 4
"""A transaction cancelled only for transient reasons is sent again this many times."""
TRANSIENT_CANCELLATIONS = frozenset({"TransactionConflict", "ThrottlingError"})
CONDITION_FAILED = "ConditionalCheckFailedException"


class DynamoStore:
    """The :class:`~stepwell.store.port.Store` on DynamoDB; large payloads go to ``payloads``
    (none: an item that cannot fit is refused).

    ``table`` defaults to ``STEPWELL_TABLE``; the payload threshold to
    ``STEPWELL_PAYLOAD_THRESHOLD`` (bytes, 32 KB) and retention to ``STEPWELL_RETENTION_DAYS``
    (90). Safe to share between threads.
    """

    def __init__(
        self,
        table: str | None = None,
        *,
        payloads: PayloadStore | None = None,
        region: str | None = None,
        endpoint_url: str | None = None,
        payload_threshold: int | None = None,
        retention_days: int | None = None,
        due_shards: int = DUE_SHARDS,
        listing_shards: int = LISTING_SHARDS,
        message_limit: int = MESSAGE_LIMIT,
    ) -> None:
        table = table or os.environ.get("STEPWELL_TABLE")
        if not table:
            raise ValueError("no table: pass table= or set STEPWELL_TABLE")
        region = (
            region
            or os.environ.get("AWS_REGION")
            or os.environ.get("AWS_DEFAULT_REGION")
            or "us-east-1"
        )
        self.table = table
        self.m: Models = bind(table, region, endpoint_url)
        self.offloader = Offloader(
            payloads,
            threshold=payload_threshold if payload_threshold is not None else threshold_from_env(),
        )
        days = retention_days
        if days is None:
            days = int(os.environ.get("STEPWELL_RETENTION_DAYS", DEFAULT_RETENTION_DAYS))
        self.retention = timedelta(days=days)
        self.due_shards = due_shards
        self.listing_shards = listing_shards
        self.message_limit = message_limit
        self._lock = threading.Lock()
        self._definitions: dict[tuple[str, str], Workflow] = {}
        self.commits = 0
        self.conflicts = 0
        self.faults: Counter[str] = Counter()
        """DynamoDB faults that outlasted botocore's retries, by what they were."""
        self._stamp = 0
        """The last timeline stamp this process gave (see :meth:`_next_stamp`)."""

    @property
    def client(self) -> Any:
        """The DynamoDB client this store sends its requests through (the payload store has
        its own)."""
        return self.m.client

    # -- writing ----------------------------------------------------------------------------
    def create(self, decision: Decision) -> None:
        run = _run_of(decision)
        steps = dict(decision.steps)
        early: list[StepState] = []
        # A new run's records are invisible until its run item exists, so step records that do
        # not fit in the transaction (a rerun copying many ancestors) may go out before it.
        room = MAX_TRANSACTION_STEPS - 2 * len(decision.slot_changes)
        while len(steps) > room:
            early.append(steps.pop(next(reversed(steps))))
        if early:
            if self._stored_seq(run.id) is not None:
                raise Conflict(f"run {run.id} exists")
            self._write_early(run, early)
        self._transact(
            run,
            steps,
            decision.timeline,
            run.seq + 1,
            self.m.run.pk.does_not_exist(),
            "exists",
            slots=decision.slot_changes,
            pending=decision.pending,
        )

    def commit(self, decision: Decision, expected_seq: int) -> None:
        run = _run_of(decision)
        self._transact(
            run,
            decision.steps,
            decision.timeline,
            expected_seq + 1,
            self.m.run.seq == expected_seq,
            f"changed (seq {expected_seq})",
            decision.before,
            slots=decision.slot_changes,
            pending=decision.pending,
        )

    def _transact(
        self,
        run: RunState,
        steps: dict[str, StepState],
        timeline: list[TimelineEntry],
        seq: int,
        condition: Any,
        why: str,
        before: dict[str, StepState | None] | None = None,
        *,
        slots: list[SlotChange] | None = None,
        pending: Pending | None = None,
    ) -> None:
        before = before or {}
        slots = slots or []
        released: dict[str, set[str]] = {}
        for change in slots:
            if change.op == "release":
                released.setdefault(change.key, set()).add(change.run_id)
        items: list[tuple[type[Model], dict[str, Any], tuple[str, ...], str]] = [
            (self.m.run, self._run_attrs(run, seq), codec.RUN_PAYLOADS, _prefix(run.id, "~run", 0))
        ]
        if timeline:
            items.append(
                (
                    self.m.timeline,
                    self._timeline_attrs(run, seq, timeline),
                    ("entries",),
                    _prefix(run.id, "~timeline", seq),
                )
            )
        for _, attrs, fields, prefix in items:
            self.offloader.offload(attrs, fields, prefix)
        updates = {
            key: self._step_update(run, step, before.get(key)) for key, step in steps.items()
        }
        total = sum(codec.item_size(attrs) for _, attrs, _, _ in items) + sum(
            u.size for u in updates.values()
        )
        # Over DynamoDB's 4 MB a transaction: move the largest items' payloads out first.
        largest = sorted(
            [(codec.item_size(i[1]), n, "") for n, i in enumerate(items)]
            + [(u.size, -1, key) for key, u in updates.items()],
            key=lambda c: -c[0],
        )
        for size, index, key in largest:
            if total <= TRANSACTION_BYTES:
                break
            if index >= 0:
                _, attrs, fields, prefix = items[index]
                self.offloader.offload(attrs, fields, prefix, threshold=0)
                total -= size - codec.item_size(attrs)
            else:
                updates[key] = self._step_update(run, steps[key], before.get(key), threshold=0)
                total -= size - updates[key].size
        # A record the decision holds unchanged (a duplicate noted about it: the entries go on
        # the timeline item) has nothing to write, and DynamoDB refuses an update without one.
        updates = {key: update for key, update in updates.items() if update.actions}
        # The run item carries this commit's mark: a sending whose answer was lost is
        # recognised on it (by a later sending, or by ``landed``).
        mine = _write_id()
        items[0][1]["wid"] = mine
        mark = Mark(run.id, None, mine)
        # One token per commit: DynamoDB answers a sending again with the same token as it
        # answered the first (botocore's own retries rely on it), while two deciders with
        # identical decisions still race on the condition.
        token = uuid.uuid4().hex
        busy = sendings = 0
        taking = any(change.checked for change in slots)
        deletes = sum(_deletes(change) for change in slots)
        deletes += 1 if pending is not None and pending.op == "drop" else 0
        # A claim is the last put, after the run and timeline items.
        claim = deletes + len(items) if pending is not None and pending.op == "claim" else -1
        while True:
            transaction = TransactWrite(
                connection=self.m.connection.connection, client_request_token=token
            )
            try:
                with transaction as tx:
                    for index, (model, attrs, _, _) in enumerate(items):
                        if index == 0:
                            tx.save(model(**attrs), condition=condition, return_values="ALL_OLD")
                        else:
                            tx.save(model(**attrs))
                    for update in updates.values():
                        tx.update(update.item, actions=update.actions, condition=update.condition)
                    if pending is not None:
                        self._pending_write(tx, run, pending)
                    # The releases of one key in one commit (a run's end cancelling attempts
                    # that hold it) are one update: DynamoDB takes one operation per item.
                    for key, gone in released.items():
                        self._release(tx, key, gone)
                    for change in slots:
                        if change.op != "release":
                            self._slot_writes(tx, run, change)
            except TransactWriteError as exc:
                reasons = list(exc.cancellation_reasons)
                codes = {r.code for r in reasons if r is not None}
                if "ConditionalCheckFailed" in codes:
                    # DynamoDB is sent the deletes first, then the puts, then the updates.
                    first = reasons[deletes] if len(reasons) > deletes else None
                    if _marked(first.raw_item if first else None, mine):
                        break  # an earlier sending of this commit was applied
                    failed = [i for i, r in enumerate(reasons) if r and r.code != "None"]
                    if failed == [claim]:
                        with self._lock:
                            self.conflicts += 1
                        raise DebounceHeld(f"run {run.id}: another run of its key waits") from None
                    if taking and failed == [len(reasons) - 1]:
                        with self._lock:
                            self.conflicts += 1
                        raise SlotsTaken(f"run {run.id}: every slot of its key is held") from None
                    with self._lock:
                        self.conflicts += 1
                    raise Conflict(f"run {run.id} {why}") from None
                if codes - {"None"} and codes - {"None"} <= TRANSIENT_CANCELLATIONS:
                    # Another request held one of the items for a moment, or DynamoDB throttled
                    # it: nothing was decided against this one's conditions, so it is sent
                    # again (a new run must not take this for "the run exists").
                    if busy < BUSY_RETRIES:
                        _backoff(busy)
                        busy += 1
                        token = uuid.uuid4().hex  # nothing was applied under the old one
                        continue
                    with self._lock:
                        self.conflicts += 1
                    raise Conflict(
                        f"run {run.id}: items stayed busy in other transactions"
                    ) from None
                sendings += 1
                if not faults.retryable(exc):
                    raise
                if sendings == faults.TRIES:
                    raise WriteInDoubt(
                        f"run {run.id}: a commit's answers were lost ({faults.describe(exc)})",
                        mark,
                    ) from exc
                # Maybe applied, maybe not: the same commit sent again applies it once, or
                # finds it applied (its mark on the run item).
                faults.noted(exc, f"a commit of run {run.id}", self.faults, sendings)
                faults.pause(sendings - 1)
                continue
            break
        with self._lock:
            self.commits += 1

    def _write_early(self, run: RunState, records: list[StepState]) -> None:
        """New records of a new run that do not fit in its transaction (a rerun copying many
        ancestors), each written on the condition that it does not exist, before the run item
        makes them visible (8 at a time)."""

        def write(step: StepState) -> None:
            update = self._step_update(run, step, None)
            self.m.connection.update_item(
                codec.run_pk(run.id),
                codec.step_sk(step.key),
                actions=update.actions,
                condition=update.condition,
                return_values="NONE",
            )

        with ThreadPoolExecutor(max_workers=8) as pool:
            list(pool.map(write, records))

    # -- concurrency keys (engine.slots) ----------------------------------------------------
    def _slot_writes(self, tx: TransactWrite, run: RunState, change: SlotChange) -> None:
        """A run's change of its key, in its commit's transaction (the last item of it)."""
        pk = SLOTS_PREFIX + change.key
        held = self.m.slots(pk, SLOTS_SK)
        queued = self.m.queued(
            pk,
            QUEUE_PREFIX + change.place,
            kind="queued",
            run_id=change.run_id,
            expires_at=self._expiry(run),
        )
        holders, changes = self.m.slots.holders, self.m.slots.changes
        same = changes == change.seen
        if change.seen == 0:
            same = changes.does_not_exist() | same
        if change.op == "queue":
            tx.save(queued)
            if change.direct:
                # Queued as the key was read: no release may have slipped in between (its
                # offer would not have seen this run), so no offer of its own is needed.
                tx.update(held, actions=[self.m.slots.kind.set("slots")], condition=same)
        elif change.op == "leave":
            tx.delete(queued)
        elif change.op == "release":
            self._release(tx, change.key, {change.run_id})
        else:
            # The run leaves the queue in the commit that starts it; the slots' update is the
            # transaction's last item, so a refusal is told by its place among the reasons.
            # It holds only if no slot changed hands since the offer read the key.
            free = holders.does_not_exist() | (size_of(holders) < change.limit)  # type: ignore[no-untyped-call]
            if change.recent:  # a throttled start: counted in the key's window, holds nothing
                tx.update(
                    held,
                    actions=[
                        self.m.slots.recent.set(cast(Any, list(change.recent))),
                        changes.add(1),
                        self.m.slots.kind.set("slots"),
                    ],
                    condition=same,
                )
                tx.delete(queued)
                return
            tx.update(
                held,
                actions=[
                    holders.add({change.run_id}),
                    changes.add(1),
                    self.m.slots.kind.set("slots"),
                ],
                condition=(free & same) | holders.contains(change.run_id),
            )
            if not change.direct:  # a run never queued has no queue item
                tx.delete(queued)

    def _release(self, tx: TransactWrite, key: str, gone: set[str]) -> None:
        """Holders of a key give their slots back (each change of hands counted)."""
        slots = self.m.slots
        tx.update(
            slots(SLOTS_PREFIX + key, SLOTS_SK),
            actions=[slots.holders.delete(gone), slots.changes.add(len(gone))],
        )

    def _pending_write(self, tx: TransactWrite, run: RunState, change: Pending) -> None:
        """A debounced run's hold on its key, in its commit's transaction."""
        item = self.m.pending(
            DEBOUNCE_PREFIX + change.key,
            PENDING_SK,
            kind="pending",
            run_id=change.run_id,
            expires_at=self._expiry(run),
        )
        if change.op == "claim":
            tx.save(item, condition=self.m.pending.pk.does_not_exist())
        else:
            tx.delete(item)

    def pending(self, key: str) -> str | None:
        def read() -> str | None:
            try:
                found = self.m.pending.get(DEBOUNCE_PREFIX + key, PENDING_SK, consistent_read=True)
            except DoesNotExist:
                return None
            return str(found.run_id)

        held: str | None = self._retried(read, f"the debounce of {key}")
        return held

    def slots(self, key: str) -> KeySlots:
        model = self.m.slots
        # The key's slots item (HELD) sorts just before its queue (Q#...): one Query reads it
        # and the queue's head.
        last = QUEUE_PREFIX[:-1] + chr(ord(QUEUE_PREFIX[-1]) + 1)

        def read() -> KeySlots:
            held: tuple[str, ...] = ()
            recent: tuple[str, ...] = ()
            changes = 0
            for item in model.query(
                SLOTS_PREFIX + key,
                model.sk.between(SLOTS_SK, last),
                consistent_read=True,
                limit=2,
            ):
                if item.sk == SLOTS_SK:
                    held, changes = tuple(sorted(item.holders or ())), int(item.changes or 0)
                    recent = tuple(str(at) for at in item.recent or ())
                else:
                    place = item.sk.removeprefix(QUEUE_PREFIX)
                    return KeySlots(held, changes, place.split("#", 2)[2], place, recent)
            return KeySlots(held, changes, None, "", recent)

        found: KeySlots = self._retried(read, f"the slots of {key}")
        return found

    def _stored_seq(self, run_id: str) -> int | None:
        def read() -> int | None:
            try:
                found = self.m.run.get(
                    codec.run_pk(run_id),
                    codec.RUN_SK,
                    consistent_read=True,
                    attributes_to_get=["seq"],
                )
            except DoesNotExist:
                return None
            return int(found.seq)

        seq: int | None = self._retried(read, f"run {run_id}")
        return seq

    # -- one step at a time -----------------------------------------------------------------
    def write_step(self, run: RunState, decision: Decision) -> None:
        """A decision that changed one step alone: one UpdateItem of that step (what changed,
        its timeline entries appended), on the condition that the step is still the one
        loaded; Conflict otherwise. No transaction and nothing on the run item."""
        key = decision.single_step
        if key is None:
            raise ValueError("write_step takes a decision that writes exactly one step")
        update = self._step_update(
            run, decision.steps[key], decision.before.get(key), decision.timeline
        )
        if not update.actions:
            return  # nothing changed and nothing to note: nothing to send
        self._update_once(run.id, key, update)
        with self._lock:
            self.commits += 1

    def _update_once(self, run_id: str, key: str, update: _StepUpdate) -> None:
        """Send a step's update until DynamoDB answers: it carries a write id of its own, so a
        sending whose answer was lost is recognised when the next one finds its condition
        failed (DynamoDB returns the item as it is, with the mark). Conflict when another
        write changed the step; WriteInDoubt when no sending got an answer."""
        step = self.m.step
        mine = _write_id()
        condition = update.condition
        if update.notes_only:
            # Notes are appended: a second sending must not find the item as it was.
            condition &= step.wid.does_not_exist() | (step.wid != mine)
        request = self.m.connection.connection.get_operation_kwargs(
            self.table,
            codec.run_pk(run_id),
            codec.step_sk(key),
            actions=[*update.actions, step.wid.set(mine)],
            condition=condition,
            return_values_on_condition_failure="ALL_OLD",
        )
        for sending in range(1, faults.TRIES + 1):
            try:
                self.m.client.update_item(**request)
                return
            except (ClientError, BotoCoreError) as exc:
                code = faults.error_code(exc)
                if code == CONDITION_FAILED and _marked(faults.answer(exc).get("Item"), mine):
                    return  # an earlier sending was applied
                if code in (CONDITION_FAILED, "TransactionConflictException"):
                    with self._lock:
                        self.conflicts += 1
                    raise Conflict(f"run {run_id}: step {key} changed") from None
                if not faults.retryable(exc):
                    raise
                if sending == faults.TRIES:
                    raise WriteInDoubt(
                        f"run {run_id}: the write of step {key} got no answer "
                        f"({faults.describe(exc)})",
                        Mark(run_id, key, mine),
                    ) from exc
                faults.noted(exc, f"step {key} of run {run_id}", self.faults, sending)
                faults.pause(sending - 1)

    def landed(self, mark: Mark) -> bool:
        """Whether the item still carries the write's mark (a later write replaces it: the
        caller asks at once, before anything else writes the run)."""
        sk = codec.RUN_SK if mark.key is None else codec.step_sk(mark.key)
        found = self._retried(
            lambda: self.m.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": codec.run_pk(mark.run_id)}, "sk": {"S": sk}},
                ConsistentRead=True,
                ProjectionExpression="wid",
            ),
            f"the mark of run {mark.run_id}",
        )
        return _marked(found.get("Item"), mark.write_id)

    def _retried(self, call: Callable[[], Any], what: str) -> Any:
        """A read (or a write that is safe to send twice), sent again on a retryable fault."""
        return faults.retried(call, what, self.faults)

    def count_item(self, run_id: str, count: CountItem, now: datetime) -> StepState | None:
        """Count a for_each child's end on its parent: one UpdateItem of atomic adds (one more
        ended child, one more slot, the child's usage; ``counted_at`` set) on the condition
        that the parent still runs, returning the parent as it is after the update (None when
        the condition failed: the fan-out is over). Mirrors engine.fanout.counted.

        An add is never sent twice (one whose answer was lost may have counted): after a fault
        the parent is read, and if it still carries this count's mark, that is the parent after
        it; otherwise the error is raised, and the fan-out's watch recounts."""
        step = self.m.step
        mine = _write_id()
        actions = [
            (step.children_succeeded if count.succeeded else step.children_failed).add(1),
            step.next_child.add(1),
            step.counted_at.set(codec.encode_time(now)),
            step.wid.set(mine),
        ]
        if count.cost_usd:
            actions.append(step.cost_usd.add(count.cost_usd))
        if count.input_tokens:
            actions.append(step.input_tokens.add(count.input_tokens))
        if count.output_tokens:
            actions.append(step.output_tokens.add(count.output_tokens))
        condition = (step.status == "running") & step.items_total.exists()
        for attempt in range(10):
            try:
                data = self.m.connection.update_item(
                    codec.run_pk(run_id),
                    codec.step_sk(count.parent_key),
                    actions=actions,
                    condition=condition,
                    return_values="ALL_NEW",
                )
                break
            except UpdateError as exc:
                code = faults.error_code(exc)
                if code == CONDITION_FAILED:
                    return None
                if code == "TransactionConflictException":
                    _backoff(attempt)  # a transaction on the parent holds it for a moment
                    continue
                if faults.retryable(exc):
                    after = self._counted(run_id, count.parent_key, mine)
                    if after is not None:
                        return after
                raise
        else:
            raise Conflict(f"run {run_id}: {count.parent_key} stayed busy in transactions")
        return self._counters_of(data["Attributes"])

    def _counted(self, run_id: str, key: str, mine: str) -> StepState | None:
        """The parent as a count whose answer was lost left it, if it still carries its mark."""
        found = self._retried(
            lambda: self.m.client.get_item(
                TableName=self.table,
                Key={"pk": {"S": codec.run_pk(run_id)}, "sk": {"S": codec.step_sk(key)}},
                ConsistentRead=True,
            ),
            f"step {key} of run {run_id}",
        ).get("Item")
        return self._counters_of(found) if _marked(found, mine) else None

    def _counters_of(self, raw: dict[str, Any]) -> StepState:
        """A parent's counters decide what follows a count: its payloads (a ctx.for_each's
        input is its items) are not decoded for each count."""
        return self._step_from({k: v for k, v in raw.items() if k not in codec.STEP_PAYLOADS})

    def wake_replay(self, run_id: str, attempt: int) -> bool:
        """One UpdateItem of the run's own step: SET ``wake``, ADD ``rev`` 1, on the condition
        that attempt ``attempt`` still runs. Sent again on a fault: a wake set twice is one."""
        step = self.m.step

        def wake() -> bool:
            try:
                self.m.connection.update_item(
                    codec.run_pk(run_id),
                    codec.step_sk(WORKFLOW_KEY),
                    actions=[step.wake.set(True), step.rev.add(1)],
                    condition=(step.status == "running") & (step.attempt == attempt),
                    return_values="NONE",
                )
            except UpdateError as exc:
                if faults.error_code(exc) == CONDITION_FAILED:
                    return False
                raise
            return True

        woken: bool = self._retried(wake, f"the replay of run {run_id}")
        if woken:
            with self._lock:
                self.commits += 1
        return woken

    def _step_update(
        self,
        run: RunState,
        step: StepState,
        before: StepState | None,
        timeline: Sequence[TimelineEntry] = (),
        threshold: int | None = None,
    ) -> _StepUpdate:
        """The update of a step item from ``before`` (as loaded; None: new) to ``step``: SET
        what changed, REMOVE what is gone, bump ``rev``, append ``timeline`` to ``tl``; on the
        condition that the item is still at ``before``'s revision (and, when the update sets a
        counter of a for_each parent, that no count came in since it was loaded)."""
        model = self.m.step
        new = self._step_attrs(run, step)
        old = self._step_attrs(run, before) if before is not None else {}
        fixed = ("pk", "sk", "rev")
        changed = {n: v for n, v in new.items() if n not in fixed and old.get(n) != v}
        removed = [n for n in old if n not in new and n not in fixed]
        if step.is_fanout and "input" in changed and self.offloader.store is not None:
            # Every count of a fan-out's children updates its parent, at the cost of the
            # parent's size: its input (a ctx.for_each's items) lives in the payload store.
            self.offloader.offload(
                changed, ["input"], _prefix(run.id, step.key, step.attempt), threshold=0
            )
        self.offloader.offload(
            changed,
            [f for f in codec.STEP_PAYLOADS if f in changed],
            _prefix(run.id, step.key, step.attempt),
            threshold,
        )
        actions: list[Any] = [getattr(model, n).set(v) for n, v in changed.items()]
        actions += [getattr(model, n).remove() for n in removed]
        notes_only = before is not None and not changed and not removed
        if not notes_only:
            actions.append(model.rev.add(1))
        stamp = self._next_stamp(timeline)
        entries = [
            codec.dumps({**entry, "stamp": stamp})
            for entry in self._entry_dicts(
                run, f"{_prefix(run.id, step.key, step.attempt)}/tl", timeline
            )
        ]
        if entries:
            actions.append(model.tl.set((model.tl | []).append(entries)))
        condition: Any
        if notes_only:
            # Only timeline entries (a duplicate result noted): nothing to be stale about.
            condition = model.pk.exists()
        elif before is None:
            condition = model.pk.does_not_exist()
        elif before.rev:
            condition = model.rev == before.rev
        else:
            condition = model.pk.exists() & model.rev.does_not_exist()
        touched = set(changed) | set(removed)
        if before is not None and before.is_fanout and touched & codec.COUNTERS:
            seen = old.get("counted_at")
            condition &= (
                model.counted_at == seen if seen is not None else model.counted_at.does_not_exist()
            )
        size = codec.item_size(changed) + sum(len(e) for e in entries)
        item = model(codec.run_pk(run.id), codec.step_sk(step.key))
        return _StepUpdate(item, actions, condition, size, notes_only)

    # -- items ------------------------------------------------------------------------------
    def _run_attrs(self, run: RunState, seq: int) -> dict[str, Any]:
        attrs = codec.run_to_attrs(run)
        slot = codec.shard(run.id, self.listing_shards)
        attrs.update(
            pk=codec.run_pk(run.id),
            sk=codec.RUN_SK,
            kind="run",
            seq=seq,
            wf_pk=f"WF#{run.workflow}#{slot}",
            st_pk=f"ST#{run.status}#{slot}",
            ws_pk=f"WS#{run.workflow}#{run.status}#{slot}",
            all_pk=f"ALL#{slot}",
            list_sk=codec.list_sk(run),
        )
        self._set_due(attrs, run.id, run.next_due)  # its timeout or its outbox's redelivery
        attrs["expires_at"] = self._expiry(run)
        return attrs

    def _step_attrs(self, run: RunState, step: StepState) -> dict[str, Any]:
        attrs = codec.step_to_attrs(step)
        attrs.update(pk=codec.run_pk(run.id), sk=codec.step_sk(step.key), kind="step")
        self._set_due(attrs, run.id, step.due_at)
        # Sparse index: in it while the step waits for people, out in the write that ends it.
        waiting = codec.waiting_sk(run.id, step)
        if waiting is not None:
            attrs["wp_pk"] = f"WP#{codec.shard(run.id, self.listing_shards)}"
            attrs["list_sk"] = waiting
        attrs["expires_at"] = self._expiry(run)
        return attrs

    def _entry_dicts(
        self, run: RunState, prefix: str, entries: Sequence[TimelineEntry]
    ) -> list[dict[str, Any]]:
        """Timeline entries as stored: long messages truncated, the full text kept aside."""
        data = [codec.entry_to_dict(e) for e in entries]
        for index, entry in enumerate(data):
            message = entry.get("message", "")
            if len(message) <= self.message_limit:
                continue
            note = f"truncated from {len(message)} characters"
            if self.offloader.store is not None:
                uri = self.offloader.put_text(prefix, f"message-{index}", codec.dumps(message))
                entry["data"] = {**entry.get("data", {}), "message_ref": uri}
                note += f"; full text: {uri}"
            entry["message"] = f"{message[: self.message_limit]}… [{note}]"
        return data

    def _next_stamp(self, entries: Sequence[TimelineEntry]) -> int:
        """The order of a write's timeline entries among the run's others: their time in
        microseconds, made strictly greater than any stamp this process gave before, so
        entries of one instant keep the order they were written in (the timeline merges the
        run's items by stamp)."""
        at = max((codec.micros(e.at) for e in entries), default=0)
        with self._lock:
            self._stamp = max(at, self._stamp + 1)
            return self._stamp

    def _timeline_attrs(
        self, run: RunState, seq: int, entries: list[TimelineEntry]
    ) -> dict[str, Any]:
        data = self._entry_dicts(run, _prefix(run.id, "~timeline", seq), entries)
        attrs: dict[str, Any] = {
            "stamp": self._next_stamp(entries),
            "pk": codec.run_pk(run.id),
            "sk": codec.timeline_sk(seq),
            "kind": "timeline",
            "seq": seq,
            "entries": codec.dumps(data),
            "expires_at": self._expiry(run),
        }
        return attrs

    def _set_due(self, attrs: dict[str, Any], run_id: str, due_at: datetime | None) -> None:
        # Sparse index: the attributes exist only while there is a due time.
        if due_at is not None:
            attrs["due_pk"] = f"DUE#{codec.shard(run_id, self.due_shards)}"
            attrs["due_us"] = codec.micros(due_at)

    def _expiry(self, run: RunState) -> int:
        """A run's items are kept until its deadline plus the retention: known at its start, so
        every item carries its TTL from its first write and nothing stamps them at the end."""
        return int(((run.deadline or run.created_at) + self.retention).timestamp())

    # -- reading ----------------------------------------------------------------------------
    def load(self, run_id: str, keys: Iterable[str]) -> State:
        run = self.get_run(run_id)
        if run is None:
            raise RunNotFound(run_id)
        state = State(run=run)
        self._fill(state, set(keys))
        return state

    def load_steps(self, run_id: str, keys: Iterable[str], run: RunState | None = None) -> State:
        """The run item (unless ``run`` is given) and the named steps in ONE BatchGetItem
        (consistent): a decision of one step alone does not depend on the run's ``seq``, only
        on that step's revision."""
        pk = codec.run_pk(run_id)
        wanted = sorted(set(keys))
        requested = [(pk, codec.step_sk(k)) for k in wanted]
        if run is None:
            requested.insert(0, (pk, codec.RUN_SK))
        else:
            run = run.copy()
        steps: dict[str, StepState] = {}
        for raw in self._batch_get(self.m.step, requested, True):
            if raw["sk"]["S"] == codec.RUN_SK:
                run = self._run_from(self.m.run.from_raw_data(raw))
            else:
                step = self._step_from(raw)
                steps[step.key] = step
        if run is None:
            raise RunNotFound(run_id)
        return State(run=run, steps=steps, absent={k for k in wanted if k not in steps})

    def load_more(self, state: State, keys: frozenset[str] | None) -> None:
        if keys is None:
            state.steps = {step.key: step for step in self.steps(state.run.id)}
            state.complete = True
        else:
            self._fill(state, set(keys))

    def _fill(self, state: State, keys: set[str]) -> None:
        wanted = sorted(k for k in keys if k not in state.steps and k not in state.absent)
        pk = codec.run_pk(state.run.id)
        requested = [(pk, codec.step_sk(k)) for k in wanted]
        if not requested:
            return
        for raw in self._batch_get(self.m.step, requested, True):
            step = self._step_from(raw)
            state.steps[step.key] = step
        state.absent.update(k for k in wanted if k not in state.steps)

    def _batch_get(
        self, model: type[Model], keys: list[tuple[str, str]], consistent: bool
    ) -> list[dict[str, Any]]:
        """Raw items of ``keys``, 100 per request, unprocessed keys retried with backoff."""
        out: list[dict[str, Any]] = []
        connection = model._get_connection()
        for start in range(0, len(keys), _BATCH_GET):
            pending = [{"pk": pk, "sk": sk} for pk, sk in keys[start : start + _BATCH_GET]]
            for attempt in range(10):
                send = partial(connection.batch_get_item, cast(Any, pending), consistent)
                data = self._retried(send, f"{len(pending)} items")
                out.extend(data.get("Responses", {}).get(self.table, []))
                left = data.get("UnprocessedKeys", {}).get(self.table, {}).get("Keys", [])
                pending = [{"pk": k["pk"]["S"], "sk": k["sk"]["S"]} for k in left]
                if not pending:
                    break
                _backoff(attempt)
            else:
                raise RuntimeError(f"{len(pending)} keys left unprocessed by BatchGetItem")
        return out

    def _step_from(self, raw: dict[str, Any]) -> StepState:
        attrs = self.m.step.from_raw_data(raw).attribute_values
        return codec.step_from_attrs(self.offloader.resolve(attrs, codec.STEP_PAYLOADS))

    def _run_from(self, item: Model) -> RunState:
        return codec.run_from_attrs(
            self.offloader.resolve(item.attribute_values, codec.RUN_PAYLOADS)
        )

    def get_run(self, run_id: str) -> RunState | None:
        def read() -> Model | None:
            try:
                return self.m.run.get(codec.run_pk(run_id), codec.RUN_SK, consistent_read=True)
            except DoesNotExist:
                return None

        item = self._retried(read, f"run {run_id}")
        return None if item is None else self._run_from(item)

    def steps(self, run_id: str) -> list[StepState]:
        step = self.m.step
        found = self._retried(
            lambda: list(
                step.query(
                    codec.run_pk(run_id),
                    step.sk.startswith(codec.STEP_PREFIX),
                    consistent_read=True,
                )
            ),
            f"the steps of run {run_id}",
        )
        return [
            codec.step_from_attrs(
                self.offloader.resolve(item.attribute_values, codec.STEP_PAYLOADS)
            )
            for item in found
        ]

    def timeline(
        self, run_id: str, cursor: str | None = None, limit: int = 100, *, follow: bool = False
    ) -> Page:
        """Entries in order from ``cursor``. The cursor is None at the end, unless ``follow``:
        then the last page's cursor points past the last entry, so a client polls with it.

        A run's entries live in its timeline items (one per run-level commit) and on the step
        items written alone (``tl``); they are merged by their writes' stamps (time, kept in
        write order within a process)."""
        limit = max(1, limit)
        after = codec.decode_cursor(cursor, "timeline", run_id) if cursor else None
        merged: list[tuple[list[Any], TimelineEntry]] = []
        for raw in self._partition(run_id, "sk, #seq, entries, tl, stamp"):
            sk = raw["sk"]["S"]
            if sk.startswith(codec.TIMELINE_PREFIX):
                seq = int(raw["seq"]["N"])
                text = self.offloader.resolve({"entries": raw["entries"]["S"]}, ("entries",))
                batch = codec.decode_entries(text["entries"])
                stamp = int(raw["stamp"]["N"]) if "stamp" in raw else codec.micros(batch[0].at)
                for n, entry in enumerate(batch):
                    merged.append(([stamp, 0, seq, "", n], entry))
            elif sk.startswith(codec.STEP_PREFIX) and "tl" in raw:
                key = sk.removeprefix(codec.STEP_PREFIX)
                for n, value in enumerate(raw["tl"]["L"]):
                    data = json.loads(value["S"])
                    entry = codec.entry_from_dict(data)
                    merged.append(([int(data["stamp"]), 1, 0, key, n], entry))
        merged.sort(key=lambda pair: pair[0])
        if after is not None:
            merged = [pair for pair in merged if pair[0] > after]
        page = merged[:limit]
        more = len(merged) > limit
        position = page[-1][0] if page else (after or [-1, 0, 0, "", 0])
        if more or follow:
            return Page([e for _, e in page], codec.encode_cursor("timeline", run_id, position))
        return Page([e for _, e in page], None)

    def _partition(self, run_id: str, projection: str) -> Iterator[dict[str, Any]]:
        """Every item of a run's partition (raw, consistent), with ``projection`` only."""
        request: dict[str, Any] = {
            "TableName": self.table,
            "KeyConditionExpression": "pk = :pk",
            "ExpressionAttributeValues": {":pk": {"S": codec.run_pk(run_id)}},
            "ConsistentRead": True,
            "ProjectionExpression": projection,
        }
        if "#seq" in projection:
            request["ExpressionAttributeNames"] = {"#seq": "seq"}
        while True:
            data = self._retried(lambda: self.m.client.query(**request), f"run {run_id}")
            yield from data.get("Items", [])
            if "LastEvaluatedKey" not in data:
                return
            request["ExclusiveStartKey"] = data["LastEvaluatedKey"]

    def due(self, now: Any, limit: int = 100) -> list[Due]:
        """Timers due at ``now``: one Query per shard of the due index, merged by due time. A
        shard whose Query fails is logged and left for the next sweep; the others are read (if
        every one fails, the error is raised)."""
        item = self.m.item
        bound = codec.micros(now)
        found: list[Due] = []
        failures: list[Exception] = []
        for slot in range(self.due_shards):
            try:
                query = partial(item.due.query, f"DUE#{slot}", item.due_us <= bound, limit=limit)
                hits = self._retried(partial(_listed, query), f"due index shard {slot}")
            except Exception as exc:  # a DynamoDB fault on one shard
                log.warning("due index shard %d unreadable: %s", slot, exc)
                failures.append(exc)
                continue
            for hit in hits:
                # The run item's due time (its timeout, its outbox, its watch) is the run's own.
                run_own = hit.sk == codec.RUN_SK
                key = None if run_own else hit.sk.removeprefix(codec.STEP_PREFIX)
                found.append(
                    Due(codec.run_id_of(hit.pk), key, codec.from_micros(int(hit.due_us or 0)))
                )
        if failures and len(failures) == self.due_shards:
            raise failures[0]
        found.sort(key=lambda d: d.at)
        return found[:limit]

    # -- listings ---------------------------------------------------------------------------
    def runs(
        self,
        workflow: str | None = None,
        status: str | None = None,
        cursor: str | None = None,
        limit: int = 50,
    ) -> Page:
        """One listing index each: of a workflow (in a status), in a status, every run."""
        if workflow and status:
            return self._listing(BY_WORKFLOW_STATUS, f"WS#{workflow}#{status}", cursor, limit)
        if workflow:
            return self._listing(BY_WORKFLOW, f"WF#{workflow}", cursor, limit)
        if status:
            return self._listing(BY_STATUS, f"ST#{status}", cursor, limit)
        return self._listing(EVERY_RUN, "ALL", cursor, limit)

    def waiting_for_people(self, cursor: str | None = None, limit: int = 50) -> Page:
        """The steps waiting for people, newest first: ``(run, step)`` pairs read from the
        waiting_people index (one Query per shard) and one BatchGetItem of their items."""
        taken, next_cursor = self._merged(WAITING_PEOPLE, "WP", cursor, limit)
        keys = [(pk, sk) for _, pk, sk in taken]
        keys += sorted({(pk, codec.RUN_SK) for _, pk, _ in taken})
        raws = {(r["pk"]["S"], r["sk"]["S"]): r for r in self._batch_get(self.m.step, keys, False)}
        found = []
        for _, pk, sk in taken:
            run_raw, step_raw = raws.get((pk, codec.RUN_SK)), raws.get((pk, sk))
            if run_raw is None or step_raw is None:
                continue  # gone since the index was read (its run expired)
            run = self._run_from(self.m.run.from_raw_data(run_raw))
            step = self._step_from(step_raw)
            if codec.waiting_sk(run.id, step) is not None:  # the index is read eventually
                found.append((run, step))
        return Page(found, next_cursor)

    def _listing(self, index_name: str, base: str, cursor: str | None, limit: int) -> Page:
        """Newest first across the listing shards, each run read once."""
        taken, next_cursor = self._merged(index_name, base, cursor, limit)
        raws = self._batch_get(self.m.run, [(pk, codec.RUN_SK) for _, pk, _ in taken], False)
        by_pk = {raw["pk"]["S"]: raw for raw in raws}
        runs = [
            self._run_from(self.m.run.from_raw_data(by_pk[pk])) for _, pk, _ in taken if pk in by_pk
        ]
        return Page(runs, next_cursor)

    def _merged(
        self, index_name: str, base: str, cursor: str | None, limit: int
    ) -> tuple[list[tuple[str, str, str]], str | None]:
        """Newest first across the listing shards: each shard is read backwards from its own
        bound, the heads are merged, and the cursor keeps every shard's bound. Returns the
        ``(sort key, pk, sk)`` of each item taken, and the next cursor."""
        limit = max(1, limit)
        if cursor:
            bounds: dict[str, str | None] = codec.decode_cursor(cursor, index_name, base)
        else:
            bounds = {str(slot): None for slot in range(self.listing_shards)}
        index = getattr(self.m.run, index_name)
        range_key = self.m.run.list_sk
        heads: list[tuple[str, str, str, str]] = []
        exhausted: set[str] = set()
        for slot, bound in bounds.items():
            result = index.query(
                f"{base}#{slot}",
                range_key < bound if bound is not None else None,
                scan_index_forward=False,
                limit=limit,
            )
            hits = [(str(hit.list_sk), str(hit.pk), str(hit.sk), slot) for hit in result]
            heads.extend(hits)
            if len(hits) < limit and result.last_evaluated_key is None:
                exhausted.add(slot)
        heads.sort(reverse=True)
        taken = heads[:limit]
        for sort_key, _, _, slot in taken:
            bounds[slot] = sort_key
        left = {h[3] for h in heads[limit:]}
        bounds = {s: b for s, b in bounds.items() if s not in exhausted or s in left}
        next_cursor = codec.encode_cursor(index_name, base, bounds) if bounds else None
        return [(sort_key, pk, sk) for sort_key, pk, sk, _ in taken], next_cursor

    # -- definitions ------------------------------------------------------------------------
    def save_definition(self, workflow: Workflow) -> None:
        key = (workflow.name, workflow.version)
        with self._lock:
            if key in self._definitions:
                return
        attrs: dict[str, Any] = {
            "pk": codec.definition_pk(workflow.name),
            "sk": codec.definition_sk(workflow.version),
            "kind": "definition",
            "name": workflow.name,
            "version": workflow.version,
            "body": codec.dumps(workflow.model_dump(mode="json")),
        }
        self.offloader.offload(attrs, ("body",), f"definitions/{workflow.name}/{workflow.version}")
        definition = self.m.definition

        def save() -> None:
            try:
                definition(**attrs).save(condition=definition.pk.does_not_exist())
            except PutError as exc:
                if faults.error_code(exc) != CONDITION_FAILED:
                    raise  # (saved already: the version is immutable, so it is this one)

        self._retried(save, f"definition {workflow.name} {workflow.version}")
        with self._lock:
            self._definitions[key] = workflow

    def get_definition(self, name: str, version: str) -> Workflow | None:
        with self._lock:
            known = self._definitions.get((name, version))
        if known is not None:
            return known

        def read() -> Model | None:
            try:
                return self.m.definition.get(
                    codec.definition_pk(name), codec.definition_sk(version), consistent_read=True
                )
            except DoesNotExist:
                return None

        item = self._retried(read, f"definition {name} {version}")
        if item is None:
            return None
        body = self.offloader.resolve({"body": item.body}, ("body",))["body"]
        workflow = Workflow.model_validate(json.loads(body))
        with self._lock:
            self._definitions[(name, version)] = workflow
        return workflow

    # -- published workflows ------------------------------------------------------------------
    def definition_versions(self, name: str) -> list[str]:
        """One Query of the workflow's partition, keys only."""
        model = self.m.definition
        prefix = codec.definition_sk("")
        found = self._retried(
            lambda: _listed(
                lambda: model.query(
                    codec.definition_pk(name),
                    model.sk.startswith(prefix),
                    attributes_to_get=["pk", "sk"],
                )
            ),
            f"the versions of {name}",
        )
        return [str(item.sk).removeprefix(prefix) for item in found]

    def register(self, registration: Registration) -> Registration | None:
        current = self.registration(registration.name)
        model = self.m.workflow
        item = model(
            pk=codec.WORKFLOWS_PK,
            sk=codec.workflow_sk(registration.name),
            kind="workflow",
            name=registration.name,
            version=registration.version,
            status="retired" if registration.retired else "active",
            owner=registration.owner,
            resource=registration.resource,
            published_at=registration.published_at.isoformat(),
            problems=list(registration.problems) or None,
        )
        try:
            item.save(
                condition=model.pk.does_not_exist()
                | (model.owner == registration.owner)
                | (model.status == "retired")
            )
        except PutError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            holder = self.registration(registration.name)
            if holder is None:  # retired and removed meanwhile: nothing holds it
                raise Conflict(registration.name) from None
            raise OwnedElsewhere(holder) from None
        return current

    def retire(self, name: str, owner: str, resource: str, now: datetime) -> bool:
        model = self.m.workflow
        item = model(pk=codec.WORKFLOWS_PK, sk=codec.workflow_sk(name))
        try:
            item.update(
                actions=[model.status.set("retired"), model.published_at.set(now.isoformat())],
                condition=(model.owner == owner) & (model.resource == resource),
            )
        except UpdateError as exc:
            if exc.cause_response_code != "ConditionalCheckFailedException":
                raise
            return False
        return True

    def registration(self, name: str) -> Registration | None:
        try:
            item = self.m.workflow.get(
                codec.WORKFLOWS_PK, codec.workflow_sk(name), consistent_read=True
            )
        except DoesNotExist:
            return None
        return _registration(item)

    def registrations(self) -> list[Registration]:
        return [_registration(item) for item in self.m.workflow.query(codec.WORKFLOWS_PK)]


def _registration(item: Any) -> Registration:
    return Registration(
        name=item.name,
        version=item.version,
        owner=item.owner,
        resource=item.resource,
        published_at=datetime.fromisoformat(item.published_at),
        retired=item.status == "retired",
        problems=tuple(item.problems or ()),
    )


@dataclass(frozen=True)
class _StepUpdate:
    """One step item's UpdateItem: the item's keys, actions, condition, bytes it sets."""

    item: Model
    actions: list[Any]
    condition: Any
    size: int
    notes_only: bool = False
    """Only timeline entries to append (nothing to be stale about)."""


def _run_of(decision: Decision) -> RunState:
    if decision.run is None:
        raise ValueError("a decision to write needs its run record")
    return decision.run


def _prefix(run_id: str, key: str, attempt: int) -> str:
    return f"runs/{run_id}/{key}/{attempt}"


def _listed(query: Callable[[], Iterable[Any]]) -> list[Any]:
    """Every result of a query (read now, so that a fault is the query's)."""
    return list(query())


def _write_id() -> str:
    """A write's own mark: 72 random bits in 12 characters."""
    return secrets.token_urlsafe(9)


def _marked(item: dict[str, Any] | None, mine: str) -> bool:
    """Whether a raw item carries the write id ``mine``."""
    return bool(item) and (item or {}).get("wid", {}).get("S") == mine


def _backoff(attempt: int) -> None:
    time.sleep(min(1.0, 0.02 * 2**attempt) * random.random())


__all__ = ["DynamoStore"]


def _deletes(change: SlotChange) -> bool:
    """Whether a change of a key deletes an item (DynamoDB lists a transaction's deletes
    first among its reasons for a refusal)."""
    return change.op == "leave" or (change.op == "take" and not change.direct)
