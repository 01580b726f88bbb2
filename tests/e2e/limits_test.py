"""The local stack answers requests over AWS's size limits as AWS does: a body over API
Gateway's 10 MB, and an event over what Lambda takes in one invocation, are 413s with API
Gateway's own message; a body the API function refuses gets the API's 413."""

from __future__ import annotations

from stepwell.local.client import Client

MB = 1024 * 1024


def start_with(api: Client, size: int) -> tuple[int, object]:
    """Start a run with a JSON body of about ``size`` bytes."""
    reply = api.request(
        "POST", "/workflows/order-fulfilment/runs", json_body={"input": {"pad": "x" * size}}
    )
    return reply.status, reply.body


def test_a_body_over_10_mb_is_refused_by_api_gateway(api: Client) -> None:
    assert start_with(api, 11 * MB) == (413, {"message": "Request Entity Too Large"})


def test_an_event_over_lambdas_6_mb_is_refused_before_the_function(api: Client) -> None:
    assert start_with(api, 7 * MB) == (413, {"message": "Request Entity Too Large"})


def test_a_body_over_the_apis_own_limit_gets_its_message(api: Client) -> None:
    status, body = start_with(api, MB)
    assert status == 413
    assert isinstance(body, dict) and body["error"] == "too_large"
