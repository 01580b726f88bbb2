"""JSONata in Step Functions machines (``QueryLanguage: JSONata``): a field's value is a
template whose strings ``{% expression %}`` are JSONata over ``$states`` (``input``,
``result``, ``errorOutput``, ``context``) and the machine's variables (``$name``, set by
``Assign``). Step Functions' own functions are there too: ``$partition``, ``$range``,
``$hash``, ``$random``, ``$uuid``, ``$parse``, with ``$now()`` and ``$millis()`` the time the
state was entered (so a replay gives the same values)."""

from __future__ import annotations

import copy
import json
import random
import re
from collections.abc import Callable
from datetime import datetime
from typing import Any

from jsonata import Jsonata
from jsonata.utils import Utils

from stepwell import expressions
from stepwell.asl import intrinsics

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


Functions = dict[str, Any]
"""Bindings of functions (``Jsonata.JLambda``) by name."""


def functions(
    draw: Callable[[], float], uuid: Callable[[], str], now: datetime | None
) -> Functions:
    """Step Functions' JSONata functions over the run's deterministic random source and, when
    the machine reads it, the time the state was entered."""

    def chance(seed: Any = None) -> float:
        return random.Random(seed).random() if seed is not None else draw()

    found: Functions = {
        "partition": Jsonata.JLambda(intrinsics.partition),
        "range": Jsonata.JLambda(intrinsics.array_range),
        "hash": Jsonata.JLambda(intrinsics.hash_of),
        "random": Jsonata.JLambda(chance),
        "uuid": Jsonata.JLambda(uuid),
        "parse": Jsonata.JLambda(json.loads),
    }
    if now is not None:
        stamp = now.isoformat(timespec="milliseconds").replace("+00:00", "Z")
        millis = int(now.timestamp() * 1000)
        found["now"] = Jsonata.JLambda(lambda *_: stamp)
        found["millis"] = Jsonata.JLambda(lambda *_: millis)
    return found


def render(
    value: Any,
    states: dict[str, Any],
    variables: dict[str, Any],
    bound: Functions | None = None,
    field: str = "",
) -> Any:
    """A template with its expressions evaluated; ``field`` names where it is (``Output``,
    ``Arguments/FunctionName``) for an expression that gives nothing (JSONata's undefined),
    which fails the state as it does on Step Functions."""
    if isinstance(value, dict):
        return {
            k: render(v, states, variables, bound, f"{field}/{k}" if field else str(k))
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [render(v, states, variables, bound, field) for v in value]
    text = expression_of(value)
    if text is None:
        return value
    try:
        # $states and the variables are bindings (as Step Functions has them), not the input.
        found = expressions.bounded(
            _telling_undefined(text), None, {**(bound or {}), **variables, "states": states}
        )
    except (expressions.ExpressionError, Exception) as exc:
        raise JsonataError(f"{text!r}: {exc}") from None
    if found is None:
        raise JsonataError(
            f"The JSONata expression '{text}' specified for the field '{field}' returned "
            "nothing (undefined)."
        )
    return Utils.convert_nulls(found)


_TELLING: dict[str, Any] = {}


def _telling_undefined(text: str) -> Any:
    """The compiled expression (checked and cached as every expression is), as a copy of its
    own that gives JSONata's undefined as None and its null as a marker, so the two can be
    told apart (the shared one gives None for both)."""
    found = _TELLING.get(text)
    if found is None:
        found = copy.copy(expressions.compile_expression(text))
        found.set_output_convert_nulls(False)
        _TELLING[text] = found
    return found
