"""Invoking a plain Lambda (one not written for Stepwell) and reading its response."""

from __future__ import annotations

import json
from typing import Any

from stepwell.runtime.envelope import lambda_trace


class PlainLambdaError(Exception):
    """A plain Lambda raised; its errorType becomes the step's error name."""

    def __init__(self, error_type: str, message: str, trace: dict[str, Any] | None = None) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.trace = trace
        """The error's ``requestId`` and ``stackTrace``."""


def invoke_plain(client: Any, function: str, payload: Any) -> Any:
    """``RequestResponse`` invoke; returns the decoded response, raises PlainLambdaError."""
    response = client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(payload)
    )
    body = response["Payload"].read()
    decoded = json.loads(body) if body else None
    if response.get("FunctionError"):
        error = decoded if isinstance(decoded, dict) else {}
        # An empty errorMessage is the message (a JSON text, not Python's repr, otherwise).
        message = error.get("errorMessage", json.dumps(decoded, separators=(",", ":")))
        raise PlainLambdaError(
            str(error.get("errorType") or "LambdaError"), str(message), lambda_trace(error)
        )
    return decoded
