"""A Step Functions machine's data as Stepwell YAML expressions name it, for ``stepwell asl
import``: each state's data is ``input``, ``steps.validate.output``, a constant, or an object
made of those (:data:`Data`); reading and writing it with the machine's paths, rendering its
payload templates, and writing it back as a YAML template or a JSONata expression. What cannot
be named so raises :class:`Refused`, with the reason the state stays ASL."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from stepwell.asl import paths
from stepwell.definition.errors import PathPart


@dataclass(frozen=True)
class Expr:
    """A value YAML expressions name: ``input``, ``steps.charge.output.id``, ``item``."""

    text: str


@dataclass(frozen=True)
class Const:
    """A constant of the machine: a Pass's Result, a Parameters value."""

    value: Any


@dataclass(frozen=True)
class Obj:
    """An object: ``fields`` over those of ``base`` (a ResultPath puts a field into the data),
    or the fields alone (Parameters)."""

    fields: dict[str, Data]
    base: Expr | Hidden | None = None


@dataclass(frozen=True)
class Arr:
    """A list of values: the results of a Parallel's branches, a list in Parameters."""

    items: tuple[Data, ...]


@dataclass(frozen=True)
class Hidden:
    """A value YAML has no name for; ``why`` says why."""

    why: str


Data = Expr | Const | Obj | Arr | Hidden

UNKNOWN = Expr("$unknown")
"""The data after a state that stays ASL: the states after it are still checked for reasons of
their own, and nothing of them is written."""


class Refused(Exception):
    """Why a state stays ASL (``why`` None: for a reason already given), located at ``where``
    inside the state (or inside ``state``: another state's name and path)."""

    def __init__(
        self,
        why: str | None,
        where: tuple[PathPart, ...] = (),
        state: tuple[str, tuple[PathPart, ...]] | None = None,
    ) -> None:
        super().__init__(why or "")
        self.why = why
        self.where = where
        self.state = state


_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_KEYWORDS = {"and", "or", "in", "true", "false", "null", "function"}


def _step(part: PathPart) -> str:
    """One step of a JSONata path: ``.total``, ```.`order id```, ``[0]``."""
    if isinstance(part, int):
        return f"[{part}]"
    if _NAME.fullmatch(part) and part not in _KEYWORDS:
        return f".{part}"
    if "`" in part:
        raise Refused(f"a field named {part!r}: a JSONata name cannot hold a backtick")
    return f".`{part}`"


def _parts(path: str, field: str) -> list[PathPart]:
    try:
        return list(paths.reference(path))
    except paths.PathError:
        raise Refused(
            f"{field} {path!r} selects with wildcards, filters or slices: YAML expressions are "
            "JSONata and give lists otherwise; not converted",
            (field,),
        ) from None


def read(data: Data, parts: list[PathPart], path: str = "$", field: str = "a path") -> Data:
    """What a reference path (as its parts) selects in ``data``."""
    for part in parts:
        data = _at(data, part, path, field)
    return data


def _at(data: Data, part: PathPart, path: str, field: str) -> Data:
    if isinstance(data, Expr):
        return Expr(data.text + _step(part))
    if isinstance(data, Hidden):
        return data
    if isinstance(data, Obj) and isinstance(part, str):
        if part in data.fields:
            return data.fields[part]
        if data.base is not None:
            return _at(data.base, part, path, field)
    if isinstance(data, Arr) and isinstance(part, int) and 0 <= part < len(data.items):
        return data.items[part]
    if isinstance(data, Const):
        value = data.value
        if isinstance(value, dict) and isinstance(part, str) and part in value:
            return Const(value[part])
        if isinstance(value, list) and isinstance(part, int) and 0 <= part < len(value):
            return Const(value[part])
    raise Refused(
        f"{field} {path!r} matches nothing in the state's data (Step Functions fails the state "
        "with States.Runtime)",
        (field,),
    )


def write(data: Data, path: str | None, result: Data) -> Data:
    """``data`` with ``result`` put at a ResultPath (``"null"``: the data as it was)."""
    if path == "null":
        return data
    if path is None or path == "$":
        return result
    parts = _parts(path, "ResultPath")
    if any(isinstance(part, int) for part in parts):
        raise Refused(
            f"ResultPath {path!r} writes into a list item; not converted", ("ResultPath",)
        )
    return _put(data, [str(part) for part in parts], result)


def _put(data: Data, parts: list[str], result: Data) -> Data:
    fields: dict[str, Data]
    base: Expr | Hidden | None = None
    if isinstance(data, Obj):
        fields, base = dict(data.fields), data.base
    elif isinstance(data, Expr | Hidden):
        fields, base = {}, data
    elif isinstance(data, Arr):
        raise Refused("ResultPath writes a field into a list; not converted", ("ResultPath",))
    elif isinstance(data.value, dict):
        fields = {key: Const(value) for key, value in data.value.items()}
    else:  # Step Functions puts the result into a new object
        fields = {}
    head, rest = parts[0], parts[1:]
    if rest:
        inner = fields.get(head)
        if inner is None and base is not None:
            inner = _at(base, head, "", "ResultPath")
        result = _put(inner if inner is not None else Const({}), rest, result)
    fields[head] = result
    return Obj(fields, base)


@dataclass(frozen=True)
class Where:
    """Where a payload template is rendered: its state, its field, and whether the Map item
    (``$$.Map.Item``) is there."""

    state: str
    field: str
    item: bool = False


CONTEXT = {
    ("Execution", "Input"): "input",
    ("Execution", "Id"): "run.id",
    ("Execution", "Name"): "run.id",
    ("Execution", "StartTime"): "run.started_at",
    ("StateMachine", "Id"): "run.workflow",
    ("StateMachine", "Name"): "run.workflow",
}
"""The context object's values that YAML expressions name (as the machine gives them)."""


def render(template: Any, data: Data, where: Where) -> Data:
    """A payload template (Parameters, ResultSelector, ItemSelector) over ``data``."""
    if isinstance(template, dict):
        fields: dict[str, Data] = {}
        for key, value in template.items():
            if not key.endswith(".$"):
                fields[key] = render(value, data, where)
            elif isinstance(value, str):
                fields[key[:-2]] = evaluate(value, data, where)
            else:
                raise Refused(f"{where.field} field {key!r} holds no path", (where.field,))
        return Obj(fields)
    if isinstance(template, list):
        return Arr(tuple(render(value, data, where) for value in template))
    return Const(template)


def evaluate(text: str, data: Data, where: Where) -> Data:
    """A ``.$`` value, or a path field: a path into the data or the context object."""
    if text.startswith("States."):
        raise Refused(
            f"{where.field} with intrinsic functions ({text.split('(', 1)[0]}): YAML "
            "expressions are JSONata; not converted",
            (where.field,),
        )
    if not text.startswith("$$"):
        return read(data, _parts(text, where.field), text, where.field)
    parts = _parts("$" + text[2:], where.field)
    head = (str(parts[0]), str(parts[1])) if len(parts) >= 2 else None
    if head in CONTEXT:
        return read(Expr(CONTEXT[head]), parts[2:])
    if parts == ["State", "Name"]:
        return Const(where.state)
    if where.item and parts[:3] == ["Map", "Item", "Value"]:
        return read(Expr("item"), parts[3:])
    if where.item and parts == ["Map", "Item", "Index"]:
        return Expr("index")
    raise Refused(
        f"{where.field} reads {text}: YAML expressions have no such value", (where.field,)
    )


def template(data: Data) -> Any:
    """``data`` as a YAML template: ``${...}`` for what expressions name, constants as they
    are, objects and lists field by field."""
    if isinstance(data, Expr):
        return "${" + data.text + "}"
    if isinstance(data, Const):
        return _constant(data.value)
    if isinstance(data, Arr):
        return [template(item) for item in data.items]
    if isinstance(data, Obj) and data.base is None:
        return {_key(key): template(value) for key, value in data.fields.items()}
    return "${" + expression(data) + "}"


def _constant(value: Any) -> Any:
    if isinstance(value, str) and "${" in value:  # YAML would read it as an expression
        return "${" + json.dumps(value) + "}"
    if isinstance(value, dict):
        return {_key(key): _constant(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_constant(item) for item in value]
    return value


def _key(key: str) -> str:
    if "${" in key:
        raise Refused(f"a field named {key!r}: YAML would read '${{' as an expression")
    return key


def expression(data: Data) -> str:
    """``data`` as one JSONata expression (an object over another one is a ``$merge``)."""
    if isinstance(data, Expr):
        return data.text
    if isinstance(data, Const):
        return json.dumps(data.value)
    if isinstance(data, Hidden):
        raise Refused(data.why)
    if isinstance(data, Arr):
        if all(isinstance(item, Const) for item in data.items):
            return json.dumps([item.value for item in data.items if isinstance(item, Const)])
        raise Refused(
            "reads the state's data whole, with a Parallel's list of results in it: a JSONata "
            "list flattens the lists inside it; not converted"
        )
    fields = ", ".join(
        f"{json.dumps(key)}: {expression(value)}" for key, value in data.fields.items()
    )
    if data.base is None:
        return "{" + fields + "}"
    return f"$merge([{expression(data.base)}, {{{fields}}}])"
