"""``stepwell send-event SOURCE DETAIL_TYPE [--detail JSON] [--id ID]``: put an event on the
engine's bus (``POST /events``), as the system a run waits on would."""

from __future__ import annotations

import argparse
import json

from stepwell.api import client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The event and the API."""
    parser.add_argument("source", help="the event's source, e.g. payments")
    parser.add_argument("detail_type", metavar="DETAIL_TYPE", help="e.g. payment.settled")
    parser.add_argument("--detail", default="{}", metavar="JSON", help="the event's detail")
    parser.add_argument(
        "--id", help="an id of your own: sent again with it, the event completes nothing twice"
    )
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Send; exit 1 when the API refuses it, 2 when the detail is not a JSON object."""
    try:
        detail = json.loads(args.detail)
    except json.JSONDecodeError as exc:
        print(f"stepwell send-event: --detail is not JSON ({exc}); quote it, like '{{\"id\": 1}}'")
        return 2
    if not isinstance(detail, dict):
        print('stepwell send-event: --detail must be a JSON object, like \'{"order_id": "o-1"}\'')
        return 2
    body = {"source": args.source, "detail_type": args.detail_type, "detail": detail}
    if args.id is not None:
        body["id"] = args.id
    try:
        client.from_args(args).post("/events", body, expect=("source", "detail_type"))
    except client.ApiError as exc:
        return client.report("send-event", exc)
    print(f"sent {args.source} {args.detail_type}")
    return 0
