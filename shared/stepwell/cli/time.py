"""``stepwell time``: the local stack's clock under ``stepwell dev --virtual-time``.

    stepwell time                 # now, and whether the clock holds for open approvals
    stepwell time advance 2h      # move virtual time on (what falls due fires)
    stepwell time resume          # skip idle waits again, approvals and callbacks included

Under ``--virtual-time`` the dev stack skips idle waits (delays, retries, timers) but never jumps
over an approval or a callback that a person or a system is to answer; ``advance`` moves the
clock on request (past an approval's timeout, say), ``resume`` lets it skip those waits too.
"""

from __future__ import annotations

import argparse

from stepwell.api import client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """What to do with the clock, and the API."""
    parser.add_argument("action", nargs="?", choices=["show", "advance", "resume"], default="show")
    parser.add_argument("by", nargs="?", help="for advance: a duration, like 2h, 30m or 1d")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Show, advance or resume the local clock; exit 1 on the stack's refusal."""
    api = client.from_args(args)
    clock = ("now", "virtual", "holds_waits", "skipped_s")
    try:
        if args.action == "advance":
            if not args.by:
                print("stepwell time advance: say how far, like: stepwell time advance 2h")
                return 2
            answer = api.post("/_local/time/advance", {"by": args.by}, expect=clock)
        elif args.action == "resume":
            answer = api.post("/_local/time/resume", {}, expect=clock)
        else:
            answer = api.get("/_local/time", expect=clock)
    except client.ApiError as exc:
        return client.report("time", exc)
    kind = "virtual time" if answer["virtual"] else "real time"
    held = ", held at open approvals and callbacks" if answer["holds_waits"] else ""
    print(f"{answer['now']} ({kind}{held}; {answer['skipped_s']:g}s skipped so far)")
    return 0
