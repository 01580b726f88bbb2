"""``stepwell skip RUN STEP``: skip a step, after saying which steps after it the skip skips
too (or, with ``--output``, that what follows runs on that output)."""

from __future__ import annotations

import argparse
import sys
from typing import Any
from urllib.parse import quote

from stepwell.api import client
from stepwell.cli.run import UsageError, read_input


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, the step, an output, a reason, --yes and the API."""
    parser.add_argument("run_id", metavar="RUN", help="the run's id")
    parser.add_argument("step", metavar="STEP", help="the step's key (as `stepwell show` lists)")
    parser.add_argument(
        "--output",
        metavar="JSON|@FILE",
        help="the step succeeds with this output and the steps after it run on it",
    )
    parser.add_argument("--reason", help="noted on the run's timeline")
    parser.add_argument(
        "--yes", "-y", action="store_true", help="skip without asking (what it skips is printed)"
    )
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Preview the skip, ask (unless --yes), then skip; exit 1 when refused or declined."""
    body: dict[str, Any] = {"reason": args.reason} if args.reason else {}
    if args.output is not None:
        try:
            body["output"] = read_input(args.output, "--output")
        except UsageError as exc:
            print(f"stepwell skip: {exc}", file=sys.stderr)
            return 2
    api = client.from_args(args)
    path = f"/runs/{quote(args.run_id, safe='')}/steps/{quote(args.step, safe='')}/skip"
    try:
        preview = api.post(path, {**body, "dry_run": True})
        print(_capital(preview["message"]))
        if not args.yes and not _confirmed():
            print("not skipped", file=sys.stderr)
            return 1
        answer = api.post(path, body)
    except client.ApiError as exc:
        return client.report("skip", exc)
    print(f"{answer['run_id']}: {answer['message']} (run {answer['status']})")
    return 0


def _confirmed() -> bool:
    """A person's yes; a script must say --yes (there is nobody to ask)."""
    if not sys.stdin.isatty():
        print("stepwell skip: pass --yes to skip without being asked", file=sys.stderr)
        return False
    return input("Skip? [y/N] ").strip().lower() in ("y", "yes")


def _capital(text: str) -> str:
    return text[:1].upper() + text[1:]
