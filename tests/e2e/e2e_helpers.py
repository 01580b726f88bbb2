"""Waiting on the local stack the way a client would: bus events and GET /runs/{id}."""

from __future__ import annotations

import json
import threading
from datetime import timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack
from stepwell.local.template import ACCOUNT, REGION, STACK, with_functions

HERE = Path(__file__).resolve().parent

TERMINAL = ("succeeded", "failed", "cancelled", "timed_out")
ORDER = {
    "order_id": "o-1001",
    "customer": "ada@example.com",
    "items": [
        {"sku": "KEYBOARD", "qty": 4, "price": 120.0},
        {"sku": "MONITOR", "qty": 2, "price": 340.0},
        {"sku": "CABLE", "qty": 10, "price": 9.5},
    ],
}
"""A large order (1,255): finance must approve it."""
SMALL_ORDER = {
    "order_id": "o-2002",
    "customer": "grace@example.com",
    "items": [{"sku": "MOUSE", "qty": 2, "price": 25.0}],
}
"""A small order (50): no approval."""


def completed(stack: LocalStack, run_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """Wait for the run's ``run.completed`` event on the bus (the timeout only bounds how long
    a run that never ends is waited for: a busy machine is slow, not wrong)."""
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "run.completed" and e["detail"]["run_id"] == run_id,
        timeout,
    )
    assert event is not None, f"run {run_id} did not end within {timeout}s"
    return event


def finished(stack: LocalStack, api: Client, run_id: str, timeout: float = 90.0) -> dict[str, Any]:
    """The run (GET /runs/{id}) once it has ended."""
    completed(stack, run_id, timeout)
    detail = api.run(run_id)
    assert detail["run"]["status"] in TERMINAL
    return detail


def approval_requested(stack: LocalStack, run_id: str, timeout: float = 30.0) -> dict[str, Any]:
    """The ``approval.requested`` event of a run (its detail holds the signed links)."""
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "approval.requested" and e["detail"]["run_id"] == run_id,
        timeout,
    )
    assert event is not None, f"run {run_id} asked for no approval within {timeout}s"
    detail: dict[str, Any] = event["detail"]
    return detail


def callback_url(stack: LocalStack, run_id: str, timeout: float = 30.0) -> str:
    """The signed URL of a run's callback wait, from its ``callback.requested`` event."""
    event = stack.wait_for_event(
        lambda e: e["detail-type"] == "callback.requested" and e["detail"]["run_id"] == run_id,
        timeout,
    )
    assert event is not None, f"run {run_id} opened no callback wait within {timeout}s"
    url: str = event["detail"]["url"]
    return url


def steps_of(detail: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """GET /runs/{id}'s steps by key."""
    return {step["key"]: step for step in detail["steps"]}


def timeline_types(api: Client, run_id: str) -> list[str]:
    """The types of the run's timeline entries, in order."""
    return [entry["type"] for entry in api.timeline(run_id)]


# -- the echo function ------------------------------------------------------------------------
ECHO = f"arn:aws:lambda:{REGION}:{ACCOUNT}:function:{STACK}-Echo"
"""``functions/echo.py``: it puts what it received on the default bus (detail-type ``echo``)."""


def echo_template(folder: Path) -> Path:
    """template.yaml plus the echo function, written to ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    return with_functions(
        HERE.parents[1], {"EchoFunction": (HERE / "functions", "echo.handler")}, folder
    )


def echoes(stack: LocalStack) -> list[Any]:
    """What the echo function received so far, in order."""
    return [e["detail"]["got"] for e in stack.events("echo")]


def wait_for_echoes(stack: LocalStack, count: int, timeout: float = 30.0) -> list[Any]:
    """Everything the echo function received, once it has received ``count`` things."""
    assert stack.run_until(lambda: len(echoes(stack)) >= count, timeout), echoes(stack)
    return echoes(stack)


# -- a Slack incoming webhook -----------------------------------------------------------------
class Webhook:
    """A Slack incoming webhook: records each post, answers the statuses it is told to."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.failing = 0
        """How many posts to come are answered 500."""
        hook = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["Content-Length"]))
                status = 200
                if hook.failing > 0:
                    hook.failing -= 1
                    status = 500
                else:
                    hook.posts.append(json.loads(body))
                self.send_response(status)
                self.end_headers()
                self.wfile.write(b"ok" if status == 200 else b"server_error")

            def log_message(self, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/services/T000/B000/secret"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()


def approval_requests(stack: LocalStack, run_id: str) -> list[dict[str, Any]]:
    """The ``approval.requested`` events of one run (the first request, reminders, escalations)."""
    return [e for e in stack.events("approval.requested") if e["detail"]["run_id"] == run_id]


def remind_for_two_days(stack: LocalStack, run_id: str) -> None:
    """Move held time on 4 h at a time for 48 h, waiting for each reminder at its own time: the
    ``remind: 4h`` approval of the reminder scenarios, escalated at 24 h, rejected at 48 h."""
    for hours in range(1, 12):
        stack.advance(timedelta(hours=4, seconds=30))
        expected = 1 + hours + (hours >= 6)
        assert stack.run_until(lambda n=expected: len(approval_requests(stack, run_id)) == n), hours
    stack.advance(timedelta(hours=4, seconds=30))
