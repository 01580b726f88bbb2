"""What a code-first workflow's replay and the engine tell each other.

A code-first run has one engine step of its own, :data:`WORKFLOW_KEY`: each of its attempts is a
*replay*, one invocation of the workflow function from the top. The replay is given the run's
journal (every step record so far, as :class:`Recorded`) and answers with a :class:`Yield`:

* ``completed`` with the function's return value, or ``failed`` with the exception it raised;
* ``suspended``: the steps it reached that have no result yet (:class:`Issue`: the engine runs
  them as it runs YAML steps: Lambda attempts, timers, approvals, callbacks, child runs), and
  the inline steps it ran meanwhile (:class:`Checkpoint`: ``ctx.step``, ``ctx.now`` ...).

The engine writes the checkpoints and the issued steps as step records (``kind``, ``name``,
``position``, ``after`` and the issued ``spec`` are kept on them) and starts the issued steps. When
one of them ends it replays again; completed steps then return their stored results.
Everything here is plain JSON on the wire (``to_dict`` / ``from_dict``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Literal

WORKFLOW_KEY = "$workflow"
"""The key of a code-first run's own step: its attempts are the replays of the function."""

FOR_EACH = "for_each"
"""``ctx.for_each``: a task step with ``for_each`` over the items the code gave (issued as the
step's input). The engine fans it out as it does a YAML ``for_each`` task step: one child per
item, counted on the one record, and the replay is woken once the fan-out is decided."""

FOR_EACH_ITEMS = "${items}"
"""The ``for_each`` of a ``ctx.for_each`` step: the items the code gave (the engine evaluates it
over ``items``, the step's own input)."""

ISSUED_KINDS = frozenset(
    {
        "task",
        "http",
        "agent",
        "notify",
        "shell",
        "aws",
        "delay",
        "approval",
        "input",
        "callback",
        "workflow",
        "event",
        FOR_EACH,
    }
)
"""Kinds the engine runs (the engine step type of the same name; ``for_each``: a task)."""

FAN_OUT_KINDS = frozenset({"parallel", "map"})
"""``ctx.parallel`` and ``ctx.map``, whose branches run in the replay: their record holds the
decision (``{"counted", "reason"}``: the branches it counted, why it ended), checkpointed by the
replay that decided it."""

INLINE_KINDS = frozenset({"step", "now", "operation", "child", "poll"}) | FAN_OUT_KINDS
"""Kinds the replay runs itself and checkpoints (``operation``: a user-defined kind, whose own
name is kept in ``Checkpoint.operation``; ``poll``: a wait_for_condition, whose check the
replay runs, issued again as ``poll`` on its one record until the check is met)."""

POLL = "poll"


def step_type(kind: str) -> str:
    """The engine step type an issued kind runs as (``for_each`` is a task with ``for_each``)."""
    return "task" if kind == FOR_EACH else kind


def kind_of(spec: Mapping[str, Any] | None) -> str:
    """The kind of a step record as the code made it, from its spec (``for_each`` for a task
    with ``for_each``; else the spec's type)."""
    found = spec or {}
    kind = str(found.get("type") or "")
    return FOR_EACH if kind == "task" and found.get("for_each") is not None else kind


Status = Literal[
    "pending", "running", "waiting", "retrying", "succeeded", "failed", "skipped", "cancelled"
]


@dataclass(frozen=True)
class Recorded:
    """One step record as the replay sees it (the journal is keyed by ``key``)."""

    key: str
    """Unique in the run: the name, ``name~2`` for its second occurrence, ``parent.<i>.`` inside
    a parallel branch or a map item."""
    name: str
    """The name the code gave the step."""
    kind: str
    position: int
    """The order in which the code reached it (0, 1, 2 ...), the same on every replay."""
    status: Status
    output: Any = None
    error: dict[str, Any] | None = None
    """``{"type": ..., "message": ...}`` when the step failed."""
    failed_items: list[dict[str, Any]] | None = None
    """A ``ctx.for_each`` that succeeded: the errors of the items it tolerated failing
    (``{"index", "type", "message"}``)."""
    attempt: int = 0
    expires_at: str | None = None
    """When a wait ends if nothing answers it (ISO 8601), once the engine opened it."""

    @property
    def ended(self) -> bool:
        """True once the step has its final result."""
        return self.status in ("succeeded", "failed", "skipped", "cancelled")


@dataclass(frozen=True)
class Issue:
    """A step the code reached that has no record yet: the engine is to run it."""

    key: str
    name: str
    kind: str
    """One of :data:`ISSUED_KINDS`."""
    position: int
    input: Any = None
    """The step's input (for http, notify and agent: the rendered parameters the runner takes)."""
    spec: dict[str, Any] = field(default_factory=dict)
    """The step's other fields as a YAML step writes them (``function``, ``retry``,
    ``timeout``, ``message``, ``approvers``, ``duration`` ...; durations as text like ``30s``)."""
    after: list[str] = field(default_factory=list)
    """Keys of the steps whose results the code had read before it reached this one (the
    edges a run graph draws)."""


@dataclass(frozen=True)
class Checkpoint:
    """An inline step the replay ran: its result, written with the suspension."""

    key: str
    name: str
    kind: str
    """One of :data:`INLINE_KINDS`."""
    position: int
    status: Literal["succeeded", "failed"]
    output: Any = None
    error: dict[str, Any] | None = None
    operation: str | None = None
    """For ``kind == "operation"``: the operation's own kind."""
    after: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class Yield:
    """What one replay came to."""

    status: Literal["suspended", "completed", "failed", "continued"]
    output: Any = None
    """The workflow's return value; for ``continued``, the input of the run that goes on."""
    error: dict[str, Any] | None = None
    """``{"type", "message"}`` for a failed run; ``type`` ``ReplayMismatch`` when the code no
    longer matches the journal (the message names the step and what changed)."""
    issued: list[Issue] = field(default_factory=list)
    checkpoints: list[Checkpoint] = field(default_factory=list)
    in_flight: int = field(default=0, compare=False)
    """Steps of the journal that had not ended when the replay read it (what it waits for
    besides ``issued``). Derived from the journal, so answers compare without it."""
    running: int = field(default=0, compare=False)
    """Of those, the ones running or about to retry (not waits): while any run, the run is
    ``running`` even if waits are open."""

    def to_dict(self) -> dict[str, Any]:
        """The JSON form (the replay attempt's output)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Yield:
        """Parse the JSON form."""
        return cls(
            status=data["status"],
            output=data.get("output"),
            error=data.get("error"),
            issued=[Issue(**item) for item in data.get("issued") or []],
            checkpoints=[Checkpoint(**item) for item in data.get("checkpoints") or []],
            in_flight=int(data.get("in_flight") or 0),
            running=int(data.get("running") or 0),
        )


@dataclass(frozen=True)
class RunInfo:
    """What the Context tells the code about its run."""

    run_id: str
    workflow: str
    replay: int
    """The replay's number (1 for the first run of the function)."""
    cost_usd: float = 0.0
    input_tokens: int = 0
    output_tokens: int = 0
    started_at: str | None = None
    """ISO 8601."""
    cancelled: str | None = None
    """Why the run was asked to cancel (None: it was not): the code is told at its next step."""
