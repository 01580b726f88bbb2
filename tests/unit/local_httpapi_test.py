"""HTTP requests as API Gateway HTTP API (payload 2.0) events, and responses back to HTTP."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.httpapi import (
    Match,
    Route,
    build_event,
    http_response,
    iam_authorizer,
    match_route,
)
from stepwell.local.template import HttpRoute

EVENTS = Path(__file__).resolve().parents[1] / "events"


def route(method: str, path: str, name: str = "R", authorizer: str | None = None) -> Route:
    return Route(HttpRoute(name, "api", method, path, authorizer=authorizer), f"fn-{name}")


ROUTES = [
    route("POST", "/workflows/{name}/runs", "StartRun", "AWS_IAM"),
    route("GET", "/runs/{run_id}", "GetRun"),
    route("GET", "/runs/latest", "Latest"),
    route("ANY", "/runs/{run_id}", "AnyRun"),
    route("GET", "/runs/{run_id}/timeline", "Timeline"),
    route("GET", "/files/{path+}", "Files"),
    route("GET", "/approvals/{token}", "ApprovalPage"),
]


def fixture(name: str) -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads((EVENTS / name).read_text())
    return loaded


# -- routing ----------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("method", "path", "expected", "params"),
    [
        ("GET", "/runs/r-1", "GetRun", {"run_id": "r-1"}),
        ("GET", "/runs/latest", "Latest", {}),  # a literal beats a parameter
        ("DELETE", "/runs/r-1", "AnyRun", {"run_id": "r-1"}),  # exact method before ANY
        ("GET", "/runs/r-1/timeline", "Timeline", {"run_id": "r-1"}),
        ("GET", "/files/a/b/c.txt", "Files", {"path": "a/b/c.txt"}),
        ("GET", "/runs/reserve%5B3%5D", "GetRun", {"run_id": "reserve[3]"}),
    ],
)
def test_the_most_specific_route_wins(
    method: str, path: str, expected: str, params: dict[str, str]
) -> None:
    found = match_route(ROUTES, method, path)
    assert found is not None
    assert found.route.route.name == expected
    assert found.path_parameters == params


def test_no_route_is_none_and_default_catches_the_rest() -> None:
    assert match_route(ROUTES, "POST", "/nothing/here") is None
    assert match_route(ROUTES, "GET", "/files") is None  # {path+} needs a segment
    catch_all = [*ROUTES, route("ANY", "$default", "Default")]
    found = match_route(catch_all, "POST", "/nothing/here")
    assert found is not None and found.route.route.name == "Default"
    assert found.route.route.route_key == "$default"


# -- events -----------------------------------------------------------------------------------
def test_a_request_becomes_the_event_api_gateway_sends() -> None:
    expected = fixture("apiGatewayV2StartRun.json")
    body = expected["body"].encode()
    headers = [
        ("Host", "0a1b2c3d4e.execute-api.us-east-1.amazonaws.com"),
        ("User-Agent", "curl/8.5.0"),
        ("Accept", "application/json"),
        ("Content-Type", "application/json"),
        ("Content-Length", "94"),
        ("Cookie", "session=abc123; theme=dark"),
        ("X-Amz-Date", "20260101T000000Z"),
        ("Authorization", "AWS4-HMAC-SHA256 Credential=AKIAIOSFODNN7EXAMPLE/20260101/..."),
        ("X-Amzn-Trace-Id", "Root=1-6955b900-0123456789abcdef01234567"),
        ("X-Forwarded-For", "203.0.113.7"),
        ("X-Forwarded-Port", "443"),
        ("X-Forwarded-Proto", "https"),
    ]
    start = ROUTES[0]
    event = build_event(
        method="POST",
        raw_path="/workflows/order-fulfilment/runs",
        raw_query="label=a&label=b&dry",
        headers=headers,
        body=body,
        match=match_route([start], "POST", "/workflows/order-fulfilment/runs"),
        source_ip="203.0.113.7",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        api_id="0a1b2c3d4e",
        account="123456789012",
        request_id="JKJaXmPLvHcESHA=",
        authorizer=iam_authorizer(headers, "123456789012", "ada"),
    )
    # The real shape, minus the signed Authorization header API Gateway keeps in headers.
    assert event.pop("headers").pop("authorization").startswith("AWS4-HMAC-SHA256")
    expected.pop("headers")
    assert event == expected


def test_an_open_route_without_body_has_no_authorizer_and_no_body() -> None:
    expected = fixture("apiGatewayV2ApprovalPage.json")
    token = "eyJ0b2tlbiI6MX0.c2lnbmF0dXJl"
    event = build_event(
        method="GET",
        raw_path=f"/approvals/{token}",
        raw_query="",
        headers=list(expected["headers"].items()),
        body=b"",
        match=match_route(ROUTES, "GET", f"/approvals/{token}"),
        source_ip="198.51.100.20",
        now=datetime(2026, 1, 1, 0, 5, tzinfo=UTC),
        api_id="0a1b2c3d4e",
        account="123456789012",
        request_id="KLMbYnQMwIdFTIB=",
    )
    assert event == expected


def test_the_shape_matches_the_api_s_own_fixtures() -> None:
    """The events the API's tests are written against have the keys the stack produces."""
    for name in ("apiGatewayV2Event.json", "apiGatewayV2ApprovalFormEvent.json"):
        theirs = fixture(name)
        ours = build_event(
            method=theirs["requestContext"]["http"]["method"],
            raw_path=theirs["rawPath"],
            raw_query=theirs["rawQueryString"],
            headers=list(theirs["headers"].items()),
            body=base64.b64decode(theirs["body"]) if theirs.get("body") else b"",
            match=Match(
                route(theirs["requestContext"]["http"]["method"], "/x"),
                theirs.get("pathParameters", {}),
            ),
            source_ip="203.0.113.10",
            now=datetime(2026, 1, 1, tzinfo=UTC),
            api_id="a1b2c3d4e5",
            account="123456789012",
            request_id="x",
            authorizer=theirs["requestContext"].get("authorizer"),
        )
        assert set(ours) == set(theirs), name
        assert set(ours["requestContext"]) == set(theirs["requestContext"]), name
        assert ours["isBase64Encoded"] == theirs["isBase64Encoded"], name
        assert ours.get("body") == theirs.get("body"), name


def test_form_posts_and_binary_bodies_arrive_base64_encoded() -> None:
    def body_of(content_type: str | None, body: bytes) -> tuple[Any, bool]:
        headers = [("content-type", content_type)] if content_type else []
        event = build_event(
            method="POST",
            raw_path="/x",
            raw_query="",
            headers=headers,
            body=body,
            match=None,
            source_ip="127.0.0.1",
            now=datetime(2026, 1, 1, tzinfo=UTC),
            api_id="a",
            account="1",
            request_id="r",
        )
        return event["body"], event["isBase64Encoded"]

    assert body_of("application/json; charset=utf-8", b'{"a":1}') == ('{"a":1}', False)
    assert body_of("text/plain", b"hi") == ("hi", False)
    assert body_of("application/x-www-form-urlencoded", b"a=1") == ("YT0x", True)
    assert body_of("application/octet-stream", b"\x00\xff") == ("AP8=", True)
    assert body_of(None, b"a=1") == ("YT0x", True)


def test_repeated_headers_and_query_parameters_are_joined_with_commas() -> None:
    event = build_event(
        method="GET",
        raw_path="/runs",
        raw_query="status=failed&status=cancelled&workflow=a%20b",
        headers=[("X-Tag", "one"), ("x-tag", "two")],
        body=b"",
        match=None,
        source_ip="127.0.0.1",
        now=datetime(2026, 1, 1, tzinfo=UTC),
        api_id="a",
        account="1",
        request_id="r",
    )
    assert event["headers"] == {"x-tag": "one,two"}
    assert event["queryStringParameters"] == {"status": "failed,cancelled", "workflow": "a b"}
    assert "cookies" not in event and "pathParameters" not in event


# -- responses --------------------------------------------------------------------------------
def test_a_structured_response_is_used_as_given() -> None:
    response = http_response(
        {
            "statusCode": 201,
            "headers": {"Location": "/runs/1", "X-Multi": ["a", "b"]},
            "cookies": ["a=1; Path=/", "b=2"],
            "body": base64.b64encode(b"\x00binary").decode(),
            "isBase64Encoded": True,
        }
    )
    assert response.status == 201
    assert ("Location", "/runs/1") in response.headers
    assert ("X-Multi", "a") in response.headers and ("X-Multi", "b") in response.headers
    assert [v for k, v in response.headers if k == "set-cookie"] == ["a=1; Path=/", "b=2"]
    assert response.body == b"\x00binary"


def test_a_bare_value_is_a_200_json_response() -> None:
    assert http_response({"ok": True}).body == b'{"ok": true}'
    assert http_response({"ok": True}).headers == [("content-type", "application/json")]
    assert http_response("Hello from Lambda!").body == b"Hello from Lambda!"
    assert http_response([1, 2]).status == 200
    assert http_response({"statusCode": 204}).body == b""
    assert http_response({"statusCode": "teapot"}).status == 500
