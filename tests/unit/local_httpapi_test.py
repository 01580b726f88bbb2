"""HTTP requests as API Gateway HTTP API (payload 2.0) events, and responses back to HTTP."""

from __future__ import annotations

import base64
import json
import re
import socket
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.httpapi import (
    HttpApi,
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


# -- the server: only this machine's own clients drive it --------------------------------------
class Served:
    """An HttpApi on 127.0.0.1 whose functions, local routes and AWS calls only count."""

    def __init__(self) -> None:
        self.calls: list[str] = []
        self.api = HttpApi(
            [route("POST", "/workflows/{name}/runs", "StartRun"), *ROUTES],
            self._invoke,
            now=lambda: datetime(2026, 1, 1, tzinfo=UTC),
            api_id="local",
            account="123456789012",
            local=self._local,
            aws=lambda target, body: (self.calls.append(target) or 200, {}),
            idle_timeout=0.3,
        )
        self.port = self.api.port

    def _invoke(self, target: Route, event: dict[str, Any], timeout: float) -> tuple[Any, bool]:
        self.calls.append(target.function)
        return {"statusCode": 200, "body": "{}"}, True

    def _local(self, method: str, path: str, body: bytes) -> tuple[int, Any] | None:
        if not path.startswith("/_local/"):
            return None
        self.calls.append(path)
        return 200, {}

    def send(self, raw: bytes) -> bytes:
        """One raw request; the answer (read to its content-length, or until the server closes
        the connection)."""
        with socket.create_connection(("127.0.0.1", self.port), timeout=10) as sock:
            sock.sendall(raw)
            received = b""
            while chunk := sock.recv(65536):
                received += chunk
                head, _, body = received.partition(b"\r\n\r\n")
                length = re.search(rb"(?im)^content-length: *(\d+)", head)
                if length and len(body) >= int(length.group(1)):
                    break
            return received

    def request(
        self, method: str, path: str, headers: dict[str, str], body: bytes = b""
    ) -> tuple[int, dict[str, Any]]:
        lines = [f"{method} {path} HTTP/1.1", *(f"{k}: {v}" for k, v in headers.items())]
        if body:
            lines.append(f"content-length: {len(body)}")
        head, _, payload = self.send("\r\n".join([*lines, "", ""]).encode() + body).partition(
            b"\r\n\r\n"
        )
        status = int(head.split(b" ", 2)[1])
        return status, json.loads(payload) if payload.strip() else {}


@pytest.fixture
def served() -> Any:
    server = Served()
    server.api.start()
    yield server
    server.api.stop()


def test_a_request_must_name_this_server_in_its_host(served: Served) -> None:
    port = served.port
    for host in (f"127.0.0.1:{port}", f"localhost:{port}", f"LOCALHOST:{port}"):
        assert served.request("GET", "/runs/r-1", {"host": host})[0] == 200, host
    for host in (f"evil.example:{port}", f"127.0.0.1:{port + 1}", "127.0.0.1", ""):
        status, body = served.request("GET", "/runs/r-1", {"host": host} if host else {})
        assert (status, body["error"]) == (421, "misdirected"), host
    # A DNS-rebinding page reaches no route: not the API, the dashboard or the local ones.
    for path in ("/ui/", "/_local/time"):
        assert served.request("GET", path, {"host": f"evil.example:{port}"})[0] == 421
    assert served.calls == ["fn-GetRun"] * 3


@pytest.mark.parametrize(
    "headers",
    [
        {},  # no content type: a fetch() of another site sends such a POST without a preflight
        {"content-type": "text/plain"},
        {"content-type": "application/x-www-form-urlencoded"},
        {"content-type": "multipart/form-data; boundary=x"},
    ],
)
def test_a_state_changing_request_must_be_json(served: Served, headers: dict[str, str]) -> None:
    own = {"host": f"127.0.0.1:{served.port}", **headers}
    for path in ("/_local/time/advance", "/workflows/w/runs", "/runs/r-1"):
        status, body = served.request("POST", path, own, b'{"by": "10d"}')
        assert (status, body["error"]) == (415, "unsupported_media_type"), path
    assert served.calls == []


def test_put_and_delete_need_no_content_type(served: Served) -> None:
    """A page of another site cannot send them without a preflight, which is never granted."""
    own = {"host": f"127.0.0.1:{served.port}"}
    for method in ("PUT", "DELETE"):
        status, body = served.request(method, "/workflows/w", own, b"")
        assert status != 415, (method, body)


def test_json_the_dashboards_header_aws_calls_and_approval_forms_go_through(
    served: Served,
) -> None:
    host = {"host": f"127.0.0.1:{served.port}"}
    json_type = {**host, "content-type": "application/json; charset=utf-8"}
    assert served.request("POST", "/_local/time/advance", json_type, b"{}")[0] == 200
    dashboard = {**host, "x-stepwell-dashboard": "1"}
    assert served.request("POST", "/runs/r-1", dashboard)[0] == 200
    aws = {**host, "x-amz-target": "AWSEvents.PutEvents"}
    assert served.request("POST", "/", {**aws, "content-type": "application/x-amz-json-1.1"})[0]
    form = {**host, "content-type": "application/x-www-form-urlencoded"}
    assert served.request("POST", "/approvals/t", form, b"decision=approve")[0] == 404  # no route
    assert served.calls == ["/_local/time/advance", "fn-AnyRun", "AWSEvents.PutEvents"]


@pytest.mark.parametrize(
    "framing",
    [
        "content-length: abc\r\n\r\n",
        "content-length: 1, 2\r\n\r\nab",
        "content-length: -1\r\n\r\n",
        "transfer-encoding: chunked\r\n\r\nzz\r\n",
        "transfer-encoding: chunked\r\n\r\n2\r\nabc\r\n0\r\n\r\n",
        "transfer-encoding: gzip\r\n\r\n",
        "transfer-encoding: chunked\r\ncontent-length: 5\r\n\r\n0\r\n\r\n",
    ],
)
def test_malformed_framing_is_answered_400_and_the_connection_closed(
    served: Served, framing: str, capfd: pytest.CaptureFixture[str]
) -> None:
    head = f"POST /runs/r-1 HTTP/1.1\r\nhost: 127.0.0.1:{served.port}\r\n"
    head += "content-type: application/json\r\n"
    answer = served.send((head + framing).encode())
    assert answer.startswith(b"HTTP/1.1 400 "), answer
    assert b"connection: close" in answer.lower()
    assert served.calls == []
    assert "Traceback" not in capfd.readouterr().err


def test_a_good_chunked_body_is_read(served: Served) -> None:
    head = f"POST /runs/r-1 HTTP/1.1\r\nhost: 127.0.0.1:{served.port}\r\n"
    head += "content-type: application/json\r\ntransfer-encoding: chunked\r\n\r\n"
    answer = served.send((head + "2;x=y\r\n{}\r\n0\r\n\r\n").encode())
    assert answer.startswith(b"HTTP/1.1 200 "), answer


def test_an_unfinished_request_is_closed_when_it_goes_quiet(served: Served) -> None:
    # The server's idle timeout is 0.3 s here; the client waits up to 10 s for the close.
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as sock:
        sock.sendall(b"GET /runs/r-1 HTT")
        assert sock.recv(1024) == b""  # closed by the server, no thread left waiting


@pytest.mark.parametrize("method", ["TRACE", "PROPFIND", "CONNECT"])
def test_a_method_api_gateway_does_not_route_is_its_json_404(served: Served, method: str) -> None:
    # Not http.server's HTML 501 page; an ANY route does not take it either.
    status, body = served.request(method, "/runs/r-1", {"host": f"127.0.0.1:{served.port}"})
    assert (status, body) == (404, {"message": "Not Found"})
    assert served.calls == []
