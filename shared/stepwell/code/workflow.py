"""``@workflow``: declare a Python function as a code-first workflow.

    @workflow(name="release", input_schema={"type": "object", "required": ["ref"]})
    def release(ctx: Context, input: dict) -> dict:
        build = ctx.task("build", function="BuildFunction", input=input)
        ...

The function stays a plain function (call it with a Context in tests); the decorator only
attaches a :class:`CodeWorkflow` that the catalog finds in ``statemachines/*.py``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, TypeVar

ATTRIBUTE = "__stepwell_workflow__"

F = TypeVar("F", bound=Callable[..., Any])


@dataclass(frozen=True)
class CodeWorkflow:
    """What ``@workflow`` declares about a function."""

    name: str
    function: Callable[..., Any]
    version: str | None = None
    """A label of the code's version: runs keep the version they started with (keep the old
    function, with its version, beside the new one until its runs end)."""
    description: str | None = None
    input_schema: dict[str, Any] | None = None
    output_schema: dict[str, Any] | None = None
    triggers: dict[str, Any] | None = None
    """As in YAML: ``{"events": [{"pattern": ..., "input": ...}], "schedules": [...]}``."""
    timeout: str | None = None
    """The run's timeout (``3d``, ``PT1H``); none by default."""
    replay_timeout: str | None = None
    """Limit for one replay of the function (the runner's timeout when unset)."""
    allow_hosts: tuple[str, ...] = ()
    """Hosts and CIDRs its ``ctx.http`` steps may reach although they are not public."""
    flow_control: dict[str, Any] | None = None
    """As in YAML, each by its name: ``concurrency``, ``priority``, ``throttle``,
    ``debounce``, ``singleton`` (docs/definition-language.md, Flow control)."""
    role: str | None = None
    """The IAM role (an ARN) its ``ctx.aws`` calls run with (Step Functions' RoleArn)."""
    notify: dict[str, Any] | None = None
    """As YAML's ``notify``: how the people its approvals and inputs ask are told
    (``{"email": ..., "slack": ...}``); None: as the stack says."""
    cancel_on: Any = ()
    """As YAML's ``cancel_on``: events that cancel the run (``{"source", "detail_type",
    "correlate": {"event", "equals"}}``, ``equals`` over the run's input), as given (a value
    that is not a list is refused with the definition's other problems)."""


def workflow(
    name: str,
    *,
    version: str | None = None,
    description: str | None = None,
    input_schema: dict[str, Any] | None = None,
    output_schema: dict[str, Any] | None = None,
    triggers: dict[str, Any] | None = None,
    timeout: str | None = None,
    replay_timeout: str | None = None,
    allow_hosts: Iterable[str] = (),
    concurrency: dict[str, Any] | None = None,
    priority: int | str | None = None,
    throttle: dict[str, Any] | None = None,
    debounce: dict[str, Any] | None = None,
    singleton: dict[str, Any] | None = None,
    role: str | None = None,
    notify: dict[str, Any] | None = None,
    cancel_on: Sequence[Mapping[str, Any]] = (),
) -> Callable[[F], F]:
    """Declare ``function(ctx, input) -> output`` as the workflow ``name``; flow control
    across its runs as in YAML (``concurrency={"key": "${input.customer}", "limit": 2}``);
    ``role``, the IAM role (an ARN) the runner assumes for its ``ctx.aws`` calls; ``notify``,
    the channels its approvals and inputs reach people by, as YAML's (``{"email": {"subject":
    ...}, "slack": {"webhook": SECRET}}``; each ``True``, ``False`` or the workflow's own);
    ``cancel_on``, events that cancel a run, as YAML's (``[{"source": "orders", "detail_type":
    "order.cancelled", "correlate": {"event": "detail.order_id", "equals":
    "${input.order_id}"}}]``)."""
    flow = {
        "concurrency": concurrency,
        "priority": priority,
        "throttle": throttle,
        "debounce": debounce,
        "singleton": singleton,
    }

    def declare(function: F) -> F:
        info = CodeWorkflow(
            name=name,
            function=function,
            version=version,
            description=description if description is not None else _summary(function),
            input_schema=input_schema,
            output_schema=output_schema,
            triggers=triggers,
            timeout=timeout,
            replay_timeout=replay_timeout,
            allow_hosts=tuple(allow_hosts),
            flow_control={name: value for name, value in flow.items() if value is not None},
            role=role,
            notify=notify,
            cancel_on=list(cancel_on) if isinstance(cancel_on, list | tuple) else cancel_on,
        )
        setattr(function, ATTRIBUTE, info)
        return function

    return declare


def declared(value: Any) -> CodeWorkflow | None:
    """The CodeWorkflow ``value`` was declared as, or None."""
    info = getattr(value, ATTRIBUTE, None)
    return info if isinstance(info, CodeWorkflow) else None


def _summary(function: Callable[..., Any]) -> str | None:
    doc = (function.__doc__ or "").strip()
    return doc.split("\n\n")[0].replace("\n", " ") if doc else None
