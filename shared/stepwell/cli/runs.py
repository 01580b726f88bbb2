"""``stepwell runs``: the newest runs, of one workflow, in one status, or of every workflow."""

from __future__ import annotations

import argparse
import json
from typing import Any, get_args

from stepwell.api import client
from stepwell.engine.state import RunStatus

STATUSES = get_args(RunStatus)


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Filters and the API."""
    parser.add_argument("--workflow", "-w", help="only runs of this workflow")
    parser.add_argument("--status", "-s", choices=STATUSES, help="only runs in this status")
    parser.add_argument("--limit", "-n", type=int, default=20, help="how many (default 20)")
    parser.add_argument("--json", action="store_true", help="print the runs as JSON")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """List runs newest first."""
    api = client.from_args(args)
    limit = max(1, min(int(args.limit), 100))
    try:
        if args.workflow or args.status:
            found = api.get(
                "/runs",
                {"workflow": args.workflow, "status": args.status, "limit": limit},
                expect=("runs",),
            )["runs"]
        else:
            found = _every_workflow(api, limit)
    except client.ApiError as exc:
        return client.report("runs", exc)
    if args.json:
        # The listing's "id" is what every other answer calls "run_id".
        renamed = [{("run_id" if k == "id" else k): v for k, v in r.items()} for r in found]
        print(json.dumps(renamed, indent=2))
        return 0
    print(table(found))
    return 0


def _every_workflow(api: client.Client, limit: int) -> list[dict[str, Any]]:
    """Runs are listed per workflow or status: merge the newest of every workflow."""
    runs: list[dict[str, Any]] = []
    for workflow in api.get("/workflows", expect=("workflows",))["workflows"]:
        query = {"workflow": workflow["name"], "limit": limit}
        runs.extend(api.get("/runs", query, expect=("runs",))["runs"])
    runs.sort(key=lambda r: (r["created_at"], r["id"]), reverse=True)
    return runs[:limit]


def table(runs: list[dict[str, Any]]) -> str:
    """Runs as aligned columns."""
    if not runs:
        return "no runs"
    rows = [("RUN", "WORKFLOW", "STATUS", "CREATED", "ENDED")]
    rows += [
        (
            r["id"],
            r["workflow"],
            r["status"] + (" (dry run)" if r.get("dry_run") else ""),
            _time(r.get("created_at")),
            _time(r.get("ended_at")),
        )
        for r in runs
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        for row in rows
    )


def _time(value: str | None) -> str:
    return value.replace("T", " ")[:19] if value else "-"
