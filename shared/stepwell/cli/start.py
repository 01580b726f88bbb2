"""``stepwell start WORKFLOW --input JSON|@FILE``: start a run on a running stack.

The run is started with ``POST /workflows/{name}/runs`` on the API ``--api`` (or
``$STEPWELL_API``) names: ``stepwell dev``'s, or a deployed one (signed with SigV4, as every
command that talks to the API). It is a run like any other: the dashboard lists it, ``stepwell
show`` follows it. With ``--wait`` the command follows the run to its end.

Exit codes: 0 started (with ``--wait``: succeeded); 1 the run failed, was cancelled or timed out
(``--wait``), or the API answered with an error; 2 bad input, an unknown workflow, an input the
workflow's schema refuses, or an API that cannot be reached; 3 ``--timeout`` passed first.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from typing import Any
from urllib.parse import quote

from stepwell.api import client
from stepwell.cli.run import UsageError, read_input
from stepwell.cli.show import TERMINAL
from stepwell.engine.state import error_text

EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_STILL_RUNNING = 0, 1, 2, 3
REFUSED = frozenset({400, 404, 413, 422})
"""Answers that say the request itself was wrong (bad input, no such workflow)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The workflow, its input, waiting, and the API."""
    parser.add_argument("workflow", help="the workflow's name")
    parser.add_argument(
        "--input", metavar="JSON|@FILE", help="the run's input: JSON text, or @path of a JSON file"
    )
    parser.add_argument(
        "--label",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a label of the run (repeatable); `stepwell runs` and the dashboard filter on them",
    )
    parser.add_argument(
        "--idempotency-key",
        metavar="KEY",
        help="starting again with the same key (and input) within 24 hours finds the same run",
    )
    parser.add_argument(
        "--start-at",
        metavar="TIME",
        help="start the run then (ISO 8601 with its offset, e.g. 2026-12-24T09:00:00+00:00); "
        "until then it is scheduled and can be cancelled",
    )
    parser.add_argument(
        "--priority",
        type=int,
        help="its place in its concurrency key's queue, higher first (a workflow with concurrency)",
    )
    parser.add_argument("--wait", action="store_true", help="follow the run until it ends")
    parser.add_argument(
        "--interval", type=float, default=1.0, help="seconds between polls (--wait)"
    )
    parser.add_argument(
        "--timeout", type=float, default=None, help="stop waiting after this many seconds"
    )
    parser.add_argument(
        "--json",
        action="store_true",
        help="print the started run as JSON (with --wait: the run and its steps at the end)",
    )
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Start the run; with --wait, follow it to its end."""
    try:
        body: dict[str, Any] = {"input": read_input(args.input)}
        labels = _labels(args.label)
    except UsageError as exc:
        print(f"stepwell start: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if labels:
        body["labels"] = labels
    if args.start_at:
        body["start_at"] = args.start_at  # the API says what is wrong with it
    if args.priority is not None:
        body["priority"] = args.priority
    headers = {"Idempotency-Key": args.idempotency_key} if args.idempotency_key else None
    api = client.from_args(args)
    try:
        started = api.post(
            f"/workflows/{quote(args.workflow, safe='')}/runs",
            body,
            headers=headers,
            expect=("run_id", "status"),
        )
    except client.ApiError as exc:
        code = client.report("start", exc)
        return EXIT_USAGE if exc.status in REFUSED else code
    run_id = str(started["run_id"])
    if not args.wait:
        if args.json:
            print(json.dumps(started, indent=2))
        else:
            status = started["status"]
            said = status if status in ("scheduled", "queued") else "started"
            print(f"{said} {args.workflow} run {run_id}")
            print(f"follow it: stepwell show {run_id} --follow{api_option(args)}")
        return EXIT_OK
    if not args.json:
        print(f"started {args.workflow} run {run_id}; waiting for it to end")
    try:
        detail = _wait(api, run_id, args.interval, args.timeout)
    except client.ApiError as exc:
        return client.report("start", exc)
    status = str(detail["run"]["status"])
    if args.json:
        print(json.dumps(detail, indent=2))
    elif status in TERMINAL:
        print(_ending(detail["run"]))
    else:
        print(f"run {run_id} is still {status} after {args.timeout:g}s; stopped waiting")
    if status not in TERMINAL:
        return EXIT_STILL_RUNNING
    return EXIT_OK if status == "succeeded" else EXIT_FAILED


def _labels(given: list[str]) -> dict[str, str]:
    labels: dict[str, str] = {}
    for text in given:
        key, sep, value = text.partition("=")
        if not sep or not key:
            raise UsageError(f"--label {text!r}: write KEY=VALUE")
        labels[key] = value
    return labels


def _wait(api: client.Client, run_id: str, interval: float, timeout: float | None) -> Any:
    """The run and its steps once it has ended, or when ``timeout`` has passed."""
    path = f"/runs/{quote(run_id, safe='')}"
    deadline = None if timeout is None else time.monotonic() + timeout
    while True:
        detail = api.get(path, expect=("run", "steps"))
        if detail["run"].get("status") in TERMINAL:
            return detail
        if deadline is not None and time.monotonic() >= deadline:
            return detail
        time.sleep(max(interval, 0.05))


def _ending(run: dict[str, Any]) -> str:
    lines = [f"run {run.get('id')} {run.get('status')}"]
    if run.get("error"):
        lines.append(f"error: {error_text(run['error'])}")
    if "output" in run:
        lines.append(f"output: {json.dumps(run.get('output'))}")
    return "\n".join(lines)


def api_option(args: argparse.Namespace) -> str:
    """The ``--api`` to repeat in a hint, unless ``$STEPWELL_API`` or the default says it."""
    default = os.environ.get("STEPWELL_API", client.DEFAULT_API)
    return "" if str(args.api).rstrip("/") == default.rstrip("/") else f" --api {args.api}"
