"""Step Functions' HTTP Task (``http:invoke``): the request as its parameters and its
EventBridge connection (moto's events and Secrets Manager) make it, sent to a listener on
loopback, and the result and errors as Step Functions gives them."""

from __future__ import annotations

import base64
import json
import threading
import urllib.parse
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from moto import mock_aws

from helpers import task_problems
from stepwell.addresses import AllowList
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.builtins.http import Network
from stepwell.runtime.step_context import StepContext

CTX = StepContext("run-1", "call", "call", 1, "run-1:call:1")


class Handler(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def log_message(self, format: str, *args: Any) -> None:
        pass

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        parts = urllib.parse.urlsplit(self.path)
        Handler.seen.append(
            {"method": self.command, "path": parts.path, "query": parts.query, "body": body}
            | {"headers": {k.lower(): v for k, v in self.headers.items()}}
        )
        if parts.path == "/token":
            status, answer = 200, {"access_token": "tok-1", "token_type": "bearer"}
        elif parts.path == "/missing":
            status, answer = 404, {"message": "no such order"}
        else:
            status, answer = 200, {"orders": [7]}
        data = json.dumps(answer).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


@contextmanager
def listening() -> Iterator[str]:
    """:class:`Handler` on a loopback port, by its URL."""
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with listening() as url:
        yield url


@contextmanager
def runner(monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltinDeps]:
    """The runner's dependencies on moto, none of the listener's requests seen yet."""
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    Handler.seen.clear()
    # The listener is on loopback: the tests allow it as a team allows an internal service.
    with mock_aws():
        yield BuiltinDeps(network=Network(AllowList.of(["127.0.0.1"])))


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltinDeps]:
    with runner(monkeypatch) as made:
        yield made


def connection(deps: BuiltinDeps, kind: str, auth: dict[str, Any]) -> str:
    made = deps.client("events").create_connection(
        Name=f"c-{len(Handler.seen)}-{kind.lower()}", AuthorizationType=kind, AuthParameters=auth
    )
    return str(made["ConnectionArn"])


def invoke(deps: BuiltinDeps, **parameters: Any) -> Any:
    params = {"service": "http", "action": "invoke", "integration": "optimized"}
    return run_builtin("aws", params | {"parameters": parameters}, CTX, deps).output


API_KEY = {"ApiKeyAuthParameters": {"ApiKeyName": "x-api-key", "ApiKeyValue": "k-secret"}}


def test_the_result_is_step_functions_and_the_api_key_goes_as_a_header(
    deps: BuiltinDeps, server: str
) -> None:
    arn = connection(deps, "API_KEY", API_KEY)
    result = invoke(
        deps,
        ApiEndpoint=f"{server}/orders",
        Method="GET",
        Authentication={"ConnectionArn": arn},
        Headers={"Accept": "application/json"},
        QueryParameters={"state": "open"},
    )
    assert result["ResponseBody"] == {"orders": [7]}
    assert (result["StatusCode"], result["StatusText"]) == (200, "OK")
    assert result["Headers"]["Set-Cookie"] == ["a=1", "b=2"]
    (seen,) = Handler.seen
    assert (seen["path"], seen["query"]) == ("/orders", "state=open")
    assert seen["headers"]["x-api-key"] == "k-secret"
    assert seen["headers"]["accept"] == "application/json"


def test_basic_credentials_and_the_connections_own_parameters(
    deps: BuiltinDeps, server: str
) -> None:
    auth = {
        "BasicAuthParameters": {"Username": "ann", "Password": "pw"},
        "InvocationHttpParameters": {
            "HeaderParameters": [{"Key": "X-Tenant", "Value": "t1", "IsValueSecret": False}],
            "QueryStringParameters": [{"Key": "v", "Value": "2", "IsValueSecret": False}],
            "BodyParameters": [{"Key": "source", "Value": "stepwell", "IsValueSecret": True}],
        },
    }
    invoke(
        deps,
        ApiEndpoint=f"{server}/orders",
        Method="POST",
        InvocationConfig={"ConnectionArn": connection(deps, "BASIC", auth)},
        RequestBody={"order": 7},
    )
    (seen,) = Handler.seen
    assert seen["headers"]["authorization"] == "Basic " + base64.b64encode(b"ann:pw").decode()
    assert seen["headers"]["x-tenant"] == "t1" and seen["query"] == "v=2"
    assert json.loads(seen["body"]) == {"order": 7, "source": "stepwell"}
    assert seen["headers"]["content-type"] == "application/json"


def test_oauth_client_credentials_ask_the_endpoint_for_a_token_first(
    deps: BuiltinDeps, server: str
) -> None:
    auth = {
        "OAuthParameters": {
            "ClientParameters": {"ClientID": "cid", "ClientSecret": "cs"},
            "AuthorizationEndpoint": f"{server}/token",
            "HttpMethod": "POST",
            "OAuthHttpParameters": {
                "BodyParameters": [{"Key": "scope", "Value": "orders", "IsValueSecret": False}]
            },
        }
    }
    arn = connection(deps, "OAUTH_CLIENT_CREDENTIALS", auth)
    invoke(
        deps, ApiEndpoint=f"{server}/orders", Method="GET", Authentication={"ConnectionArn": arn}
    )
    token, call = Handler.seen
    assert token["path"] == "/token"
    assert token["headers"]["authorization"] == "Basic " + base64.b64encode(b"cid:cs").decode()
    assert urllib.parse.parse_qs(token["body"]) == {
        "grant_type": ["client_credentials"],
        "scope": ["orders"],
    }
    assert call["headers"]["authorization"] == "Bearer tok-1"


@pytest.mark.parametrize(
    ("arrays", "sent"),
    [
        ("INDICES", "ids%5B0%5D=1&ids%5B1%5D=2&who=ann"),
        ("REPEAT", "ids=1&ids=2&who=ann"),
        ("COMMAS", "ids=1%2C2&who=ann"),
        ("BRACKETS", "ids%5B%5D=1&ids%5B%5D=2&who=ann"),
    ],
)
def test_a_url_encoded_body_writes_arrays_as_asked(
    deps: BuiltinDeps, server: str, arrays: str, sent: str
) -> None:
    invoke(
        deps,
        ApiEndpoint=f"{server}/orders",
        Method="POST",
        Authentication={"ConnectionArn": connection(deps, "API_KEY", API_KEY)},
        RequestBody={"ids": [1, 2], "who": "ann"},
        Transform={
            "RequestBodyEncoding": "URL_ENCODED",
            "RequestEncodingOptions": {"ArrayFormat": arrays},
        },
    )
    (seen,) = Handler.seen
    assert seen["body"] == sent
    assert seen["headers"]["content-type"] == "application/x-www-form-urlencoded"


def test_a_status_outside_2xx_is_states_http_status_code(deps: BuiltinDeps, server: str) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(
            deps,
            ApiEndpoint=f"{server}/missing",
            Method="GET",
            Authentication={"ConnectionArn": connection(deps, "API_KEY", API_KEY)},
        )
    assert failed.value.error_type == "States.Http.StatusCode.404"
    cause = json.loads(str(failed.value))
    assert (cause["StatusCode"], cause["ResponseBody"]) == (404, {"message": "no such order"})


def test_a_private_address_is_refused_unless_the_stack_allows_it(
    deps: BuiltinDeps, server: str
) -> None:
    arn = connection(deps, "API_KEY", API_KEY)
    deps.network = Network()  # the stack's default: no private or loopback address
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(
            deps,
            ApiEndpoint=f"{server}/orders",
            Method="GET",
            Authentication={"ConnectionArn": arn},
        )
    assert failed.value.error_type == "States.TaskFailed" and not failed.value.retryable
    assert "loopback address" in str(failed.value) and "HttpAllowHosts" in str(failed.value)
    assert Handler.seen == []


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        ({"ApiEndpoint": "ftp://x/y", "Method": "GET"}, "ApiEndpoint must be an https:// URL"),
        ({"ApiEndpoint": "https://x/y", "Method": "FETCH"}, "Method must be one of GET"),
        ({"ApiEndpoint": "https://x/y", "Method": "GET"}, "Authentication.ConnectionArn"),
    ],
)
def test_a_request_that_cannot_be_sent_says_why(
    deps: BuiltinDeps, parameters: dict[str, Any], said: str
) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, **parameters)
    assert failed.value.error_type == "States.TaskFailed" and said in str(failed.value)


def test_a_machine_is_checked_against_the_http_tasks_parameters(tmp_path: Path) -> None:
    def problems(parameters: dict[str, Any]) -> list[str]:
        return task_problems(tmp_path, "arn:aws:states:::http:invoke", parameters)

    given = {"ApiEndpoint": "https://api.example.com/v1", "Method": "GET"}
    assert problems({**given, "Authentication": {"ConnectionArn": "arn:aws:events:x"}}) == []
    (unknown,) = problems({**given, "Url": "https://x"})
    assert "http:invoke takes no parameter 'Url'" in unknown and "ApiEndpoint" in unknown
