"""What ``ctx.approval`` and ``ctx.input`` ask of people, as the YAML steps hold it: who (e-mails
or groups) and, for an approval, its escalations."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from jsonschema import Draft202012Validator, SchemaError

from stepwell.code.specs import duration_text

People = Sequence[str | Mapping[str, str]] | Mapping[str, str] | str | None
"""E-mails or groups (``{"group": "finance"}``); one alone may stand for the list."""


def people_of(given: People) -> list[Any]:
    """The people as a list (a single e-mail or group is a list of one)."""
    if given is None:
        return []
    if isinstance(given, str | Mapping):
        return [given if isinstance(given, str) else dict(given)]
    return [p if isinstance(p, str) else dict(p) for p in given]


def escalations(step: str, given: Sequence[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """Each escalation with its ``after`` as duration text (a timedelta or seconds allowed)."""
    if isinstance(given, Mapping | str):
        raise TypeError(
            f"approval {step!r}: escalate is a list, e.g. [{{'after': '1d', 'to': "
            "['cfo@example.com']}, {'after': '2d', 'action': 'reject'}]"
        )
    out = []
    for index, escalation in enumerate(given):
        if not isinstance(escalation, Mapping) or "after" not in escalation:
            raise ValueError(
                f"approval {step!r}: escalate[{index}] needs 'after' and one of 'to' or 'action'"
            )
        found = {**escalation, "after": duration_text(step, "escalate.after", escalation["after"])}
        if "to" in found:
            found["to"] = people_of(found["to"])
        out.append(found)
    return out


def form_of(step: str, form: Mapping[str, Any]) -> dict[str, Any]:
    """The form's JSON Schema, checked at the call (``stepwell validate`` checks a YAML one)."""
    if not isinstance(form, Mapping):
        raise TypeError(f"step {step!r}: form is a JSON Schema (a dict), not {type(form).__name__}")
    try:
        Draft202012Validator.check_schema(form)
    except SchemaError as exc:
        raise ValueError(
            f"step {step!r}: form is not a valid JSON Schema (draft 2020-12): {exc.message}"
        ) from None
    return dict(form)
