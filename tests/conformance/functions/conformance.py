"""The step functions the conformance machines call, written as the developer guide's examples
assume them (a "Hello" function, one that adds, one that raises a given error).

Each is a Lambda of the conformance template (logical id ``<Name>Function``)."""

from __future__ import annotations

from typing import Any

from stepwell.runtime.step_context import StepContext
from stepwell.steps import step_handler

_calls: dict[tuple[str, str], int] = {}
"""Calls so far of ``flaky`` per run and key (the functions run in the stack's process)."""


def _error(name: str) -> type[Exception]:
    """An exception class named ``name`` (its type name is the Lambda's errorType)."""
    return type(name, (Exception,), {})


@step_handler
def echo(event: Any, ctx: StepContext) -> Any:
    """The input, as it came."""
    return event


@step_handler
def hello(event: Any, ctx: StepContext) -> str:
    """The developer guide's HelloFunction: ``"Hello, <who>!"``."""
    return f"Hello, {event['who']}!"


@step_handler
def add(event: Any, ctx: StepContext) -> Any:
    """The sum of ``val1`` and ``val2``."""
    return event["val1"] + event["val2"]


@step_handler
def fail(event: Any, ctx: StepContext) -> Any:
    """Raise ``error`` (an exception of that name) with ``message``."""
    raise _error(str(event.get("error", "CustomError")))(event.get("message", "it failed"))


@step_handler
def flaky(event: Any, ctx: StepContext) -> Any:
    """Raise ``error`` on the first ``failures`` calls of this run (per ``key``), then answer
    ``{"calls": n}``; every call counts, whether a retry shares the record or not."""
    key = (ctx.run_id, str(event.get("key", "")))
    _calls[key] = _calls.get(key, 0) + 1
    errors = event.get("errors") or [event.get("error", "CustomError")]
    if _calls[key] <= int(event.get("failures", 1)):
        name = errors[min(_calls[key], len(errors)) - 1]
        raise _error(str(name))(f"call {_calls[key]} failed")
    return {"calls": _calls[key]}


def plain_add(event: Any, context: Any) -> Any:
    """A plain Lambda (no Stepwell in it, as Step Functions' Lambdas are): val1 + val2."""
    return event["val1"] + event["val2"]


def plain_fail(event: Any, context: Any) -> Any:
    """A plain Lambda that raises ``error`` with ``message``."""
    raise _error(str(event.get("error", "CustomError")))(event.get("message", "it failed"))


HANDLERS = {
    "PlainAddFunction": plain_add,
    "PlainFailFunction": plain_fail,
    "EchoFunction": echo,
    "HelloFunction": hello,
    "AddFunction": add,
    "FailFunction": fail,
    "FlakyFunction": flaky,
}
"""The functions by their logical id in the conformance template."""
