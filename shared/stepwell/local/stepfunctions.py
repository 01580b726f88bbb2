"""Step Functions' task token calls that arrive over HTTP (``aws stepfunctions
send-task-success --endpoint-url``): SendTaskSuccess, SendTaskFailure and SendTaskHeartbeat,
sent on to the API's routes of the same shape, and answered as Step Functions answers them."""

from __future__ import annotations

import json
from typing import Any

from stepwell.local.client import Client

TASK_CALLS = {
    "AWSStepFunctions.SendTaskSuccess": "/tasks/success",
    "AWSStepFunctions.SendTaskFailure": "/tasks/failure",
    "AWSStepFunctions.SendTaskHeartbeat": "/tasks/heartbeat",
}
"""Step Functions' task token calls, answered by the API's routes of the same shape."""


def task_call(api_url: str, target: str, body: bytes) -> tuple[int, Any]:
    """A SendTask* call (``target``, one of :data:`TASK_CALLS`), sent on to the API route of
    its shape; the answer as Step Functions gives it (``{}``, or its error names)."""
    try:
        params = json.loads(body or b"{}")
    except ValueError:
        return 400, {"__type": "SerializationException", "message": "the body is not JSON"}
    reply = Client(api_url).post(TASK_CALLS[target], params)
    if reply.status in (200, 202):
        return 200, {}
    message = reply.body.get("message", "") if isinstance(reply.body, dict) else reply.text
    kind = {403: "InvalidToken", 410: "TaskTimedOut", 409: "TaskDoesNotExist"}
    return 400, {"__type": kind.get(reply.status, "InvalidOutput"), "message": message}
