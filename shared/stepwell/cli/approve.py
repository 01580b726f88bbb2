"""``stepwell approve URL|TOKEN [--reject] [--comment TEXT]``: decide an approval link.

The link's page (as JSON) names both of the approver's links, so either link decides either
way: ``--reject`` rejects with an approve link too. A URL carries its API; a bare token goes to
``--api``.
"""

from __future__ import annotations

import argparse
from urllib.parse import urlsplit

from stepwell.api import client


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The link, the decision, a comment and the API."""
    parser.add_argument("link", metavar="URL|TOKEN", help="an approval link or its token")
    parser.add_argument("--reject", action="store_true", help="reject (approve by default)")
    parser.add_argument("--comment", "-m", help="noted on the run's timeline")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Show what is asked, then decide; exit 1 when the link is refused."""
    base, token = split(args.link, str(args.api))
    api = client.Client(base, auth=args.auth)
    decision = "reject" if args.reject else "approve"
    try:
        asked = api.get(f"/approvals/{token}", expect=("message",))
        target = urlsplit(asked[f"{decision}_url"]).path.rsplit("/", 1)[-1]
        form = {"decision": decision}
        if args.comment:
            form["comment"] = args.comment
        done = api.post(
            f"/approvals/{target}", form=form, expect=("run_id", "step", "approver", "step_status")
        )
    except client.ApiError as exc:
        return client.report("approve", exc)
    verb = "approved" if decision == "approve" else "rejected"
    print(
        f"{verb} {done['run_id']} / {done['step']} as {done['approver']}: "
        f"{asked['message']} (step now {done['step_status']})"
    )
    return 0


def split(link: str, api: str) -> tuple[str, str]:
    """(API base URL, token) of a link, or of a bare token with ``api``."""
    if "/approvals/" in link:
        base, _, token = link.partition("/approvals/")
        token = token.split("?", 1)[0].split("#", 1)[0].strip("/")
        return (base or api), token
    return api, link.strip()
