"""Code-first workflows in ``statemachines/*.py``: import the file, find its ``@workflow``
functions, and describe each as a :class:`Workflow` (no steps; ``code`` names the function).

A problem (a syntax error, an exception while importing, a bad schema or trigger, no workflow
in the file) is a :class:`DefinitionError` located in the file, as for YAML definitions.
"""

from __future__ import annotations

import hashlib
import importlib.util
import sys
import traceback
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError
from pydantic import ValidationError

from stepwell.code.literals import literal_problems
from stepwell.code.workflow import CodeWorkflow, declared
from stepwell.definition.errors import DefinitionError, Problem, field_name
from stepwell.definition.models import Workflow
from stepwell.definition.validation import validate

PYTHON_SUFFIX = ".py"
SOURCE_VERSION = "src-"
"""Prefix of the version of a workflow that declares none: a hash of its file."""


@dataclass(frozen=True)
class LoadedCode:
    """A code-first workflow: its definition and the function it replays."""

    workflow: Workflow
    code: CodeWorkflow
    file: str
    line: int

    def problem(self, message: str, field: str | None = None) -> Problem:
        """A problem located at the workflow's function."""
        return Problem(self.file, self.line, 1, None, field, message)


def is_code_file(path: Path) -> bool:
    """A Python file that may hold code-first workflows (``_private.py`` files are helpers)."""
    return path.suffix == PYTHON_SUFFIX and not path.name.startswith("_")


def load_code_file(path: Path) -> list[LoadedCode]:
    """Every ``@workflow`` of ``path``; raise :class:`DefinitionError` on any problem."""
    filename = str(path)
    source = path.read_text(encoding="utf-8")
    module = _import(path, filename, source)
    found = [info for info in vars(module).values() if declared(info) is not None]
    if not found:
        raise DefinitionError(
            [
                Problem(
                    filename,
                    1,
                    1,
                    None,
                    None,
                    "no @workflow function in this file: decorate the workflow function with "
                    "@workflow(name=...) from stepwell, or start the file's name with '_' if it "
                    "only holds helpers",
                )
            ]
        )
    digest = hashlib.sha256(source.encode()).hexdigest()[:12]
    loaded: list[LoadedCode] = []
    problems: list[Problem] = literal_problems(filename, source)
    for value in found:
        info = declared(value)
        assert info is not None
        line = getattr(getattr(info.function, "__code__", None), "co_firstlineno", 1)
        try:
            loaded.append(
                LoadedCode(_describe(info, path, digest, filename, line), info, filename, line)
            )
        except DefinitionError as exc:
            problems.extend(exc.problems)
    if problems:
        raise DefinitionError(problems)
    return loaded


def _import(path: Path, filename: str, source: str) -> ModuleType:
    try:
        compile(source, filename, "exec")
    except SyntaxError as exc:
        raise DefinitionError(
            [Problem(filename, exc.lineno or 1, exc.offset or 1, None, None, f"{exc.msg}")]
        ) from None
    name = f"stepwell_workflows.{path.stem.replace('-', '_')}"
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:  # the user's module failed to import: say where, not a traceback
        sys.modules.pop(name, None)
        line = 1
        for frame in traceback.extract_tb(exc.__traceback__):
            if Path(frame.filename).resolve() == path.resolve():
                line = frame.lineno or 1
        raise DefinitionError(
            [
                Problem(
                    filename,
                    line,
                    1,
                    None,
                    None,
                    f"importing the file raised {type(exc).__name__}: {exc}",
                )
            ]
        ) from None
    return module


def _describe(info: CodeWorkflow, path: Path, digest: str, filename: str, line: int) -> Workflow:
    def problem(message: str, field: str | None = None) -> Problem:
        return Problem(filename, line, 1, None, field, message)

    problems: list[Problem] = []
    for name, schema in (
        ("input_schema", info.input_schema),
        ("output_schema", info.output_schema),
    ):
        if schema is not None:
            try:
                Draft202012Validator.check_schema(schema)
            except SchemaError as exc:
                problems.append(problem(f"not a valid JSON Schema: {exc.message}", name))
    fields: dict[str, Any] = {
        "name": info.name,
        "description": info.description,
        "input_schema": info.input_schema,
        "output_schema": info.output_schema,
        "timeout": info.timeout,
        "triggers": info.triggers or {},
        "steps": {},
        "code": f"{path.name}:{info.function.__qualname__}",
        "code_version": info.version or f"{SOURCE_VERSION}{digest}",
        "replay_timeout": info.replay_timeout,
        "allow_hosts": list(info.allow_hosts),
        "role": info.role,
        "notify": info.notify,
        "cancel_on": info.cancel_on,
        **(info.flow_control or {}),
    }
    try:
        workflow = Workflow.model_validate(fields)
    except ValidationError as exc:
        for loc, message in _without_other_branches(exc):
            problems.append(problem(message.removeprefix("Value error, "), field_name(loc)))
    else:
        problems.extend(problem(p.message, p.field) for p in validate(workflow) if not p.warning)
    if problems:
        raise DefinitionError(problems)
    return workflow


_SCALARS = frozenset({"bool", "str", "int", "float"})
"""The labels pydantic gives the scalar branches of a union (``bool | SlackChannel``)."""


def _without_other_branches(exc: ValidationError) -> list[tuple[list[str | int], str]]:
    """Each error as (field path, message). pydantic tries every branch of a union and reports
    each: where a value went wrong inside a model's branch (a dict for ``slack``), the scalar
    branches' "not a boolean" is left out, and a branch's label (``SlackChannel``) is not a
    field the user wrote."""
    found: list[tuple[list[str | int], str, bool]] = []
    for error in exc.errors():
        loc = [part for part in error["loc"] if isinstance(part, (str, int))]
        path = [p for p in loc if not (isinstance(p, str) and (p in _SCALARS or p[:1].isupper()))]
        found.append((path, str(error["msg"]), bool(loc) and loc[-1] in _SCALARS))
    inside = {tuple(path[:end]) for path, _, _ in found for end in range(1, len(path))}
    return [(path, msg) for path, msg, scalar in found if not (scalar and tuple(path) in inside)]
