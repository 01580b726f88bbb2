"""Offering a concurrency key's free slots to its queue (engine.concurrency): the queue's head
takes one in the commit that starts it, then the next, until no slot is free or nobody waits.
Offers run after every change that can free a slot or fill the queue (a run's end, a run
queued), through the run's outbox, so a crash in between leaves the offer to the sweep.

Each offer reads the key once (its holders, its count of changes, its queue's head) and the
head's take holds only if that count is unchanged at its commit: a run is never started on a
slot freed by an end decided after its own start (its recorded span would overlap that end).

A singleton's key has one slot: in ``skip`` mode a head offered a held key ends skipped; in
``cancel_previous`` mode the offer of a run just queued cancels the runs queued before it, then
the run holding the key, whose end offers the slot to the newcomer."""

from __future__ import annotations

from collections.abc import Callable, Iterator

from stepwell.engine import slots
from stepwell.engine.commands import OfferSlot
from stepwell.engine.decision import Decision
from stepwell.engine.events import CancelRequested, Event, SlotOffered
from stepwell.engine.slots import KeySlots
from stepwell.engine.step_slots import holder_of
from stepwell.store.port import SlotsTaken, Store

MAX_ARRIVALS = 5
"""Reads of its key a new run makes before it joins the queue with an offer of its own."""
MAX_OFFERS = 100
"""Offers per call: each one starts a run, finds the head gone (it ended while queued), or
finds the key changed since it was read (read again)."""


def offer(
    store: Store, handle: Callable[[str, Event], Decision | None], command: OfferSlot
) -> None:
    """Offer the key's free slots to its queue, head first."""
    passed: str | None = None
    for _ in range(MAX_OFFERS):
        key = store.slots(command.key)
        if key.head is None or key.head == passed:
            return
        full = len(key.held) >= command.limit
        if command.place:
            newcomer = command.place.split("#", 2)[2]
            why = f"superseded by run {newcomer} of its key (singleton: cancel_previous)"
            if key.head_place < command.place:
                handle(key.head, CancelRequested(why))  # an older start still waiting
                passed = key.head
                continue
            if key.head_place > command.place:
                return  # the newcomer is gone already: a newer start took over
            if full:
                for holder in key.held:
                    handle(holder, CancelRequested(why))  # its end offers the slot on
                return
        elif full and command.mode != "skip":
            return  # every slot is held: the next end offers again
        run_id, step = holder_of(key.head)
        try:
            offered = SlotOffered(key.changes, key.held if full else (), key.recent, step)
            decision = handle(run_id, offered)
        except SlotsTaken:
            if store.slots(command.key).changes == key.changes:
                return  # refused on the head's own limit: its key is full for it
            continue  # a slot changed hands since the read: read the key again
        if decision is None or not any(c.op == "take" for c in decision.slot_changes):
            passed = key.head  # no longer queued: skipped, or its queue item went with its end


def arrivals(
    store: Store, queued: Decision, decide: Callable[[KeySlots | None], Decision]
) -> Iterator[Decision]:
    """The creations to try, in turn, of a new run ``queued`` for a slot of its key: decided
    on the key as read just before (a free slot taken in the creating commit, or the queue
    joined as the key was), each read again when the store refuses one because a slot
    changed hands in between; last, ``queued`` as it is (with an offer of its own)."""
    change = queued.slot
    run = queued.run
    if change is not None and change.op == "queue" and run and slots.reads_ahead(run.slot):
        for _ in range(MAX_ARRIVALS):
            yield decide(store.slots(change.key))
    yield queued
