"""``stepwell validate PATH...``: check definitions and print every problem, one per line.

Problems go to stdout as ``FILE:LINE:COL: step 'x': field 'y': message`` (the form editors and CI
annotate), and the exit code is 1. When every definition is valid each gets one summary line and
the exit code is 0. A path that does not exist is a usage error: exit code 2.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from functools import partial
from pathlib import Path

from stepwell.definition.code import is_code_file, load_code_file
from stepwell.definition.errors import DefinitionError, Problem
from stepwell.definition.loader import discover, load_with_source
from stepwell.definition.models import Workflow

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
    for file in files:
        # Only definition problems are caught: anything else is a bug and must show as one.
        try:
            if is_code_file(file):
                for code in load_code_file(file):
                    loaded.append((file, code.workflow, partial(code.problem, field="name")))
            else:
                workflow, source = load_with_source(file)
                loaded.append((file, workflow, partial(source.at_step, ("name",))))
        except DefinitionError as exc:
            problems.extend(exc.problems)
    problems.extend(_duplicate_names(loaded))

    if problems:
        for problem in problems:
            print(problem)
        bad = len({p.file for p in problems})
        print(
            f"{_count(len(problems), 'problem')} in {bad} of {_count(len(files), 'file')}",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    for file, workflow, _ in loaded:
        shape = (
            f"code-first, version {workflow.code_version}"
            if workflow.code is not None
            else f"{_count(len(workflow.steps), 'step')}, version {workflow.version}"
        )
        print(f"{file}: {workflow.name} ok ({shape})")
    return EXIT_OK


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
