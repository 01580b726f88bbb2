"""Offering a concurrency key's free slots to its queue (engine.concurrency): the queue's head
takes one in the commit that starts it, then the next, until no slot is free or nobody waits.
Offers run after every change that can free a slot or fill the queue (a run's end, a run
queued), through the run's outbox, so a crash in between leaves the offer to the sweep."""

from __future__ import annotations

from collections.abc import Callable

from stepwell.engine.decision import Decision
from stepwell.engine.events import Event, SlotOffered
from stepwell.store.port import SlotsTaken, Store

MAX_OFFERS = 100
"""Offers per call: each one starts a run or finds the head gone (it ended while queued)."""


def offer(store: Store, handle: Callable[[str, Event], Decision | None], key: str) -> None:
    """Offer ``key``'s free slots to its queue, head first."""
    passed: str | None = None
    for _ in range(MAX_OFFERS):
        head = store.queue_head(key)
        if head is None or head == passed:
            return
        try:
            decision = handle(head, SlotOffered())
        except SlotsTaken:
            return  # every slot is held: the next end offers again
        if decision is None or decision.slot is None or decision.slot.op != "take":
            passed = head  # no longer queued: its queue item went with its end
