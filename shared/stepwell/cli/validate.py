"""``stepwell validate PATH...``: check definitions and print every problem, one per line.

Problems go to stdout as ``FILE:LINE:COL: step 'x': field 'y': message`` (the form editors and CI
annotate), and the exit code is 1. When every definition is valid each gets one summary line and
the exit code is 0. A path that does not exist is a usage error: exit code 2.
"""

from __future__ import annotations

import argparse
import ast
import difflib
import importlib.util
import sys
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from stepwell.asl.loader import (
    aws_only,
    file_stem,
    foreign_apis,
    functions_named,
    is_asl_file,
    load_asl_file,
)
from stepwell.code.files import SOURCE_VERSION, is_code_file, load_code_file
from stepwell.code.literals import functions_named as code_functions_named
from stepwell.definition.errors import DefinitionError, Problem
from stepwell.definition.groups import GROUPS_FILE, load_groups, unknown_groups
from stepwell.definition.loader import Checked, check_file, discover
from stepwell.definition.models import TaskStep, Workflow
from stepwell.runtime import error_names

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare the paths to check."""
    parser.add_argument(
        "paths",
        nargs="+",
        type=Path,
        metavar="PATH",
        help="a workflow file, or a folder whose *.yaml, *.yml and *.py files are checked",
    )
    parser.add_argument(
        "--template",
        type=Path,
        default=None,
        help="check every task's function against this SAM template (default: template.yaml "
        "in the current folder, when there is one)",
    )
    parser.add_argument(
        "--no-template", action="store_true", help="do not check functions against a template"
    )
    parser.add_argument(
        "--groups",
        type=Path,
        default=None,
        help=f"check the groups approvals and input steps name against this groups file "
        f"(default: {GROUPS_FILE} in the current folder, when there is one)",
    )


def run(args: argparse.Namespace) -> int:
    """Check every definition named; print problems (exit 1) or one line per workflow (exit 0)."""
    try:
        files = discover(args.paths)
    except FileNotFoundError as exc:
        print(f"stepwell validate: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not files:
        named = ", ".join(str(p) for p in args.paths)
        print(f"stepwell validate: no workflow files in {named}", file=sys.stderr)
        return EXIT_USAGE

    problems: list[Problem] = []
    loaded: list[tuple[Path, Workflow, Locate]] = []
    functions = None if args.no_template else _template_functions(args.template)
    if isinstance(functions, str):
        print(f"stepwell validate: {functions}", file=sys.stderr)
        return EXIT_USAGE
    groups_file = args.groups or Path(GROUPS_FILE)
    groups = None
    if args.groups is not None or groups_file.exists():
        try:
            groups = load_groups(groups_file)
        except DefinitionError as exc:
            problems.extend(exc.problems)
    for file in files:
        # Only definition problems are caught: anything else is a bug and must show as one.
        try:
            if is_asl_file(file):
                machine = load_asl_file(file)
                loaded.append((file, machine.workflow, partial(machine.problem, field="name")))
                problems.extend(aws_only(file))
                problems.extend(foreign_apis(file))
                if functions is not None:
                    problems.extend(_unknown_named(functions_named(file), functions))
                    problems.extend(error_names.machine_unknown_names(file, functions.errors_of))
            elif is_code_file(file):
                for code in load_code_file(file):
                    loaded.append((file, code.workflow, partial(code.problem, field="name")))
                if functions is not None:
                    calls = code_functions_named(str(file), file.read_text(encoding="utf-8"))
                    problems.extend(_unknown_named(calls, functions))
            else:
                checked = check_file(file)
                problems.extend(_check_yaml(checked, functions))
                if groups is not None and checked.workflow is not None:
                    found = unknown_groups(
                        checked.workflow, checked.source, groups, str(groups_file)
                    )
                    problems.extend(found)
                if checked.workflow is not None and not checked.problems:
                    at_name = partial(checked.source.at_step, ("name",))
                    loaded.append((file, checked.workflow, at_name))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_names(loaded))

    order = {str(file): index for index, file in enumerate(files)}
    problems.sort(key=lambda p: (order.get(p.file, len(order)), p.line, p.col))
    for problem in problems:
        print(problem)
    errors = [p for p in problems if not p.warning]
    warnings = len(problems) - len(errors)
    also = f" and {_count(warnings, 'warning')}" if warnings else ""
    if errors:
        bad = len({p.file for p in errors})
        count = f"{_count(len(errors), 'problem')}{also} in {bad} of {_count(len(files), 'file')}"
        print(count, file=sys.stderr)
        return EXIT_PROBLEMS
    for file, workflow, _ in loaded:
        # The version is the one a run pins (and the API lists), whatever the kind.
        if is_asl_file(file):
            shape = "Step Functions machine"
            if file_stem(file) != workflow.name:
                shape += f" {file_stem(file)!r}, its name spelled as a workflow name"
        elif workflow.code is not None:
            declared = workflow.code_version or ""
            shape = "code-first" + ("" if declared.startswith(SOURCE_VERSION) else f" {declared}")
        else:
            shape = _count(len(workflow.steps), "step")
        print(f"{file}: {workflow.name} ok ({shape}, version {workflow.version})")
    if warnings:
        print(_count(warnings, "warning"), file=sys.stderr)
    return EXIT_OK


def _check_yaml(checked: Checked, functions: _Functions | None) -> list[Problem]:
    """A YAML file's problems, and what its functions and error names give away: a file's
    problems do not stop its other checks (its steps that could be built are checked)."""
    problems = list(checked.problems)
    if checked.workflow is None:
        return problems
    if functions is not None:
        problems.extend(_unknown_functions(checked, functions))
    problems.extend(
        error_names.unknown_names(
            checked.workflow,
            checked.source,
            functions.errors_of if functions is not None else _unknown,
            checked.stand_ins,
        )
    )
    return problems


@dataclass(frozen=True)
class _Functions:
    """The functions a template's own stack deploys (a nested engine's are not step functions):
    a step names one by its logical id, or by its FunctionName."""

    template: Path
    ids: frozenset[str]
    modules: dict[str, Path] = field(default_factory=dict)
    """The Python module of each function's handler (CodeUri and Handler), where it is one."""
    broken: dict[str, str] = field(default_factory=dict)
    """Why a function cannot start, for each whose Handler its code does not have."""
    _errors: dict[Path, frozenset[str] | None] = field(default_factory=dict, compare=False)

    def errors_of(self, function: str) -> frozenset[str] | None:
        """The exception names ``function``'s module can raise; None when they are unknown."""
        module = self.modules.get(function)
        if module is None:
            return None
        if module not in self._errors:
            self._errors[module] = error_names.module_errors(module)
        return self._errors[module]


def _template_functions(given: Path | None) -> _Functions | str | None:
    """The template's functions; None when there is no template to check against; an error
    message for a template named that cannot be read."""
    from stepwell.local import engine
    from stepwell.local.template import TemplateError

    path = given or Path("template.yaml")
    if given is None and not path.exists():
        return None
    try:
        template = engine.load(path)
    except TemplateError as exc:
        return f"cannot read {path}: {exc}"
    resources = {
        logical_id: resource
        for logical_id, resource in template.of_type(
            "AWS::Serverless::Function", "AWS::Lambda::Function"
        ).items()
        if logical_id not in template.nested
    }
    names = {
        name: logical_id
        for logical_id, resource in resources.items()
        if isinstance(name := (resource.get("Properties") or {}).get("FunctionName"), str)
    }
    functions = [*((k, k) for k in resources), *names.items()]
    modules = {
        function: module
        for function, logical_id in functions
        if (module := _handler_module(template, logical_id)) is not None
    }
    broken = {
        function: why
        for function, logical_id in functions
        if (why := _handler_problem(template, logical_id, path)) is not None
    }
    return _Functions(path, frozenset(resources) | frozenset(names), modules, broken)


def _handler_module(template: Any, logical_id: str) -> Path | None:
    """The file of a Python function's handler module (``CodeUri`` + ``Handler``), if it has
    one there."""
    props = template.properties(logical_id)
    code, handler = props.get("CodeUri"), props.get("Handler")
    runtime = str(props.get("Runtime", "python"))
    if not (isinstance(code, str) and isinstance(handler, str)) or not runtime.startswith("py"):
        return None
    module = handler.rpartition(".")[0]
    if not module:
        return None
    base = Path(template.base, code, *module.split("."))
    found = [p for p in (base.with_suffix(".py"), base / "__init__.py") if p.is_file()]
    return found[0] if found else None


def _unknown_named(
    named: list[tuple[str, Callable[[str], Problem]]], known: _Functions
) -> list[Problem]:
    """A machine's Tasks (or a code-first file's calls) naming a function the template does
    not deploy, deploys under a name the runtime cannot find, or cannot start (an ARN is taken
    as it is)."""
    return [locate(why) for name, locate in named if (why := _why_unknown(name, known)) is not None]


def _why_unknown(name: str, known: _Functions) -> str | None:
    """Why a step's function would not run (None: it would, or it is an ARN)."""
    if name in known.ids:
        return known.broken.get(name)
    if not name or name.startswith("arn:"):
        return None
    close = difflib.get_close_matches(name, sorted(known.ids), n=1)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return (
        f"unknown function '{name}': {known.template} deploys no function of that "
        f"logical id{hint} (add an AWS::Serverless::Function, or give an ARN)"
    )


def _unknown_functions(checked: Checked, known: _Functions) -> list[Problem]:
    """Task steps naming a function the template does not deploy (or deploys under a name the
    runtime cannot find)."""
    workflow, source = checked.workflow, checked.source
    assert workflow is not None
    named: list[tuple[tuple[str, ...], str]] = []
    for key, step in workflow.steps.items():
        if key in checked.stand_ins:
            continue
        if isinstance(step, TaskStep):
            named.append((("steps", key, "function"), step.function))
        if step.undo is not None:
            path: tuple[str, ...] = ("steps", key, "compensate")
            if not isinstance(step.compensate, str):
                path = (*path, "function")
            named.append((path, step.undo.function))
    return [
        source.at_step(where, why)
        for where, name in named
        if (why := _why_unknown(name, known)) is not None
    ]


def _unknown(function: str) -> None:
    """Without a template, a function's exceptions are not known."""
    return None


Locate = Callable[[str], Problem]
"""A problem at a workflow's name, given its message."""


def _duplicate_names(loaded: list[tuple[Path, Workflow, Locate]]) -> list[Problem]:
    """Runs are started by workflow name, so two files may not define the same one (versions of
    one code-first workflow live in one file)."""
    first: dict[str, Path] = {}
    problems: list[Problem] = []
    for file, workflow, locate in loaded:
        if workflow.name in first and first[workflow.name] != file:
            problems.append(
                locate(
                    f"workflow name '{workflow.name}' is already used by {first[workflow.name]}: "
                    "give each workflow its own name"
                )
            )
        else:
            first.setdefault(workflow.name, file)
    return problems


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"


def _handler_problem(template: Any, logical_id: str, path: Path) -> str | None:
    """Why a Python function's Handler would not load (its module is neither in its CodeUri
    nor installed, or defines no such function), read without importing the user's code; None
    when it loads, or when it cannot be told here."""
    props = template.properties(logical_id)
    code, handler = props.get("CodeUri"), props.get("Handler")
    runtime = str(props.get("Runtime", "python"))
    if not (isinstance(code, str) and isinstance(handler, str)) or not runtime.startswith("py"):
        return None
    module_name, _, name = handler.rpartition(".")
    folder = Path(template.base, code)
    if not module_name or not folder.is_dir():
        return None
    start = f"function '{logical_id}' cannot start: its Handler '{handler}'"
    module = _handler_module(template, logical_id)
    if module is None:
        if _installed(module_name):
            return None
        here = sorted(p.stem for p in folder.glob("*.py")) + sorted(
            p.parent.name for p in folder.glob("*/__init__.py")
        )
        return (
            f"{start} names a module '{module_name}' that is neither in {code} (its CodeUri) nor "
            f"installed{_did_you_mean(module_name, here)} (fix the Handler in {path})"
        )
    defined = _top_level_names(module)
    if defined is None or name in defined:
        return None
    where = Path(code, module.relative_to(folder)).as_posix()
    return (
        f"{start} names no function '{name}' in {where}{_did_you_mean(name, sorted(defined))} "
        f"(fix the Handler in {path}, or define the function there)"
    )


def _installed(module: str) -> bool:
    """Whether ``module`` can be imported here (a library's, or Stepwell's own handlers)."""
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _top_level_names(module: Path) -> frozenset[str] | None:
    """The names a module defines as it is imported; None when that cannot be told from its
    text (it does not parse, imports ``*``, or answers names with ``__getattr__``)."""
    try:
        tree = ast.parse(module.read_text(encoding="utf-8"), str(module))
    except (OSError, SyntaxError, ValueError):
        return None
    names: set[str] = set()
    todo: list[ast.stmt] = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef):
            names.add(node.name)
        elif isinstance(node, ast.Import | ast.ImportFrom):
            if any(alias.name == "*" for alias in node.names):
                return None
            names.update(alias.asname or alias.name.split(".")[0] for alias in node.names)
        elif isinstance(node, ast.Assign | ast.AnnAssign | ast.AugAssign):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            names.update(n.id for t in targets for n in ast.walk(t) if isinstance(n, ast.Name))
        elif isinstance(node, ast.If | ast.Try | ast.With | ast.For | ast.While):
            for part in ("body", "orelse", "finalbody", "handlers"):
                todo.extend(getattr(node, part, []))
        elif isinstance(node, ast.ExceptHandler):
            todo.extend(node.body)
    return None if "__getattr__" in names else frozenset(names)


def _did_you_mean(name: str, candidates: list[str]) -> str:
    close = difflib.get_close_matches(name, candidates, n=1)
    return f"; did you mean '{close[0]}'?" if close else ""
