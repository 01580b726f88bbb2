"""``stepwell asl import FILE``: a Step Functions machine as a Stepwell YAML workflow.

The machine is loaded as ``stepwell validate`` loads it (the same located problems), translated
by :mod:`stepwell.asl.importer`, and the YAML checked by Stepwell's own loader before it is
written: to ``<name>.yaml`` beside the machine, or to ``--output`` (``-``: standard output).
When a state has no faithful YAML equivalent nothing is written: each such state is named
``FILE:LINE:COL: state 'X': why`` and the exit code is 1 (the machine still runs as it is).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from stepwell.asl.importer import convert, to_yaml
from stepwell.asl.loader import is_asl_file, load_asl_file, machine_name, read_machine
from stepwell.definition.errors import DefinitionError, Problem
from stepwell.definition.loader import load_text

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Declare ``stepwell asl import``."""
    commands = parser.add_subparsers(dest="asl_command", metavar="COMMAND", required=True)
    command = commands.add_parser(
        "import",
        help="Write a Step Functions machine as Stepwell YAML, or say which states stay ASL.",
        description="Write the Stepwell YAML workflow equivalent to a Step Functions machine "
        "(statemachines/<name>.asl.json or .asl.yaml), or say per state why it stays ASL.",
    )
    command.add_argument("file", type=Path, metavar="FILE", help="the machine's file")
    command.add_argument(
        "--output",
        "-o",
        metavar="OUT.yaml",
        default=None,
        help="where to write the YAML (default: <name>.yaml beside FILE; '-': standard output)",
    )
    command.add_argument(
        "--force", action="store_true", help="overwrite the output file if it exists"
    )


def run(args: argparse.Namespace) -> int:
    """Run ``stepwell asl import``."""
    return import_machine(args.file, args.output, args.force)


def import_machine(path: Path, output: str | None, force: bool) -> int:
    """Translate the machine of ``path``; write it or print why it stays ASL."""
    if not path.is_file():
        return _usage(f"no such file: {path}")
    if not is_asl_file(path):
        return _usage(
            f"{path} is not a Step Functions machine: name it <name>.asl.json or .asl.yaml"
        )
    try:
        load_asl_file(path)
        document, source, _ = read_machine(path)
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem)
        print(
            f"{path}: fix the machine first (stepwell validate {path} says the same)",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    name = machine_name(path)
    conversion = convert(document, source, name)
    if conversion.workflow is None:
        for problem in conversion.problems:
            print(_line(problem))
        kept = {p.step for p in conversion.problems}
        would = [state for state in conversion.states if state not in kept]
        if would and kept != {None}:
            print(f"{path}: the other states have YAML equivalents: {', '.join(would)}")
        print(
            f"{path}: nothing was written; the machine runs as it is on Stepwell without "
            f"converting (stepwell run {name})"
        )
        return EXIT_PROBLEMS

    target = path.with_name(f"{name}.yaml") if output is None else Path(output)
    shown = "standard output" if output == "-" else str(target)
    text = to_yaml(conversion.workflow, path.name)
    try:
        workflow = load_text(text, shown)
    except DefinitionError as exc:  # the translation's own fault: say so, write nothing
        for problem in exc.problems:
            print(problem)
        print(
            f"{path}: the YAML made of it does not validate; nothing was written", file=sys.stderr
        )
        return EXIT_PROBLEMS
    summary = (
        f"{len(conversion.states)} states of {path} as {_count(len(workflow.steps), 'step')}, "
        f"validated (version {workflow.version})"
    )
    if output == "-":
        sys.stdout.write(text)
        print(summary, file=sys.stderr)
        return EXIT_OK
    if target.exists() and not force:
        print(
            f"stepwell asl import: {target} exists; pass --force to overwrite it, or --output "
            "another file",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    target.write_text(text, encoding="utf-8")
    print(f"wrote {target}: workflow '{name}'")
    print(summary)
    if target.parent == path.parent:
        print(
            f"{path} names the same workflow: remove it once the YAML does what it did "
            "(two files may not define one workflow)"
        )
    return EXIT_OK


def _line(problem: Problem) -> str:
    where = f"{problem.file}:{problem.line}:{problem.col}: "
    if problem.step is not None:
        where += f"state '{problem.step}': "
    return where + problem.message


def _usage(message: str) -> int:
    print(f"stepwell asl import: {message}", file=sys.stderr)
    return EXIT_USAGE


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}{'' if n == 1 else 's'}"
