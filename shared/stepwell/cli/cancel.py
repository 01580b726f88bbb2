"""``stepwell cancel RUN``: cancel a run (its open steps are cancelled too)."""

from __future__ import annotations

import argparse

from stepwell.api import client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The run, a reason and the API."""
    parser.add_argument("run_id", metavar="RUN", help="the run's id")
    parser.add_argument("--reason", help="noted on the run's timeline")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Cancel; exit 1 when the run has already ended or does not exist."""
    body = {"reason": args.reason} if args.reason else {}
    try:
        answer = client.from_args(args).post(
            f"/runs/{_quote(args.run_id)}/cancel", body, expect=("run_id", "status")
        )
    except client.ApiError as exc:
        return client.report("cancel", exc)
    run_id, status = answer["run_id"], answer["status"]
    if status == "cancelled":
        print(f"{run_id}: cancelled")
    else:
        print(
            f"{run_id}: cancel requested; the run is {status} while it winds down (its code "
            "is told, its compensations run), then ends cancelled: follow it with "
            f"stepwell show {run_id} --follow"
        )
    return 0


def _quote(value: str) -> str:
    from urllib.parse import quote

    return quote(value, safe="")
