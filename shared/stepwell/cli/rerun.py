"""``stepwell rerun RUN --from STEP``: a new run from a step, copying its ancestors' outputs."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from stepwell.api import client
from stepwell.cli.run import UsageError, read_input
from stepwell.cli.start import api_option


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the step, options and the API."""
    parser.add_argument("run_id", metavar="RUN", help="the run to rerun from")
    parser.add_argument("--from", dest="from_step", required=True, metavar="STEP")
    parser.add_argument(
        "--input", metavar="JSON|@FILE", help="new input (the original run's by default)"
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="record dispatched steps without invoking them"
    )
    parser.add_argument(
        "--version",
        default="original",
        help="the definition the new run pins: original (default), latest, or a version id",
    )
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Start the new run and print its id."""
    body: dict[str, Any] = {
        "from_step": args.from_step,
        "dry_run": bool(args.dry_run),
        "version": args.version,
    }
    if args.input is not None:
        try:
            body["input"] = read_input(args.input)
        except UsageError as exc:
            print(f"stepwell rerun: {exc}", file=sys.stderr)
            return 2
    try:
        answer = client.from_args(args).post(
            f"/runs/{quote(args.run_id, safe='')}/rerun", body, expect=("run_id",)
        )
    except client.ApiError as exc:
        return client.report("rerun", exc)
    new_id, dry = answer["run_id"], bool(answer.get("dry_run"))
    print(f"{new_id}: rerun of {args.run_id} from {args.from_step}" + (" (dry run)" if dry else ""))
    # A dry run records the steps it would run, and runs none: the new run shows them.
    hint = "see what it would run" if dry else "follow it"
    print(f"{hint}: stepwell show {new_id}{'' if dry else ' --follow'}{api_option(args)}")
    return 0
