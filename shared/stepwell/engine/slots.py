"""What a run of a workflow with ``concurrency`` changes of its key's slots and queue.

A key's slots are one item (the runs that hold one, a set no larger than the limit, and how
many runs are queued) and its queue one item per queued run, ordered by priority (higher first)
then by time. Each change is written in the same transaction as the run item, so a run holds a
slot exactly while it is started and not ended, and is in the queue exactly while it is
``queued``: no slot can leak, whatever fails between two writes.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from stepwell.engine.commands import OfferSlot

Op = Literal["queue", "take", "release", "leave"]

PRIORITY_BOUND = 1_000_000_000
"""Priorities lie strictly within ±this (the queue's order is the text of its sort keys)."""


@dataclass(frozen=True)
class SlotChange:
    """One change of a key's slots or queue, made with the run's own commit.

    ``queue``: the run joins the queue. ``take``: it leaves the queue with a slot, on the
    condition that fewer than ``limit`` runs hold one (else the store raises ``SlotsTaken``).
    ``release``: it gives its slot back. ``leave``: it leaves the queue without one."""

    op: Op
    key: str
    run_id: str
    limit: int
    place: str
    seen: int = 0
    """A take: the key's count of changes its offer read. The take holds only if no slot
    changed hands since (a run's recorded start is then later than every end that made room
    for it: a take decided before a release must not land on the slot that release frees)."""
    recent: tuple[str, ...] = ()
    """A throttled take: the key's latest starts (ISO times, oldest first), this one's
    included; a throttled key has no holders."""
    direct: bool = False
    """Made as the run is created, from the key as read then (``seen``): a take of a free
    slot by a run that was never queued, or a queue on the condition that no slot changed
    hands since the read (else ``SlotsTaken``), which needs no offer of its own: every
    release after it offers the key to the queue it is in."""

    @property
    def checked(self) -> bool:
        """The store refuses the commit with ``SlotsTaken`` when the key is not as read."""
        return self.op == "take" or self.direct


@dataclass(frozen=True)
class KeySlots:
    """What an offer reads of a key in one request: the runs holding its slots, how many takes
    and releases it has seen, and the run first in its queue."""

    held: tuple[str, ...]
    changes: int
    head: str | None
    head_place: str = ""
    """The head's place in the queue (:func:`place`)."""
    recent: tuple[str, ...] = ()
    """A throttled key: its latest starts (ISO times, oldest first)."""


def reads_ahead(slot: dict[str, Any] | None) -> bool:
    """Whether a new run of this key is decided on the key as read as it is made (a run of
    ``concurrency``): a singleton's and a throttled key's offer decides more than a slot."""
    return slot is not None and "mode" not in slot and "period" not in slot


def key_of(workflow: str, key: str) -> str:
    """A key's name across workflows."""
    return f"{workflow}#{key}"


def place(priority: int, at: datetime, run_id: str) -> str:
    """A queued run's sort key: higher priority first, then earlier, then by id."""
    return f"{PRIORITY_BOUND - priority:010d}#{at.isoformat()}#{run_id}"


def change(
    op: Op, slot: dict[str, Any], run_id: str, seen: int = 0, recent: tuple[str, ...] = ()
) -> SlotChange:
    """``op`` on the slot a run record keeps (``RunState.slot``)."""
    key, limit, place = str(slot["key"]), int(slot["limit"]), str(slot["place"])
    return SlotChange(op, key, run_id, limit, place, seen, recent)


def offer(slot: dict[str, Any], *, newcomer: bool = False) -> OfferSlot:
    """Offer the free slots of the key a run record keeps to its queue (``newcomer``: the run
    just joined it, which a singleton's ``cancel_previous`` acts on)."""
    mode = str(slot.get("mode", ""))
    place = str(slot["place"]) if newcomer and mode == "cancel_previous" else ""
    return OfferSlot(str(slot["key"]), int(slot["limit"]), mode, place)


@dataclass(frozen=True)
class Pending:
    """A debounced run's hold on its key, changed with the run's own commit: ``claim`` as it
    is created (refused while another run of the key waits to start: the store raises
    ``DebounceHeld``), ``drop`` as it starts, or ends before it started."""

    op: Literal["claim", "drop"]
    key: str
    run_id: str
