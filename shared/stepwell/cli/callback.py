"""``stepwell callback URL|TOKEN --success JSON | --failure TYPE[:MESSAGE] | --heartbeat``.

Answer a callback wait as the external system would: ``stepwell dev`` prints each callback's URL
when it opens (and it is in the ``callback.requested`` event). A URL carries its API; a bare
token goes to ``--api``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from stepwell.api import client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The callback, the answer and the API."""
    parser.add_argument("link", metavar="URL|TOKEN", help="a callback URL or its token")
    answer = parser.add_mutually_exclusive_group(required=True)
    answer.add_argument("--success", metavar="JSON", help="the step's output, as JSON")
    answer.add_argument(
        "--failure", metavar="TYPE[:MESSAGE]", help="fail the step with this error name"
    )
    answer.add_argument("--heartbeat", action="store_true", help="still working: extend it")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Send the answer; exit 1 when it is refused, 2 when the JSON is not JSON."""
    base, token = split(args.link, str(args.api))
    body: dict[str, Any]
    if args.success is not None:
        try:
            body = {"status": "success", "output": json.loads(args.success)}
        except json.JSONDecodeError as exc:
            print(
                f"stepwell callback: --success is not JSON ({exc}); quote it, like '{{\"ok\": 1}}'"
            )
            return 2
    elif args.failure is not None:
        kind, _, message = args.failure.partition(":")
        body = {"status": "failure", "error": {"type": kind.strip(), "message": message.strip()}}
    else:
        body = {"status": "heartbeat"}
    try:
        done = client.Client(base, auth=args.auth).post(
            f"/callbacks/{token}", body, expect=("status", "run_id", "step", "outcome")
        )
    except client.ApiError as exc:
        return client.report("callback", exc)
    print(f"{done['status']} for {done['run_id']} / {done['step']}: {done['outcome']}")
    return 0


def split(link: str, api: str) -> tuple[str, str]:
    """(API base URL, token) of a callback URL, or of a bare token with ``api``."""
    if "/callbacks/" in link:
        base, _, token = link.partition("/callbacks/")
        return (base or api), token.split("?", 1)[0].strip("/")
    return api, link.strip()
