"""A code-first step's definition: names, durations and retry policies as the engine reads them.

The Context builds each issued step's ``spec`` (the fields a YAML step writes) here and checks it
with the same models the engine parses it with, so a mistake is raised at the call that made it,
naming the step, rather than failing the step later.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import timedelta
from functools import cache
from typing import Any

from annotated_types import Le
from pydantic import TypeAdapter, ValidationError

from stepwell.code.protocol import step_type
from stepwell.definition.durations import DURATION_HELP, format_duration, parse_duration
from stepwell.definition.models import Concurrency, Retry, Step

Duration = str | timedelta | int | float
"""``"30s"``, ``"5m"``, ``"1h30m"``, ``"7d"``, ISO 8601 ``"PT5M"``, a timedelta or seconds."""

RetryPolicy = Mapping[str, Any]
"""As YAML writes it: ``{"max_attempts": 3, "interval": "1s", "backoff_rate": 2.0,
"max_interval": "30s", "jitter": "full", "retry_on": ["*"], "non_retryable": []}``."""

MAX_NAME = 80
"""Longest step name."""

_RESERVED = ".~[]/"


def check_name(name: Any, method: str) -> None:
    """Raise ValueError, naming the step and the fix, unless ``name`` is a valid step name."""
    if not isinstance(name, str) or not name.strip():
        raise ValueError(
            f"ctx.{method}: the step name {name!r} is not a non-empty string: give every step "
            f'a name of its own, like ctx.{method}("build", ...)'
        )
    if len(name) > MAX_NAME:
        raise ValueError(
            f"ctx.{method}: the step name {name[:30]!r}... is {len(name)} characters long: "
            f"keep step names to {MAX_NAME} characters"
        )
    reserved = [c for c in _RESERVED if c in name]
    if reserved:
        fixed = re.sub(r"[.~\[\]/]+", "-", name).strip("-") or "step"
        raise ValueError(
            f"ctx.{method}: the step name {name!r} contains "
            f"{' and '.join(repr(c) for c in reserved)}, which step keys reserve ('.' for "
            f"branches, '~' for repeats, '[]' for items, '/' for URLs): call it {fixed!r} instead"
        )
    if name.startswith("$"):
        raise ValueError(
            f"ctx.{method}: the step name {name!r} starts with '$', which marks Stepwell's own "
            f"records: call it {name.lstrip('$') or 'step'!r} instead"
        )


def duration(step: str, field: str, value: Duration) -> timedelta:
    """Parse a duration; ValueError naming the step, the field and the accepted forms."""
    try:
        delta = parse_duration(value)
    except ValueError as exc:
        raise ValueError(f"step {step!r}: {field}: {exc}") from None
    if delta < timedelta(0):
        raise ValueError(f"step {step!r}: {field} {value!r} is negative: {DURATION_HELP}")
    return delta


def duration_text(step: str, field: str, value: Duration) -> str:
    """A duration as the engine reads it: the user's text, or ``1h30m`` for other forms."""
    delta = duration(step, field, value)
    return value.strip() if isinstance(value, str) else format_duration(delta)


def seconds(step: str, field: str, value: Duration) -> float:
    """A duration in seconds (the runner's ``*_s`` parameters)."""
    return duration(step, field, value).total_seconds()


def put_duration(spec: dict[str, Any], step: str, field: str, value: Duration | None) -> None:
    """Set ``spec[field]`` to the duration's text, unless it is None."""
    if value is not None:
        spec[field] = duration_text(step, field, value)


def put_retry(spec: dict[str, Any], step: str, retry: RetryPolicy | None) -> None:
    """Set ``spec["retry"]`` to the policy as given (timedeltas written as text); the engine
    validates it with the spec."""
    if retry is None:
        return
    if not isinstance(retry, Mapping):
        raise TypeError(
            f"step {step!r}: retry must be a dict like {{'max_attempts': 3, 'interval': '1s'}}"
        )
    policy = dict(retry)
    for field_name in ("interval", "max_interval"):
        if isinstance(policy.get(field_name), timedelta):
            policy[field_name] = format_duration(policy[field_name])
    spec["retry"] = policy


def inline_policy(key: str, retry: RetryPolicy | None) -> Retry | None:
    """The retry policy of an inline step (which the replay applies itself)."""
    if retry is None:
        return None
    spec: dict[str, Any] = {}
    put_retry(spec, key, retry)
    try:
        return Retry.model_validate(spec["retry"])
    except ValidationError as exc:
        raise ValueError(f"step {key!r}: retry: {_problems(exc, skip=0)}") from None


@cache
def _step_adapter() -> TypeAdapter[Step]:
    return TypeAdapter(Step)


def check_spec(key: str, kind: str, spec: dict[str, Any]) -> None:
    """Check an issued step's definition as the engine will, so a mistake is raised at the
    call (naming the step) rather than failing the step later."""
    try:
        _step_adapter().validate_python({**spec, "type": step_type(kind)})
    except ValidationError as exc:
        raise ValueError(f"step {key!r}: {_problems(exc, skip=1)}") from None


def _problems(exc: ValidationError, skip: int) -> str:
    """``field.sub: message; ...`` (``skip`` drops the step type a union's errors start with)."""
    return "; ".join(
        f"{'.'.join(str(p) for p in error['loc'][skip:]) or 'step'}: {error['msg']}"
        for error in exc.errors()
    )


COMPUTED: Any = type("Computed", (), {"__repr__": lambda self: "<computed>"})()
"""A part of a call's argument only the run knows (``stepwell validate`` reads literals)."""
MAX_LIMIT = next(
    int(str(m.le)) for m in Concurrency.model_fields["limit"].metadata if isinstance(m, Le)
)
"""The most attempts a step's key may run at once (as YAML's step ``concurrency``)."""
_CONCURRENCY_FIX = "write it as (key, limit), e.g. concurrency=(input['merchant'], 3)"


def concurrency_problem(value: Any) -> str | None:
    """What is wrong with a task's ``concurrency=(key, limit)``, with the fix; None when
    nothing is (parts that are ``COMPUTED`` pass)."""
    if not isinstance(value, tuple | list) or len(value) != 2:
        return f"not a pair (key, limit): {_CONCURRENCY_FIX}"
    key, limit = value
    if isinstance(key, str) and "${" in key:
        return (
            f"its key {key!r} is an expression, but the code computes the key as text: "
            f"{_CONCURRENCY_FIX}"
        )
    if limit is not COMPUTED and (
        isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT
    ):
        return (
            f"its limit {limit!r} is not a whole number from 1 to {MAX_LIMIT}: {_CONCURRENCY_FIX}"
        )
    return None


def concurrency_spec(step: str, value: Any) -> dict[str, Any]:
    """A task's ``concurrency=(key, limit)`` as a step's ``concurrency``; ValueError naming the
    step and the fix."""
    problem = concurrency_problem(value)
    if problem is not None:
        raise ValueError(f"step {step!r}: concurrency {value!r}: {problem}")
    key, limit = value
    return {"key": str(key), "limit": limit}
