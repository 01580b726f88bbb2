"""``stepwell show RUN [--follow]``: a run, its steps and its timeline; --follow polls for new
entries until the run ends (the exit code then says how it ended: 0 succeeded, 1 otherwise)."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any
from urllib.parse import quote

from stepwell.api import client
from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.engine.state import error_text

TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
PAGE = 500


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, --follow and the API."""
    parser.add_argument("run_id", metavar="RUN", help="the run's id")
    parser.add_argument(
        "--follow", "-f", action="store_true", help="print new timeline entries until it ends"
    )
    parser.add_argument(
        "--interval", type=float, default=2.0, help="seconds between polls (--follow)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="give up following after this many seconds"
    )
    parser.add_argument("--json", action="store_true", help="print the run and steps as JSON")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Show the run; follow it when asked."""
    api = client.from_args(args)
    path = f"/runs/{quote(args.run_id, safe='')}"
    try:
        detail = api.get(path, expect=("run", "steps"))
        if args.json:
            print(json.dumps(detail, indent=2))
            return 0
        print(summary(detail))
        print()
        cursor = _print_timeline(api, path, None)
        if not args.follow:
            return 0
        return _follow(api, path, cursor, args.interval, args.timeout)
    except client.ApiError as exc:
        return client.report("show", exc)


def _follow(
    api: client.Client, path: str, cursor: str | None, interval: float, timeout: float | None
) -> int:
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        status = api.get(path, expect=("run",))["run"]["status"]
        cursor = _print_timeline(api, path, cursor)
        if status in TERMINAL:
            print(f"run {status}")
            return 0 if status == "succeeded" else 1
        if deadline is not None and time.monotonic() >= deadline:
            print(f"still {status} after {timeout:g}s; stopped following", file=sys.stderr)
            return 3
        time.sleep(interval)


def _print_timeline(api: client.Client, path: str, cursor: str | None) -> str | None:
    """Print entries from ``cursor`` on; the cursor to poll with next."""
    while True:
        page = api.get(f"{path}/timeline", {"cursor": cursor, "limit": PAGE}, expect=("entries",))
        for entry in page["entries"]:
            print(entry_line(entry))
        cursor = page.get("cursor") or cursor
        if len(page["entries"]) < PAGE:
            return cursor


def summary(detail: dict[str, Any]) -> str:
    """The run and its steps, for a person."""
    run = detail["run"]
    lines = [
        f"run       {run['id']}",
        f"workflow  {run['workflow']} (version {run['version']})",
        f"status    {run['status']}" + (" (dry run)" if run.get("dry_run") else ""),
        f"created   {_time(run.get('created_at'))}   ended {_time(run.get('ended_at'))}",
    ]
    if run.get("rerun_of"):
        lines.append(f"rerun of  {run['rerun_of']}")
    if run.get("error"):
        lines.append(f"error     {error_text(run['error'])}")
    rows = [("STEP", "STATUS", "ATTEMPT", "NOTE")]
    for step in detail["steps"]:
        if step["key"] == WORKFLOW_KEY:
            continue  # a code-first run's replay: Stepwell's machinery, not a step of the user's
        rows.append((step["key"], step["status"], str(step["attempt"] or "-"), _note(step)))
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines.append("")
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in rows
    ]
    return "\n".join(lines)


def _note(step: dict[str, Any]) -> str:
    if step.get("error"):
        return error_text(step["error"])[:80]
    if step.get("items_total") is not None:
        return f"{step['children_succeeded']}/{step['items_total']} items" + (
            f", {step['children_failed']} failed" if step["children_failed"] else ""
        )
    if step.get("waiting_for"):
        due = step.get("due_at")
        return f"waiting for {step['waiting_for']}" + (f" until {_time(due)}" if due else "")
    if step.get("copied_from"):
        return f"copied from {step['copied_from']}"
    return ""


def entry_line(entry: dict[str, Any]) -> str:
    """One timeline entry on one line."""
    where = entry.get("step") or ""
    if where and entry.get("attempt"):
        where += f"#{entry['attempt']}"
    at = str(entry.get("at", ""))[11:19]
    return f"{at}  {entry['type']:<22} {where:<16} {entry.get('message', '')}".rstrip()


def _time(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"
