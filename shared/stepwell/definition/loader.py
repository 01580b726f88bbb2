"""Load workflow definitions from YAML into :class:`Workflow`, with every problem located.

Over 500 lines: reading, locating and explaining problems share one source map.

The YAML is read with ruamel.yaml's round-trip loader, which keeps the line and column of every
key and list item, so a pydantic error location such as ``('steps', 'charge', 'task', 'retry')``
becomes ``order.yaml:41:5: step 'charge': field 'retry': ...``. After the model is built the
semantic checks of :mod:`stepwell.definition.validation` run; everything found is raised as one
:class:`DefinitionError`.
"""

from __future__ import annotations

import copy
import difflib
import typing
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ValidationError
from pydantic_core import ErrorDetails
from ruamel.yaml import YAML
from ruamel.yaml.comments import TaggedScalar
from ruamel.yaml.constructor import DuplicateKeyError, RoundTripConstructor
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.scalarbool import ScalarBoolean

from stepwell.definition import models
from stepwell.definition.errors import (
    DefinitionError,
    PathPart,
    Problem,
    SourceMap,
    field_name,
)
from stepwell.definition.models import STEP_TYPES, Workflow
from stepwell.definition.validation import validate

YAML_SUFFIXES = (".yaml", ".yml")
ASL_SUFFIXES = (".asl.json", ".asl.yaml", ".asl.yml")
"""Step Functions state machines (stepwell.asl), run as they are."""

# -- finding and loading files -------------------------------------------------------------


def discover(paths: Iterable[Path]) -> list[Path]:
    """The definition files named by ``paths``: files as given, folders as their YAML files.

    A folder contributes its ``*.yaml`` and ``*.yml`` files and its code-first ``*.py`` files
    (not ``_*.py``, not its sub-folders), sorted by name; a file named twice is listed once.
    Raise ``FileNotFoundError`` for a path that does not exist.
    """
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(
                    p
                    for p in path.iterdir()
                    if p.is_file()
                    and (
                        p.suffix in YAML_SUFFIXES
                        or p.name.endswith(ASL_SUFFIXES)
                        or (p.suffix == ".py" and p.name[0] != "_")
                    )
                )
            )
        elif path.exists():
            found.append(path)
        else:
            raise FileNotFoundError(f"no such file or folder: {path}")
    return list(dict.fromkeys(found))


def fingerprint(paths: Iterable[Path]) -> tuple[tuple[str, int, int], ...]:
    """What changes when a definition file of ``paths`` is added, removed or edited: each
    file's path, modification time and size (a folder that vanished has none)."""
    try:
        files = discover(paths)
    except FileNotFoundError:
        return ()
    marks: list[tuple[str, int, int]] = []
    for path in files:
        try:
            stat = path.stat()
        except FileNotFoundError:  # removed meanwhile
            continue
        marks.append((str(path), stat.st_mtime_ns, stat.st_size))
    return tuple(marks)


def load_workflow(path: Path) -> Workflow:
    """Load and check the definition in ``path``; raise :class:`DefinitionError` on any problem."""
    return parse(_read(path), str(path))[0]


def load_text(text: str, filename: str) -> Workflow:
    """Load and check a definition held in ``text``; ``filename`` names it in problems."""
    return parse(text, filename)[0]


@dataclass(frozen=True)
class Checked:
    """A definition with every problem found in it, in file order.

    Problems in one part do not hide those of another: what pydantic refuses is left out of the
    workflow (a refused field falls back to its default, a step that cannot be built stands in
    as a bare task of its common fields), and the semantic checks run on the rest.
    """

    source: SourceMap
    problems: list[Problem]
    workflow: Workflow | None
    """The workflow as far as it could be built (the whole of it when there are no problems;
    None when not even a partial one could be)."""
    stand_ins: frozenset[str] = frozenset()
    """Steps of ``workflow`` that stand in for ones that could not be built: checks of what
    only their own type has (their function, their error names) must skip them."""


def load_with_source(path: Path) -> tuple[Workflow, SourceMap]:
    """Like :func:`load_workflow`, also returning where each part of the definition is."""
    return parse(_read(path), str(path))


def check_file(path: Path) -> Checked:
    """Every problem of the definition in ``path`` (see :class:`Checked`)."""
    try:
        text = _read(path)
    except DefinitionError as exc:
        return Checked(SourceMap(str(path)), exc.problems, None)
    return check_text(text, str(path))


def parse(text: str, filename: str) -> tuple[Workflow, SourceMap]:
    """Build the workflow in ``text`` and run every check; return it with its source map."""
    checked = check_text(text, filename)
    if checked.problems or checked.workflow is None:
        raise DefinitionError(checked.problems)
    return checked.workflow, checked.source


def check_text(text: str, filename: str) -> Checked:
    """Build the workflow in ``text`` and run every check that can run (see :class:`Checked`)."""
    try:
        document, problems = _read_yaml(text, filename)
    except DefinitionError as exc:  # a syntax error: nothing after it can be read
        return Checked(SourceMap(filename), exc.problems, None)
    source = SourceMap(filename, document)
    if not isinstance(document, Mapping):
        got = "the file is empty" if document is None else f"it holds {_describe(document)}"
        message = f"a workflow is a YAML mapping with 'name' and 'steps', but {got}"
        return Checked(source, [source.problem((), message)], None)
    data = _plain(document, (), source, problems)
    try:
        workflow: Workflow | None = Workflow.model_validate(data)
        stand_ins: frozenset[str] = frozenset()
    except ValidationError as exc:
        problems.extend(_translate(exc, data, source))
        workflow, stand_ins = _salvage(data, exc)
    if workflow is not None:
        problems.extend(validate(workflow, source))
    return Checked(source, _in_file_order(list(dict.fromkeys(problems))), workflow, stand_ins)


def _read(path: Path) -> str:
    try:
        return path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        message = f"the file is not UTF-8 text (byte {exc.start})"
    except OSError as exc:
        message = f"cannot read the file: {exc.strerror or exc}"
    raise DefinitionError([Problem(str(path), 1, 1, None, None, message)])


def _in_file_order(problems: list[Problem]) -> list[Problem]:
    return sorted(problems, key=lambda p: (p.line, p.col))


# -- YAML ----------------------------------------------------------------------------------


class _Constructor(RoundTripConstructor):
    """Round-trip constructor that keeps timestamps as the text written (``until: 2025-01-01``).

    Definitions are JSON-like: a date in an input or an ``until`` is a string to the engine.
    """


_Constructor.add_constructor("tag:yaml.org,2002:timestamp", _Constructor.construct_yaml_str)

_SYNTAX_HINTS = {
    "mapping values are not allowed": "put a value that holds ': ' in quotes, or fix the indent",
    "found character '\\t'": "indent with spaces, not tabs",
    "could not find expected ':'": "each line of a mapping is 'key: value'; check the indent",
    "expected <block end>": "check the indentation of this line and the one before",
    "found another document": "a file holds one workflow: remove the '---' line",
}


_CONTEXTS = {
    "block mapping": "mapping",
    "flow mapping": "{...}",
    "block collection": "list",
    "flow sequence": "[...]",
    "quoted scalar": "quoted text",
}
"""What the parser was reading when it stopped, in the user's words."""


def _yaml(*, duplicates: bool = False) -> YAML:
    # One instance per load: ruamel's YAML objects keep state while loading.
    yaml = YAML(typ="rt")
    yaml.Constructor = _Constructor
    yaml.allow_duplicate_keys = duplicates  # then the first value of a key is kept
    return yaml


def _read_yaml(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """The document and the duplicate keys in it (the rest of it is checked as well, with
    the first value of each); a syntax error raises."""
    try:
        return _yaml().load(text), []
    except DuplicateKeyError as exc:
        problems = _duplicates(text, filename) or [_syntax(exc, filename)]
        return _read_yaml_again(text, filename), problems
    except MarkedYAMLError as exc:
        raise DefinitionError([_syntax(exc, filename, text)]) from None
    except YAMLError as exc:
        raise DefinitionError(
            [Problem(filename, 1, 1, None, None, f"invalid YAML: {exc}")]
        ) from None


def _read_yaml_again(text: str, filename: str) -> Any:
    try:
        return _yaml(duplicates=True).load(text)
    except MarkedYAMLError as exc:
        raise DefinitionError([_syntax(exc, filename, text)]) from None


def _syntax(exc: MarkedYAMLError, filename: str, text: str = "") -> Problem:
    """A YAML syntax error as a Problem at the place the parser stopped."""
    mark = exc.problem_mark or exc.context_mark
    line, col = (mark.line + 1, mark.column + 1) if mark is not None else (1, 1)
    message = f"invalid YAML: {exc.problem or exc.context}"
    if exc.context and str(exc.problem).startswith("but "):  # "expected X" + "but found Y"
        message = f"invalid YAML: {exc.context}, {exc.problem}"
    inside = next((v for k, v in _CONTEXTS.items() if k in str(exc.context)), None)
    if inside and exc.context_mark is not None and exc.problem:
        message += f" (in the {inside} that starts on line {exc.context_mark.line + 1})"
    hint = next((h for key, h in _SYNTAX_HINTS.items() if key in str(exc.problem)), None)
    lines = text.splitlines()
    if hint is None and 0 < line <= len(lines) and "${" in lines[line - 1]:
        hint = "a ${...} inside [...] or {...} must be in quotes"
    return Problem(filename, line, col, None, None, message + (f"; {hint}" if hint else ""))


def _duplicates(text: str, filename: str) -> list[Problem]:
    """Every duplicate key in the document (ruamel stops at the first one)."""
    problems: list[Problem] = []
    seen_nodes: set[int] = set()

    def walk(node: Node, path: tuple[PathPart, ...]) -> None:
        if id(node) in seen_nodes:  # aliases share nodes, and may even be recursive
            return
        seen_nodes.add(id(node))
        if isinstance(node, SequenceNode):
            for index, item in enumerate(node.value):
                walk(item, (*path, index))
        if not isinstance(node, MappingNode):
            return
        first: dict[str, Node] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, ScalarNode):
                continue
            key = str(key_node.value)
            if key in first:
                problems.append(_duplicate(filename, path, key, key_node, first[key]))
            else:
                first[key] = key_node
            walk(value_node, (*path, key))

    walk(_yaml().compose(text), ())
    return problems


def _duplicate(
    filename: str, path: tuple[PathPart, ...], key: str, node: Node, first: Node
) -> Problem:
    line, col = node.start_mark.line + 1, node.start_mark.column + 1
    earlier = first.start_mark.line + 1
    if path == ("steps",):
        message = f"duplicate step id '{key}' (first defined on line {earlier}): rename one"
        return Problem(filename, line, col, key, None, message)
    step = str(path[1]) if len(path) >= 2 and path[0] == "steps" else None
    rest = path[2:] if step is not None else path
    message = f"duplicate key '{key}' (first set on line {earlier}): keep only one"
    return Problem(filename, line, col, step, field_name(rest), message)


def _plain(
    value: Any, path: tuple[PathPart, ...], source: SourceMap, problems: list[Problem]
) -> Any:
    """The loaded document as plain dict/list/str/int/float/bool/None values.

    ruamel's round-trip types (ScalarFloat, LiteralScalarString, ...) would otherwise leak into
    the model, its JSON and the version hash.
    """
    tag = getattr(getattr(value, "tag", None), "value", None)
    if isinstance(tag, str) and tag.startswith("!"):  # a local tag such as CloudFormation's !Sub
        problems.append(
            source.at_step(path, f"YAML tag {tag} is not supported: write the plain value")
        )
    if isinstance(value, TaggedScalar):
        return value.value
    if isinstance(value, Mapping):
        return {
            _plain(k, path, source, problems): _plain(v, (*path, k), source, problems)
            for k, v in value.items()
        }
    if isinstance(value, list):
        return [_plain(item, (*path, i), source, problems) for i, item in enumerate(value)]
    if isinstance(value, bool | ScalarBoolean):
        return bool(value)
    if isinstance(value, int):
        return int(value)
    if isinstance(value, float):
        return float(value)
    if isinstance(value, str):
        return str(value)
    if isinstance(value, datetime | date):
        return value.isoformat()
    return value


# -- pydantic errors as problems -----------------------------------------------------------

_EXPECTED = {
    "string_type": "text",
    "bool_type": "true/false",
    "bool_parsing": "true/false",
    "int_type": "a whole number",
    "int_parsing": "a whole number",
    "int_from_float": "a whole number",
    "float_type": "a number",
    "float_parsing": "a number",
    "dict_type": "a mapping",
    "model_type": "a mapping",
    "model_attributes_type": "a mapping",
    "list_type": "a list",
}
"""Error types saying a value has the wrong kind; union branches each report one."""

_BOUNDS = {
    "greater_than_equal": ("ge", "at least"),
    "less_than_equal": ("le", "at most"),
    "greater_than": ("gt", "more than"),
    "less_than": ("lt", "less than"),
}

_MISSING_HINTS: dict[tuple[str, str], str] = {
    ("task", "function"): "a task step needs the Lambda to run: a logical id in template.yaml "
    "or an ARN",
    ("condition", "condition"): "the expression whose truth is the step's output, e.g. "
    "${steps.validate.output.total > 100}",
    ("notify", "detail_type"): "the detail-type of the EventBridge event, e.g. order.fulfilled",
    ("workflow", "workflow"): "the name of the workflow to start",
    ("http", "url"): "the URL to call",
    ("agent", "model"): "the Bedrock model id to call",
    ("agent", "prompt"): "the text sent to the model; it may hold ${...}",
    ("Workflow", "name"): "lower-case letters, digits and '-', e.g. order-fulfilment",
    ("Workflow", "steps"): "a mapping of step ids to steps",
    ("EventTrigger", "pattern"): "an EventBridge event pattern, e.g. {source: [shop]}",
    ("ScheduleTrigger", "expression"): "rate(5 minutes) or cron(0 9 * * ? *)",
}
"""Why a required field matters, keyed by (step type or model class name, field)."""


_OWNERS = {
    "Workflow": "a workflow",
    "Retry": "retry",
    "Triggers": "triggers",
    "EventTrigger": "an event trigger",
    "ScheduleTrigger": "a schedule trigger",
}
"""How an unknown-field message names the mapping it is in."""


def _step_models() -> dict[str, type[BaseModel]]:
    """Step type -> its model, read from the ``Step`` union so the two cannot disagree."""
    union = typing.get_args(models.Step)[0]
    out: dict[str, type[BaseModel]] = {}
    for cls in typing.get_args(union):
        (tag,) = typing.get_args(cls.model_fields["type"].annotation)
        out[tag] = cls
    return out


STEP_MODELS = _step_models()


def _translate(exc: ValidationError, data: dict[str, Any], source: SourceMap) -> list[Problem]:
    """pydantic's errors as located, plain-language problems."""
    problems: list[Problem] = []
    kinds: dict[tuple[PathPart, ...], list[ErrorDetails]] = {}
    for error in exc.errors():
        path, rest = _resolve(error["loc"], data)
        if rest[:1] == ("[key]",) and error["type"] in _EXPECTED:
            # YAML reads `1:` or `true:` as a number or boolean; every key here must be text.
            key = error["input"]
            message = f"key {key!r} must be text"
            if len(path) == 2 and path[0] == "steps":
                message = f"step id {key!r} is not an identifier: start it with a letter or '_'"
            problems.append(source.at_step(path, message))
        elif error["type"] in _EXPECTED or error["type"] == "literal_error":
            # A value of the wrong kind fails every branch of a union (when: str | bool): gather
            # them so the user reads one "expected text or true or false" per place.
            kinds.setdefault(path, []).append(error)
        else:
            problems.append(_problem(error, path, rest, data, source))
    for path, errors in kinds.items():
        problems.append(source.at_step(path, _expected(path, errors)))
    return problems


STAND_IN_FUNCTION = "-"
"""What stands in for a required text field (a task's function ...) that is missing."""
_NAME_STAND_IN = "workflow"
_COMMON_FIELDS = frozenset(models.StepBase.model_fields)
_SALVAGE_ROUNDS = 4


def _salvage(data: dict[str, Any], exc: ValidationError) -> tuple[Workflow | None, frozenset[str]]:
    """The workflow less what pydantic refused, and the steps that stand in for steps that
    could not be built; None when not even that can be built (no steps at all).

    Each round leaves out what the last one's errors are in: a field of a mapping (its default
    stands in; a list item takes its whole list, so the positions of the rest stay true), a
    step id that is not one, or a step that cannot stand as written (its type's required fields
    missing, a rule across its fields broken, an unknown type): a task of its common fields
    (depends_on, catch, input ...) takes its place, so what it reads and who depends on it are
    still checked.
    """
    data = copy.deepcopy(data)
    stand_ins: set[str] = set()
    for _ in range(_SALVAGE_ROUNDS):
        changed = False
        for error in exc.errors():
            path, rest = _resolve(error["loc"], data)
            if error["type"] == "missing" and _fill_in(data, path, rest):
                stand_ins.add(str(path[1]))
                changed = True
            else:
                changed |= _leave_out(data, path, rest, stand_ins)
        if not changed:
            return None, frozenset()
        try:
            return Workflow.model_validate(data), frozenset(stand_ins)
        except ValidationError as again:
            exc = again
    return None, frozenset()


def _fill_in(data: dict[str, Any], path: tuple[PathPart, ...], rest: tuple[PathPart, ...]) -> bool:
    """A step missing a field its type requires keeps its type (so its other fields are still
    checked), with a stand-in value; False when the error is not of that kind."""
    if len(path) != 2 or path[0] != "steps" or len(rest) != 1:
        return False
    raw = data["steps"][path[1]]
    model = STEP_MODELS.get(str(raw.get("type", "task"))) if isinstance(raw, dict) else None
    info = model.model_fields.get(str(rest[0])) if model is not None else None
    if info is None:
        return False
    raw[str(rest[0])] = True if bool in typing.get_args(info.annotation) else STAND_IN_FUNCTION
    return True


def _leave_out(
    data: dict[str, Any],
    path: tuple[PathPart, ...],
    rest: tuple[PathPart, ...],
    stand_ins: set[str],
) -> bool:
    """Take what one error is in out of ``data``; False when nothing can be taken out."""
    steps = data.get("steps")
    if len(path) == 2 and path[0] == "steps" and isinstance(steps, dict):
        key = path[1]
        if rest[:1] == ("[key]",):
            return steps.pop(key, None) is not None
        raw = steps.get(key)
        common: dict[str, Any] = {}
        if isinstance(raw, dict) and key not in stand_ins:  # else they were all it had
            common = {k: v for k, v in raw.items() if k in _COMMON_FIELDS}
        steps[key] = {**common, "type": "task", "function": STAND_IN_FUNCTION}
        stand_ins.add(str(key))
        return True
    if path in ((), ("steps",)):
        if rest[:1] == ("name",) and path == ():
            data["name"] = _NAME_STAND_IN
            return True
        return False  # no steps to check
    # The deepest mapping key on the path: its default stands in for it.
    node: Any = data
    parent: dict[Any, Any] | None = None
    key_of: PathPart | None = None
    for part in path:
        if isinstance(node, dict):
            parent, key_of = node, part
        node = node[part]
    if parent is None or key_of is None:
        return False
    if key_of == "name" and parent is data:
        data["name"] = _NAME_STAND_IN
        return True
    return parent.pop(key_of, None) is not None


def _resolve(
    loc: tuple[int | str, ...], data: Any
) -> tuple[tuple[PathPart, ...], tuple[PathPart, ...]]:
    """Split an error location into the part present in ``data`` and the rest.

    The discriminated union adds the step type to locations (``steps.charge.task.function``); it
    is dropped. The rest holds a missing field's name, ``[key]``, or a union branch's label.
    """
    parts = list(loc)
    if len(parts) >= 3 and parts[0] == "steps" and parts[2] in STEP_TYPES:
        del parts[2]
    node = data
    depth = 0
    for part in parts:
        present = (isinstance(node, dict) and part in node) or (
            isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node)
        )
        if not present:
            break
        node = node[part]
        depth += 1
    return tuple(parts[:depth]), tuple(parts[depth:])


def _problem(
    error: ErrorDetails,
    path: tuple[PathPart, ...],
    rest: tuple[PathPart, ...],
    data: dict[str, Any],
    source: SourceMap,
) -> Problem:
    kind = error["type"]
    ctx = error.get("ctx", {})
    if kind == "missing" and rest:
        name = str(rest[0])
        hint = _missing_hint(path, name, data)
        return source.at_step(
            path, f"missing required field '{name}'" + (f" ({hint})" if hint else "")
        )
    if kind == "extra_forbidden" and path:
        return source.at_step(path[:-1], _unknown_field(path, data), at=path)
    if kind == "union_tag_invalid":
        tag = error["input"].get("type") if isinstance(error["input"], dict) else ctx.get("tag")
        return source.at_step((*path, "type"), _unknown_type(tag))
    if kind in _BOUNDS:
        key, words = _BOUNDS[kind]
        return source.at_step(path, f"must be {words} {ctx.get(key)}, got {error['input']!r}")
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return source.at_step(path, message)


def _expected(path: tuple[PathPart, ...], errors: list[ErrorDetails]) -> str:
    words: list[str] = []
    for error in errors:
        word = _EXPECTED.get(error["type"]) or str(error.get("ctx", {}).get("expected", "?"))
        if error["type"] == "literal_error":
            word = f"one of {word}"
        if word not in words:
            words.append(word)
    got = _describe(errors[0]["input"])
    if len(path) == 2 and path[0] == "steps":
        return f"a step is a mapping of its fields (e.g. function: MyFunction), not {got}"
    return f"expected {' or '.join(words)}, got {got}"


def _describe(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    if value is None:
        return "nothing (null)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return f"the text {value!r}"
    return repr(value)


def _model_at(path: Sequence[PathPart], data: dict[str, Any]) -> type[BaseModel] | None:
    """The model class validating the mapping at ``path`` (a step's by its ``type``)."""
    model: type[BaseModel] = Workflow
    parts = list(path)
    if len(parts) >= 2 and parts[0] == "steps":
        raw = data.get("steps", {}).get(parts[1]) if isinstance(data.get("steps"), dict) else None
        kind = raw.get("type", "task") if isinstance(raw, dict) else "task"
        found = STEP_MODELS.get(str(kind))
        if found is None:
            return None
        model, parts = found, parts[2:]
    for part in parts:
        if isinstance(part, int):
            continue
        info = model.model_fields.get(part)
        inner = _inner_model(info.annotation) if info is not None else None
        if inner is None:
            return None
        model = inner
    return model


def _inner_model(annotation: Any) -> type[BaseModel] | None:
    """The model inside an annotation such as ``Retry | None`` or ``list[EventTrigger]``."""
    if isinstance(annotation, type) and issubclass(annotation, BaseModel):
        return annotation
    for arg in typing.get_args(annotation):
        found = _inner_model(arg)
        if found is not None:
            return found
    return None


def _model_label(model: type[BaseModel]) -> str:
    """How problems name a model: a step by its type, others by their class name."""
    for tag, cls in STEP_MODELS.items():
        if cls is model:
            return tag
    return model.__name__


def _missing_hint(path: tuple[PathPart, ...], name: str, data: dict[str, Any]) -> str | None:
    model = _model_at(path, data)
    if model is None:
        return None
    hint = _MISSING_HINTS.get((_model_label(model), name))
    info = model.model_fields.get(name)
    return hint or (info.description if info is not None else None)


def _unknown_field(path: tuple[PathPart, ...], data: dict[str, Any]) -> str:
    name = str(path[-1])
    message = f"unknown field '{name}'"
    model = _model_at(path[:-1], data)
    if model is None:
        return message
    fields = list(model.model_fields)
    match = difflib.get_close_matches(name, fields, n=1)
    if match:
        return f"{message}; did you mean '{match[0]}'?"
    label = _model_label(model)
    if label in STEP_MODELS:
        owners = [tag for tag, cls in STEP_MODELS.items() if name in cls.model_fields]
        if owners:
            return f"{message}: it is a field of {' and '.join(owners)} steps, not {label} steps"
        return f"{message}; a {label} step has: {', '.join(fields)}"
    owner = _OWNERS.get(label, "this mapping")
    return f"{message}; {owner} has: {', '.join(fields)}"


def _unknown_type(tag: Any) -> str:
    match = difflib.get_close_matches(str(tag), STEP_TYPES, n=1)
    guess = f"; did you mean '{match[0]}'?" if match else ""
    shown = f"'{tag}'" if isinstance(tag, str) else _describe(tag)
    return f"unknown step type {shown}{guess} (the types are: {', '.join(STEP_TYPES)})"


def read_document(text: str, filename: str) -> tuple[Any, list[Problem]]:
    """A YAML document of another file a project keeps (its groups), read as workflows are:
    the document and its duplicate keys; a syntax error raises a located DefinitionError."""
    return _read_yaml(text, filename)
