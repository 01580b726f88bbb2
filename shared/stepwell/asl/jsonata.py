"""JSONata in Step Functions machines (``QueryLanguage: JSONata``): a field's value is a
template whose strings ``{% expression %}`` are JSONata over ``$states`` (``input``,
``result``, ``errorOutput``, ``context``) and the machine's variables (``$name``, set by
``Assign``)."""

from __future__ import annotations

import re
from typing import Any

from stepwell import expressions

_WHOLE = re.compile(r"^\s*\{%(.*)%\}\s*$", re.S)


class JsonataError(Exception):
    """An expression that cannot be evaluated (``States.QueryEvaluationError``)."""


def expression_of(value: Any) -> str | None:
    """The JSONata of a ``{% ... %}`` string (None: a literal)."""
    if not isinstance(value, str):
        return None
    found = _WHOLE.match(value)
    return found.group(1).strip() if found else None


def check(value: Any) -> str | None:
    """Why a template's expressions do not compile (None: they do)."""
    for text in _expressions(value):
        try:
            expressions.compile_expression(text)
        except expressions.ExpressionError as exc:
            return str(exc)
    return None


def _expressions(value: Any) -> list[str]:
    if isinstance(value, dict):
        return [e for v in value.values() for e in _expressions(v)]
    if isinstance(value, list):
        return [e for v in value for e in _expressions(v)]
    text = expression_of(value)
    return [text] if text is not None else []


def render(value: Any, states: dict[str, Any], variables: dict[str, Any]) -> Any:
    """A template with its expressions evaluated."""
    if isinstance(value, dict):
        return {k: render(v, states, variables) for k, v in value.items()}
    if isinstance(value, list):
        return [render(v, states, variables) for v in value]
    text = expression_of(value)
    if text is None:
        return value
    try:
        compiled = expressions.compile_expression(text)
        # $states and the variables are bindings (as Step Functions has them), not the input.
        return compiled.evaluate(None, {**variables, "states": states})
    except (expressions.ExpressionError, Exception) as exc:
        raise JsonataError(f"{text!r}: {exc}") from None
