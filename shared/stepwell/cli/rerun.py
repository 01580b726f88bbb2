"""``stepwell rerun RUN --from STEP``: a new run from a step, copying its ancestors' outputs."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stepwell.api import client


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
            body["input"] = json_argument(args.input)
        except (OSError, ValueError) as exc:
            print(f"stepwell rerun: --input: {exc}", file=sys.stderr)
            return 2
    try:
        answer = client.from_args(args).post(f"/runs/{quote(args.run_id, safe='')}/rerun", body)
    except client.ApiError as exc:
        return client.report("rerun", exc)
    dry = " (dry run)" if answer.get("dry_run") else ""
    print(f"{answer['run_id']}: rerun of {args.run_id} from {args.from_step}{dry}")
    return 0


def json_argument(text: str) -> Any:
    """A JSON option's value: JSON text, or ``@FILE`` for a file's (OSError, ValueError)."""
    if text.startswith("@"):
        text = Path(text[1:]).read_text()
    return json.loads(text)
