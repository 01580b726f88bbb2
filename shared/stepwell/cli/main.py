"""``stepwell``: one entry point, one module per command."""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Sequence

from stepwell import __version__

# command -> module under stepwell.cli exposing ``add_arguments(parser)`` and ``run(args) -> int``
COMMANDS = {
    "validate": ("validate", "Check workflow definitions and print every problem."),
    "schema": ("schema", "Print the JSON Schema of the workflow definition format."),
    "demo": ("demo", "Run the order example end to end and print its timeline."),
    "init": ("init", "Start an app of your own: a project that uses Stepwell's engine."),
    "engine": ("engine", "The engine this package ships: `engine path`, `engine package`."),
    "publish": ("publish", "Publish workflows into an engine (--dry-run: say what changes)."),
    "runs": ("runs", "List the newest runs (of a workflow, in a status)."),
    "start": ("start", "Start a run on a running stack (stepwell dev, or --api URL)."),
    "show": ("show", "Show a run, its steps and timeline; --follow until it ends."),
    "approve": ("approve", "Approve (or --reject) through an approval link."),
    "callback": ("callback", "Answer a callback wait (--success JSON, --failure, --heartbeat)."),
    "cancel": ("cancel", "Cancel a run."),
    "send-event": ("send_event", "Put an event on the engine's bus for the runs waiting for it."),
    "skip": ("skip", "Skip a step of a run, after saying what else it skips (--output to run on)."),
    "rerun": ("rerun", "Start a new run from a step of a run (--dry-run to preview)."),
    "dev": ("dev", "Run template.yaml locally (API, functions, events, schedules) until Ctrl-C."),
    "run": ("run", "Run one workflow to its end through the local stack and print the result."),
    "time": ("time", "Show, advance or resume the virtual clock of stepwell dev."),
    "ui": ("ui", "Serve the dashboard on 127.0.0.1 against a deployed stack (SigV4-signed)."),
    "asl": ("asl", "Step Functions machines: `asl import FILE` writes one as Stepwell YAML."),
}


EXIT_BROKEN_PIPE = 141
"""What a shell reports for a command killed by SIGPIPE (128 + 13)."""


def main(argv: Sequence[str] | None = None) -> int:
    """Parse the command line and run one command; the exit code is the command's."""
    parser = argparse.ArgumentParser(prog="stepwell", description="Durable workflows on AWS.")
    parser.add_argument("--version", action="version", version=f"stepwell {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)
    for name, (module_name, help_text) in COMMANDS.items():
        module = importlib.import_module(f"stepwell.cli.{module_name}")
        command = sub.add_parser(name, help=help_text, description=help_text)
        module.add_arguments(command)
        command.set_defaults(_module=module)
    args = parser.parse_args(argv)
    try:
        code: int = args._module.run(args)
        sys.stdout.flush()
    except BrokenPipeError:
        # The reader went away (`stepwell show RUN | head`): what it did not read is not needed,
        # and Python's final flush of stdout must not fail again on the closed pipe.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_BROKEN_PIPE
    return code


if __name__ == "__main__":
    sys.exit(main())
