"""The items of the Stepwell table, as pynamodb models.

One table, six kinds of item (``kind`` tells them apart):

=========== ===================== ====================== =======================================
kind        pk                    sk                     what
=========== ===================== ====================== =======================================
run         ``RUN#<run id>``      ``RUN``                the run record; ``seq`` fences commits
step        ``RUN#<run id>``      ``STEP#<key>``         a step or for_each child and its attempt
timeline    ``RUN#<run id>``      ``TL#<seq>``           the entries of the commit that made seq
definition  ``DEF#<workflow>``    ``V#<version>``        an immutable definition version
workflow    ``WORKFLOWS``         ``W#<workflow>``       a published workflow: the version new
                                                         runs take, who published it, retired?
=========== ===================== ====================== =======================================

The models here name no table: :func:`bind` makes subclasses bound to a table name, region and
endpoint given at run time (``STEPWELL_TABLE``), all sharing one connection (one botocore
client, which the request meter hooks). The key schema and indexes must match template.yaml;
``tests/integration`` creates the table from template.yaml and uses these models on it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pynamodb.attributes import (
    BooleanAttribute,
    ListAttribute,
    NumberAttribute,
    UnicodeAttribute,
    UnicodeSetAttribute,
)
from pynamodb.connection import TableConnection
from pynamodb.indexes import GlobalSecondaryIndex, KeysOnlyProjection
from pynamodb.models import Model

BY_WORKFLOW = "by_workflow"
BY_STATUS = "by_status"
BY_WORKFLOW_STATUS = "by_workflow_status"
EVERY_RUN = "every_run"
DUE = "due"
WAITING_PEOPLE = "waiting_people"


class ByWorkflow(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Runs of a workflow, by creation time."""

    class Meta:
        index_name = BY_WORKFLOW
        projection = KeysOnlyProjection()

    wf_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class ByStatus(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Runs in a status, by creation time."""

    class Meta:
        index_name = BY_STATUS
        projection = KeysOnlyProjection()

    st_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class ByWorkflowStatus(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Runs of a workflow in a status, by creation time."""

    class Meta:
        index_name = BY_WORKFLOW_STATUS
        projection = KeysOnlyProjection()

    ws_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class EveryRun(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Every run, by creation time."""

    class Meta:
        index_name = EVERY_RUN
        projection = KeysOnlyProjection()

    all_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class Due(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Sparse: items with a due time, in shards ``DUE#<n>``, by due time (epoch micros)."""

    class Meta:
        index_name = DUE
        projection = KeysOnlyProjection()

    due_pk = UnicodeAttribute(hash_key=True)
    due_us = NumberAttribute(range_key=True)


class WaitingPeople(GlobalSecondaryIndex["Item"]):  # type: ignore[no-untyped-call]
    """Sparse: the steps waiting for people (an approval, an input form), in shards
    ``WP#<n>``, by when the wait opened: the operator's inbox, never a scan of runs."""

    class Meta:
        index_name = WAITING_PEOPLE
        projection = KeysOnlyProjection()

    wp_pk = UnicodeAttribute(hash_key=True)
    list_sk = UnicodeAttribute(range_key=True)


class Item(Model):
    """What every item has: keys, kind, retention and the due-index attributes."""

    class Meta:
        table_name = ""
        """Set by :func:`bind`; an unbound model cannot reach a table."""

    pk = UnicodeAttribute(hash_key=True)
    sk = UnicodeAttribute(range_key=True)
    kind = UnicodeAttribute()
    expires_at = NumberAttribute(null=True)
    """TTL (epoch seconds): the run's deadline plus the retention, written with the item."""
    due_pk = UnicodeAttribute(null=True)
    due_us = NumberAttribute(null=True)

    by_workflow = ByWorkflow()
    by_status = ByStatus()
    by_workflow_status = ByWorkflowStatus()
    every_run = EveryRun()
    due = Due()
    waiting_people = WaitingPeople()


class RunItem(Item):
    """A run (see :class:`stepwell.engine.state.RunState`)."""

    run_id = UnicodeAttribute()
    fmt = NumberAttribute(null=True)
    """The format its records are written in (store.codec.FORMAT); none: 1."""
    workflow = UnicodeAttribute()
    version = UnicodeAttribute()
    status = UnicodeAttribute()
    seq = NumberAttribute()
    input = UnicodeAttribute(null=True)
    output = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    context = UnicodeAttribute(null=True)
    labels = UnicodeAttribute(null=True)
    parent = UnicodeAttribute(null=True)
    created_at = UnicodeAttribute()
    started_at = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    deadline = UnicodeAttribute(null=True)
    open_steps = NumberAttribute(null=True)
    waiting_steps = NumberAttribute(null=True)
    watch_at = UnicodeAttribute(null=True)
    rerun_of = UnicodeAttribute(null=True)
    continued_from = UnicodeAttribute(null=True)
    started_by = UnicodeAttribute(null=True)
    cancelling = UnicodeAttribute(null=True)
    dry_run = BooleanAttribute(null=True)
    cost_usd = NumberAttribute(null=True)
    input_tokens = NumberAttribute(null=True)
    output_tokens = NumberAttribute(null=True)
    outbox = UnicodeAttribute(null=True)
    """Committed commands not yet known to be carried out."""
    outbox_due = UnicodeAttribute(null=True)
    compensation = UnicodeAttribute(null=True)
    """Where a run that undoes its steps stands (engine.compensation)."""
    nonce = UnicodeAttribute(null=True)
    """The run's secret (attempt tokens derive from it)."""
    slot = UnicodeAttribute(null=True)
    """A run of a workflow with concurrency: its key, limit, priority, place (engine.slots)."""
    debounce = UnicodeAttribute(null=True)
    """A run of a workflow with debounce: its key."""
    wid = UnicodeAttribute(null=True)
    """The mark of the last commit (a commit whose answer was lost is recognised by it)."""
    wf_pk = UnicodeAttribute(null=True)
    st_pk = UnicodeAttribute(null=True)
    ws_pk = UnicodeAttribute(null=True)
    all_pk = UnicodeAttribute(null=True)
    list_sk = UnicodeAttribute(null=True)


class StepItem(Item):
    """A step, or a for_each child (see :class:`stepwell.engine.state.StepState`)."""

    step_key = UnicodeAttribute()
    status = UnicodeAttribute()
    wp_pk = UnicodeAttribute(null=True)
    """Set while the step waits for people (the waiting_people index)."""
    list_sk = UnicodeAttribute(null=True)
    attempt = NumberAttribute(null=True)
    token = UnicodeAttribute(null=True)
    """Fencing token of the current attempt."""
    pending_deps = NumberAttribute(null=True)
    """Readiness counter."""
    deps_ended = UnicodeAttribute(null=True)
    skipped_deps = NumberAttribute(null=True)
    input = UnicodeAttribute(null=True)
    output = UnicodeAttribute(null=True)
    error = UnicodeAttribute(null=True)
    item = UnicodeAttribute(null=True)
    started_at = UnicodeAttribute(null=True)
    attempt_started_at = UnicodeAttribute(null=True)
    ended_at = UnicodeAttribute(null=True)
    due_at = UnicodeAttribute(null=True)
    waiting_for = UnicodeAttribute(null=True)
    slot = UnicodeAttribute(null=True)
    """A step with concurrency: its place in its key's queue, or ``held`` (engine.step_slots)."""
    heartbeat_due = UnicodeAttribute(null=True)
    timeout_at = UnicodeAttribute(null=True)
    decisions = UnicodeAttribute(null=True)
    early_signal = UnicodeAttribute(null=True)
    awaits = UnicodeAttribute(null=True)
    child_run_id = UnicodeAttribute(null=True)
    items_total = NumberAttribute(null=True)
    next_child = NumberAttribute(null=True)
    """Fan-out slot cursor (atomic adds)."""
    children_succeeded = NumberAttribute(null=True)
    children_failed = NumberAttribute(null=True)
    failed_items = UnicodeAttribute(null=True)
    """A for_each parent that succeeded: the errors of the failures it tolerated (JSON)."""
    counted_at = UnicodeAttribute(null=True)
    cost_usd = NumberAttribute(null=True)
    input_tokens = NumberAttribute(null=True)
    output_tokens = NumberAttribute(null=True)
    dry_run = BooleanAttribute(null=True)
    copied_from = UnicodeAttribute(null=True)
    lost_attempts = NumberAttribute(null=True)
    retry_base = NumberAttribute(null=True)
    name = UnicodeAttribute(null=True)
    spec = UnicodeAttribute(null=True)
    position = NumberAttribute(null=True)
    after = UnicodeAttribute(null=True)
    wake = BooleanAttribute(null=True)
    failed_deps = NumberAttribute(null=True)
    bypassed = BooleanAttribute(null=True)
    handled_by = NumberAttribute(null=True)
    steps_running = NumberAttribute(null=True)
    steps_waited = NumberAttribute(null=True)
    created_seq = NumberAttribute(null=True)
    rev = NumberAttribute(null=True)
    """Optimistic-concurrency version of the step: every write expects it and bumps it."""
    wid = UnicodeAttribute(null=True)
    """The mark of the last write of the step alone (one whose answer was lost is recognised
    by it)."""
    tl = ListAttribute(of=UnicodeAttribute, null=True)
    """Timeline entries of writes to this step alone (JSON each, with the run's ``seq`` they
    followed): merged with the run's timeline items when the timeline is read."""


class TimelineItem(Item):
    """The timeline entries of one commit, in order (a JSON list)."""

    seq = NumberAttribute()
    entries = UnicodeAttribute()
    stamp = NumberAttribute(null=True)
    """Where the entries go among the run's others (see DynamoStore.timeline)."""


class DefinitionItem(Item):
    """One immutable definition version (the workflow as JSON)."""

    name = UnicodeAttribute()
    version = UnicodeAttribute()
    body = UnicodeAttribute()


class WorkflowItem(Item):
    """A published workflow (see :class:`stepwell.store.port.Registration`)."""

    name = UnicodeAttribute()
    version = UnicodeAttribute(null=True)
    status = UnicodeAttribute()
    owner = UnicodeAttribute()
    resource = UnicodeAttribute()
    published_at = UnicodeAttribute()
    problems = ListAttribute(of=UnicodeAttribute, null=True)


class SlotsItem(Item):
    """A concurrency key's slots (``pk = SLOTS#<workflow>#<key>``, ``sk = HELD``): the runs
    that hold one, changed only in the commits of those runs (engine.slots)."""

    holders = UnicodeSetAttribute(null=True)
    changes = NumberAttribute(null=True)
    """Takes and releases so far: a take holds only if it is the count its offer read."""
    recent = ListAttribute(of=UnicodeAttribute, null=True)
    """A throttled key: its latest starts (ISO times, oldest first)."""


class QueuedItem(Item):
    """A run queued for a slot of its key (``sk = Q#<priority>#<time>#<run>``: the queue's
    order), written and deleted in the run's own commits."""

    run_id = UnicodeAttribute()


class PendingItem(Item):
    """The run of a debounce key waiting to start (``pk = DEBOUNCE#<workflow>#<key>``,
    ``sk = PENDING``), written and deleted in that run's own commits."""

    run_id = UnicodeAttribute()


@dataclass(frozen=True)
class Models:
    """The models bound to one table, sharing one connection."""

    item: type[Item]
    run: type[RunItem]
    step: type[StepItem]
    timeline: type[TimelineItem]
    definition: type[DefinitionItem]
    workflow: type[WorkflowItem]
    connection: TableConnection
    slots: type[SlotsItem]
    queued: type[QueuedItem]
    pending: type[PendingItem]

    @property
    def client(self) -> Any:
        """The botocore DynamoDB client every request of these models goes through."""
        return self.connection.connection.client


def bind(
    table_name: str,
    region: str | None = None,
    host: str | None = None,
    max_pool_connections: int = 32,
) -> Models:
    """Subclasses of the models bound to ``table_name`` (``host``: an endpoint URL, e.g. a
    local DynamoDB)."""
    meta = {
        "table_name": table_name,
        "region": region,
        "host": host,
        "max_pool_connections": max_pool_connections,
    }

    def bound(model: type[Any]) -> Any:
        return type(
            model.__name__,
            (model,),
            {"Meta": type("Meta", (), dict(meta)), "__module__": __name__},
        )

    item: type[Item] = bound(Item)
    connection = item._get_connection()
    classes = [
        bound(m)
        for m in (
            RunItem,
            StepItem,
            TimelineItem,
            DefinitionItem,
            WorkflowItem,
            SlotsItem,
            QueuedItem,
            PendingItem,
        )
    ]
    for cls in classes:
        cls._connection = connection
    run, step, timeline, definition, workflow, slots, queued, pending = classes
    return Models(
        item, run, step, timeline, definition, workflow, connection, slots, queued, pending
    )
