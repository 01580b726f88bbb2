"""``stepwell ui``: the dashboard on 127.0.0.1 against a deployed stack, its API calls signed
with your AWS credentials (SigV4), until Ctrl-C. ``stepwell dev`` serves the dashboard itself."""

from __future__ import annotations

import argparse
import os
import threading

from stepwell.ui.proxy import DashboardServer, sigv4_signer

EXIT_OK, EXIT_USAGE = 0, 2
DEFAULT_PORT = 3100


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stepwell ui``."""
    parser.add_argument(
        "--api",
        default=os.environ.get("STEPWELL_API"),
        metavar="URL",
        help="the deployed Stepwell API (the stack's ApiUrl output; default: $STEPWELL_API)",
    )
    parser.add_argument("--profile", help="the AWS profile whose credentials sign the calls")
    parser.add_argument("--region", help="the API's region (default: from the URL)")
    parser.add_argument(
        "--port", type=int, default=DEFAULT_PORT, help=f"port on 127.0.0.1 (default {DEFAULT_PORT})"
    )
    parser.add_argument(
        "--no-auth", action="store_true", help="send the calls unsigned (a local stack)"
    )


def run(args: argparse.Namespace) -> int:
    """Serve the dashboard until interrupted."""
    if not args.api:
        print("stepwell ui: give --api URL (the stack's ApiUrl output) or set STEPWELL_API")
        return EXIT_USAGE
    try:
        sign = None if args.no_auth else sigv4_signer(args.api, args.profile, args.region)
        server = DashboardServer(args.api, sign, port=args.port)
    except (ValueError, OSError) as exc:
        print(f"stepwell ui: {exc}")
        return EXIT_USAGE
    server.start()
    print(f"Stepwell dashboard: {server.url}  (API {server.api_url}; Ctrl-C to stop)", flush=True)
    try:
        threading.Event().wait()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return EXIT_OK
