"""The built-in step kinds: http against a local server, notify and agent against fakes."""

from __future__ import annotations

import contextlib
import ipaddress
import json
import socket
import ssl
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

import boto3
import pytest
import trustme
from botocore.stub import Stubber

from stepwell.addresses import AllowList
from stepwell.engine.state import Usage
from stepwell.runtime.builtins import (
    BudgetExceeded,
    BuiltinDeps,
    HttpAddressRefused,
    HttpBadUrl,
    HttpConnectionError,
    HttpResponseTooLarge,
    HttpServerError,
    HttpThrottled,
    MissingDependency,
    ModelPriceUnknown,
    Network,
    NotifyDetailInvalid,
    SecretNotDeclared,
    UnknownStepKind,
    http,
    prices,
    run_builtin,
)
from stepwell.runtime.builtins.shell import ShellCommandInvalid
from stepwell.runtime.envelope import StepEnvelope, StepResult
from stepwell.runtime.step_context import StepContext

CTX = StepContext("run-1", "call", "call", 1, "run-1:call:1")
API_KEY = "sk-live-abcdef123456"


class _Handler(BaseHTTPRequestHandler):
    """Routes by path; ``/echo`` answers with what it was sent; every path it was asked for is
    kept in ``server.seen``."""

    def do_GET(self) -> None:
        self._route()

    def do_POST(self) -> None:
        self._route()

    def do_PUT(self) -> None:
        self._route()

    def log_message(self, format, *args) -> None:  # quiet test output
        pass

    def _route(self) -> None:
        self.server.seen.append(self.path)  # type: ignore[attr-defined]
        length = int(self.headers.get("Content-Length") or 0)
        sent = self.rfile.read(length).decode() if length else None
        path = self.path.split("?")[0]
        if path == "/echo":
            self._send(
                200,
                json.dumps(
                    {
                        "path": self.path,
                        "method": self.command,
                        "headers": {k.lower(): v for k, v in self.headers.items()},
                        "body": sent,
                    }
                ),
                "application/json",
            )
        elif path == "/json":
            self._send(200, '{"items": [1, 2], "ok": true}', "application/json; charset=utf-8")
        elif path == "/json-as-text":
            self._send(200, '{"parsed": "anyway"}', "text/plain")
        elif path == "/text":
            self._send(200, "hello", "text/plain")
        elif path == "/empty":
            self._send(204, "", None)
        elif path == "/missing":
            self._send(404, '{"error": "no such order"}', "application/json")
        elif path == "/broken":
            self._send(503, "down for maintenance", "text/plain")
        elif path == "/throttle":
            self._send(429, "slow down", "text/plain")
        elif path == "/slow":
            time.sleep(1.0)
            self._send(200, "late", "text/plain")
        elif path == "/leak":
            self._send(500, f"bad key {self.headers.get('X-Api-Key')}", "text/plain")
        elif path == "/big":
            self._send(200, "x" * 2048, "text/plain")
        elif path == "/away":
            # Same server, another origin: "localhost" instead of "127.0.0.1".
            port = self.server.server_address[1]
            self._redirect(f"http://localhost:{port}/echo")
        elif path == "/to":
            self._redirect(self.path.split("?", 1)[1])
        elif path.startswith("/hop/"):
            self._redirect(f"/hop/{int(path.rsplit('/', 1)[1]) + 1}")
        else:
            self._send(404, "", None)

    def _redirect(self, location: str) -> None:
        self.send_response(302)
        self.send_header("Location", location)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def _send(self, status: int, body: str, content_type: str | None) -> None:
        data = body.encode()
        self.send_response(status)
        if content_type:
            self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(data)))
        self.send_header("Set-Cookie", "a=1")
        self.send_header("Set-Cookie", "b=2")
        self.end_headers()
        # The client may have given up first (the timeout test).
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(data)


def _serve(tls: ssl.SSLContext | None = None) -> Iterator[ThreadingHTTPServer]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Handler)
    httpd.seen = []  # type: ignore[attr-defined]
    httpd.daemon_threads = True
    if tls is not None:
        httpd.socket = tls.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture(scope="module")
def httpd() -> Iterator[ThreadingHTTPServer]:
    yield from _serve()


@pytest.fixture
def server(httpd: ThreadingHTTPServer) -> str:
    httpd.seen.clear()  # type: ignore[attr-defined]
    return f"http://127.0.0.1:{httpd.server_address[1]}"


# The test server is on loopback: the tests allow it as a team allows an internal service.
LOCAL = Network(AllowList.of(["127.0.0.1", "::1"]))


class FakeSecrets:
    def __init__(self, values: dict[str, str]) -> None:
        self.values = values
        self.reads: list[str] = []

    def __call__(self, secret_id: str) -> str:
        self.reads.append(secret_id)
        return self.values[secret_id]


def call(params: dict, secrets=None, network: Network = LOCAL):
    full = {"method": "GET", "headers": {}, "body": None, "request_timeout_s": 5, "secrets": {}}
    deps = BuiltinDeps(secrets=secrets or FakeSecrets({}), network=network)
    return run_builtin("http", {**full, **params}, CTX, deps).output


class TestHttp:
    def test_json_is_parsed(self, server):
        out = call({"url": f"{server}/json"})
        assert out["status"] == 200
        assert out["body"] == {"items": [1, 2], "ok": True}
        assert out["headers"]["content-type"] == "application/json; charset=utf-8"

    def test_a_body_that_parses_is_json_whatever_the_content_type(self, server):
        assert call({"url": f"{server}/json-as-text"})["body"] == {"parsed": "anyway"}

    def test_text_stays_text_and_empty_is_none(self, server):
        assert call({"url": f"{server}/text"})["body"] == "hello"
        assert call({"url": f"{server}/empty"})["body"] is None

    def test_repeated_headers_are_joined(self, server):
        assert call({"url": f"{server}/text"})["headers"]["set-cookie"] == "a=1, b=2"

    def test_bodies_that_are_not_strings_go_as_json(self, server):
        out = call({"url": f"{server}/echo", "method": "POST", "body": {"n": 1, "s": "é"}})
        echoed = out["body"]
        assert json.loads(echoed["body"]) == {"n": 1, "s": "é"}
        assert echoed["headers"]["content-type"] == "application/json"
        assert echoed["headers"]["user-agent"] == http.USER_AGENT
        # The attempt's idempotency key: a repeated delivery of the attempt sends the same one.
        assert echoed["headers"]["idempotency-key"] == CTX.idempotency_key

    def test_string_bodies_go_as_they_are(self, server):
        out = call(
            {
                "url": f"{server}/echo",
                "method": "PUT",
                "body": "a=1&b=2",
                "headers": {"Content-Type": "application/x-www-form-urlencoded"},
            }
        )
        assert out["body"]["body"] == "a=1&b=2"
        assert out["body"]["headers"]["content-type"] == "application/x-www-form-urlencoded"

    def test_4xx_succeeds_with_its_status(self, server):
        out = call({"url": f"{server}/missing"})
        assert (out["status"], out["body"]) == (404, {"error": "no such order"})

    def test_5xx_raises_http_server_error(self, server):
        with pytest.raises(HttpServerError, match="answered 503: down for maintenance"):
            call({"url": f"{server}/broken"})

    def test_429_raises_http_throttled(self, server):
        with pytest.raises(HttpThrottled, match="429"):
            call({"url": f"{server}/throttle"})

    def test_timeout_is_a_connection_error(self, server):
        # The server answers after 1 s: without the timeout this would succeed.
        with pytest.raises(HttpConnectionError, match=r"no answer within 0\.2s") as caught:
            call({"url": f"{server}/slow", "request_timeout_s": 0.2})
        assert isinstance(caught.value, ConnectionError)

    def test_refused_connection_is_a_connection_error(self):
        with socket.socket() as sock:
            sock.bind(("127.0.0.1", 0))
            port = sock.getsockname()[1]
        with pytest.raises(HttpConnectionError, match=r"GET http://127\.0\.0\.1"):
            call({"url": f"http://127.0.0.1:{port}/"})

    def test_other_schemes_are_refused(self):
        with pytest.raises(HttpBadUrl):
            call({"url": "file:///etc/passwd"})

    def test_oversized_bodies_are_refused(self, server, monkeypatch):
        monkeypatch.setattr(http, "MAX_RESPONSE_BYTES", 1024)
        with pytest.raises(HttpResponseTooLarge):
            call({"url": f"{server}/big"})

    def test_error_names_are_the_class_names(self):
        envelope = StepEnvelope.from_dict(
            {
                "run_id": "r",
                "step_id": "s",
                "key": "s",
                "step_type": "http",
                "attempt": 1,
                "token": "t",
                "idempotency_key": "r:s:1",
            }
        )
        result = StepResult.from_exception(envelope, HttpServerError("503"))
        assert (result.error_type, result.retryable) == ("HttpServerError", True)
        assert set(http.ERROR_NAMES) >= {"HttpServerError", "HttpConnectionError"}


class FakeResolver:
    """Answers names from a table (and, for a name it does not know, as the system would for a
    literal address); counts its lookups."""

    def __init__(self, table: dict[str, list[str]]) -> None:
        self.table = table
        self.lookups: list[str] = []

    def __call__(self, host: str, port: int) -> list:
        self.lookups.append(host)
        if host in self.table:
            return [ipaddress.ip_address(a) for a in self.table[host]]
        return http.resolve(host, port)


def reach(table: dict[str, list[str]], *allowed: str) -> Network:
    return Network(AllowList.of(allowed), FakeResolver(table))


class TestHttpReach:
    """Where an http step may go: public addresses, unless the workflow or the stack allows
    more; every hop checked, connected to the address checked."""

    @pytest.mark.parametrize(
        ("url", "answers", "kind"),
        [
            ("http://metadata.test/latest/", ["169.254.169.254"], "link-local"),
            ("http://169.254.169.254/latest/meta-data/", [], "link-local"),
            ("http://db.test/", ["10.1.2.3"], "private"),
            ("http://cgnat.test/", ["100.64.0.9"], "private"),
            ("http://ula.test/", ["fd12::1"], "unique-local"),
            ("http://v6-link.test/", ["fe80::1"], "link-local"),
            ("http://group.test/", ["239.1.2.3"], "multicast"),
            ("http://nothing.test/", ["0.0.0.0"], "unspecified"),
            ("http://[::]/", [], "unspecified"),
            ("http://doc.test/", ["192.0.2.10"], "reserved"),
            # Odd spellings of 127.0.0.1 are judged as the address they resolve to.
            ("http://2130706433/", [], "loopback"),
            ("http://0x7f.1/", [], "loopback"),
            ("http://[::ffff:127.0.0.1]/", [], "loopback"),
            ("http://[::1]/", [], "loopback"),
            ("http://[64:ff9b::a9fe:a9fe]/", [], "link-local"),
            # One refused address among public ones is enough.
            ("http://mixed.test/", ["93.184.215.14", "10.0.0.1"], "private"),
        ],
    )
    def test_non_public_addresses_are_refused(self, url, answers, kind):
        with pytest.raises(HttpAddressRefused) as caught:
            call({"url": url}, network=reach({urlsplit(url).hostname: answers} if answers else {}))
        message = str(caught.value)
        assert f"step 'call': {urlsplit(url).hostname}" in message
        assert f"a {kind} address" in message
        assert "allow_hosts" in message
        assert "HttpAllowHosts" in message
        assert caught.value.retryable is False

    def test_loopback_is_refused_before_anything_is_sent(self, server, httpd):
        with pytest.raises(HttpAddressRefused, match=r"127\.0\.0\.1 is a loopback address"):
            call({"url": f"{server}/echo"}, network=Network())
        assert httpd.seen == []

    def test_the_step_connects_to_the_address_it_checked(self, server, httpd):
        # api.internal.test exists only in the fake resolver: the request reaches the server
        # through the address the step resolved, with the url's Host, after one lookup.
        port = httpd.server_address[1]
        network = reach({"api.internal.test": ["127.0.0.1"]}, "127.0.0.0/8")
        out = call({"url": f"http://api.internal.test:{port}/echo"}, network=network)
        assert out["body"]["headers"]["host"] == f"api.internal.test:{port}"
        assert network.resolve.lookups == ["api.internal.test"]

    def test_a_second_lookup_cannot_rebind(self, server, httpd):
        class Rebinding(FakeResolver):
            def __call__(self, host, port):
                answer = ["127.0.0.1"] if not self.lookups else ["169.254.169.254"]
                self.lookups.append(host)
                return [ipaddress.ip_address(a) for a in answer]

        resolver = Rebinding({})
        network = Network(AllowList.of(["127.0.0.1"]), resolver)
        port = httpd.server_address[1]
        out = call({"url": f"http://rebind.test:{port}/echo"}, network=network)
        assert out["status"] == 200
        assert resolver.lookups == ["rebind.test"]

    def test_an_allowed_hostname_reaches_what_it_resolves_to(self, server, httpd):
        port = httpd.server_address[1]
        for allowed in ("internal.test", "*.test"):
            network = reach({"internal.test": ["127.0.0.1"]}, allowed)
            out = call({"url": f"http://internal.test:{port}/json"}, network=network)
            assert out["status"] == 200
        with pytest.raises(HttpAddressRefused):
            call(
                {"url": f"http://other.test:{port}/json"},
                network=reach({"other.test": ["127.0.0.1"]}, "internal.test"),
            )

    def test_the_workflows_allow_hosts_add_to_the_stacks(self, server):
        out = call({"url": f"{server}/json", "allow_hosts": ["127.0.0.1"]}, network=Network())
        assert out["status"] == 200

    def test_every_redirect_hop_is_checked(self, server, httpd):
        with pytest.raises(HttpAddressRefused, match=r"169\.254\.169\.254 is a link-local"):
            call({"url": f"{server}/to?http://169.254.169.254/latest/meta-data/"})
        assert httpd.seen == ["/to?http://169.254.169.254/latest/meta-data/"]

    def test_a_redirect_to_another_scheme_is_refused(self, server):
        with pytest.raises(HttpBadUrl, match=r"step 'call'.* ftp:// URL"):
            call({"url": f"{server}/to?ftp://127.0.0.1/etc/passwd"})

    def test_redirects_stop_at_the_limit(self, server, httpd):
        out = call({"url": f"{server}/hop/0"})
        assert out["status"] == 302
        assert len(httpd.seen) == http.MAX_REDIRECTS + 1

    def test_https_keeps_the_hostname_for_sni_and_the_certificate(self, monkeypatch, tmp_path):
        ca = trustme.CA()
        tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
        ca.issue_cert("api.internal.test").configure_cert(tls)
        names: list[str | None] = []
        tls.sni_callback = lambda _sock, name, _ctx: names.append(name)
        bundle = tmp_path / "ca.pem"
        ca.cert_pem.write_to_path(str(bundle))
        monkeypatch.setenv("SSL_CERT_FILE", str(bundle))
        for server in _serve(tls):
            port = server.server_address[1]
            network = reach({"api.internal.test": ["127.0.0.1"]}, "127.0.0.1")
            out = call({"url": f"https://api.internal.test:{port}/echo"}, network=network)
            assert out["body"]["headers"]["host"] == f"api.internal.test:{port}"
            assert names == ["api.internal.test"]
            # The certificate is for the name, not the address: asked by address, TLS fails.
            with pytest.raises(HttpConnectionError, match="CERTIFICATE_VERIFY_FAILED"):
                call({"url": f"https://127.0.0.1:{port}/echo"}, network=network)


class TestHttpSecrets:
    params = {
        "method": "POST",
        "headers": {"X-Api-Key": "{{secret:api_key}}", "Authorization": "Bearer {{secret:token}}"},
        "body": {"auth": "{{secret:api_key}}", "list": ["{{secret:token}}"]},
        "secrets": {"api_key": "prod/psp/api-key", "token": "prod/psp/token"},
    }
    values = {"prod/psp/api-key": API_KEY, "prod/psp/token": "tok-9876543210"}

    def test_secrets_are_substituted_and_absent_from_the_output(self, server):
        secrets = FakeSecrets(self.values)
        out = call({**self.params, "url": f"{server}/echo?k={{{{secret:api_key}}}}"}, secrets)
        echoed = out["body"]
        # Each secret was read once; what the server echoed back is masked again.
        assert json.loads(echoed["body"]) == {
            "auth": "{{secret:api_key}}",
            "list": ["{{secret:token}}"],
        }
        assert sorted(secrets.reads) == ["prod/psp/api-key", "prod/psp/token"]
        dumped = json.dumps(out)
        assert API_KEY not in dumped
        assert "tok-9876543210" not in dumped
        assert echoed["headers"]["x-api-key"] == "{{secret:api_key}}"
        assert echoed["headers"]["authorization"] == "Bearer {{secret:token}}"
        assert echoed["path"] == "/echo?k={{secret:api_key}}"

    def test_the_server_really_received_the_values(self, server, monkeypatch):
        seen: list[str] = []
        monkeypatch.setattr(http._Secrets, "mask", lambda self, value: seen.append(value) or value)
        call({**self.params, "url": f"{server}/echo"}, FakeSecrets(self.values))
        echoed = seen[0]
        assert echoed["headers"]["x-api-key"] == API_KEY
        assert echoed["headers"]["authorization"] == "Bearer tok-9876543210"
        assert json.loads(echoed["body"]) == {"auth": API_KEY, "list": ["tok-9876543210"]}

    def test_secrets_are_not_in_error_messages(self, server):
        with pytest.raises(HttpServerError) as caught:
            call({**self.params, "url": f"{server}/leak"}, FakeSecrets(self.values))
        assert API_KEY not in str(caught.value)
        assert "bad key {{secret:api_key}}" in str(caught.value)

    def test_secret_headers_do_not_follow_a_redirect_to_another_origin(self, server):
        out = call({**self.params, "url": f"{server}/away"}, FakeSecrets(self.values))
        headers = out["body"]["headers"]
        assert out["body"]["path"] == "/echo"
        assert "x-api-key" not in headers
        assert "authorization" not in headers

    def test_an_undeclared_secret_is_refused(self, server):
        with pytest.raises(SecretNotDeclared, match="'other'"):
            call({"url": f"{server}/echo", "headers": {"X": "{{secret:other}}"}})

    def test_no_secret_is_read_when_none_is_used(self, server):
        secrets = FakeSecrets(self.values)
        call({"url": f"{server}/json", "secrets": self.params["secrets"]}, secrets)
        assert secrets.reads == []


class FakePublisher:
    def __init__(self) -> None:
        self.events: list[tuple[str, dict, str | None]] = []

    def publish(self, detail_type, detail, source=None) -> str:
        self.events.append((detail_type, detail, source))
        return f"evt-{len(self.events)}"


class TestNotify:
    def test_publishes_and_returns_the_event_id(self):
        bus = FakePublisher()
        params = {"detail_type": "order.shipped", "detail": {"id": 7}, "source": "shop"}
        result = run_builtin("notify", params, CTX, BuiltinDeps(publisher=bus))
        assert result.output == {"event_id": "evt-1"}
        assert bus.events == [("order.shipped", {"id": 7}, "shop")]

    def test_no_detail_is_an_empty_object_and_source_defaults(self):
        bus = FakePublisher()
        params = {"detail_type": "ping", "detail": None, "source": None}
        run_builtin("notify", params, CTX, BuiltinDeps(publisher=bus))
        assert bus.events == [("ping", {}, "stepwell")]

    def test_a_detail_that_is_not_an_object_is_refused(self):
        with pytest.raises(NotifyDetailInvalid, match="wrap it"):
            run_builtin(
                "notify",
                {"detail_type": "x", "detail": [1]},
                CTX,
                BuiltinDeps(publisher=FakePublisher()),
            )

    def test_without_a_publisher(self):
        with pytest.raises(MissingDependency):
            run_builtin("notify", {"detail_type": "x"}, CTX, BuiltinDeps())


@pytest.fixture
def bedrock(monkeypatch):
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    client = boto3.client("bedrock-runtime", region_name="us-east-1")
    with Stubber(client) as stub:
        yield client, stub
        stub.assert_no_pending_responses()


def converse_response(text_blocks, input_tokens, output_tokens, stop="end_turn"):
    return {
        "output": {"message": {"role": "assistant", "content": [{"text": t} for t in text_blocks]}},
        "stopReason": stop,
        "usage": {
            "inputTokens": input_tokens,
            "outputTokens": output_tokens,
            "totalTokens": input_tokens + output_tokens,
        },
        "metrics": {"latencyMs": 321},
    }


METADATA = {"stepwell_workflow": "", "stepwell_run": "run-1", "stepwell_step": "call"}
"""What the agent step tells Bedrock (and its invocation logs) the call is for."""


def agent_params(**overrides):
    params = {
        "model": "amazon.nova-lite-v1:0",
        "prompt": "Summarise order o-1001.",
        "system": "You are terse.",
        "max_tokens": 500,
        "budget_usd": None,
    }
    return {**params, **overrides}


class TestAgent:
    def test_calls_converse_and_totals_cost_and_tokens(self, bedrock):
        client, stub = bedrock
        stub.add_response(
            "converse",
            converse_response(["Order o-1001 ", "shipped."], 1000, 500),
            {
                "modelId": "amazon.nova-lite-v1:0",
                "messages": [{"role": "user", "content": [{"text": "Summarise order o-1001."}]}],
                "system": [{"text": "You are terse."}],
                "inferenceConfig": {"maxTokens": 500},
                "requestMetadata": METADATA,
            },
        )
        result = run_builtin("agent", agent_params(), CTX, BuiltinDeps(bedrock=client))
        expected_cost = (1000 * 0.00006 + 500 * 0.00024) / 1000
        assert result.output["text"] == "Order o-1001 shipped."
        assert result.output["stop_reason"] == "end_turn"
        assert result.output["usage"] == {"input_tokens": 1000, "output_tokens": 500}
        assert result.output["cost_usd"] == pytest.approx(expected_cost)
        assert result.output["cost_known"] is True
        assert result.usage == Usage(pytest.approx(expected_cost), 1000, 500)

    def test_no_system_prompt_is_left_out(self, bedrock):
        client, stub = bedrock
        stub.add_response(
            "converse",
            converse_response(["ok"], 5, 1),
            {
                "modelId": "us.anthropic.claude-3-5-haiku-20241022-v1:0",
                "messages": [{"role": "user", "content": [{"text": "hi"}]}],
                "inferenceConfig": {"maxTokens": 10},
                "requestMetadata": METADATA,
            },
        )
        params = agent_params(
            model="us.anthropic.claude-3-5-haiku-20241022-v1:0",
            prompt="hi",
            system=None,
            max_tokens=10,
        )
        result = run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client))
        assert result.usage.cost_usd == pytest.approx((5 * 0.0008 + 1 * 0.004) / 1000)

    def test_refuses_before_the_call_when_the_worst_case_is_over_budget(self, bedrock):
        client, _ = bedrock  # no response queued: a call would fail the test
        params = agent_params(model="anthropic.claude-opus-4-1-20250805-v1:0", budget_usd=0.01)
        with pytest.raises(BudgetExceeded, match="lower max_tokens") as caught:
            run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client))
        assert caught.value.usage is None
        assert BudgetExceeded.retryable is False

    def test_calls_when_the_worst_case_fits(self, bedrock):
        client, stub = bedrock
        stub.add_response("converse", converse_response(["fine"], 20, 100))
        params = agent_params(budget_usd=0.01)
        assert run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client)).output["text"]

    def test_fails_after_the_call_when_the_real_cost_is_over_budget(self, bedrock):
        client, stub = bedrock
        # The estimate fits the budget; the reported usage (a huge prompt) does not.
        stub.add_response("converse", converse_response(["long"], 2_000_000, 10))
        params = agent_params(max_tokens=10, budget_usd=0.01)
        with pytest.raises(BudgetExceeded, match="estimate before the call was low") as caught:
            run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client))
        assert caught.value.usage.input_tokens == 2_000_000
        envelope = StepEnvelope.from_dict(
            {
                "run_id": "r",
                "step_id": "s",
                "key": "s",
                "step_type": "agent",
                "attempt": 1,
                "token": "t",
                "idempotency_key": "r:s:1",
            }
        )
        failed = StepResult.from_exception(envelope, caught.value)
        assert failed.usage.input_tokens == 2_000_000
        assert failed.retryable is False

    def test_unknown_model_costs_nothing_and_says_so(self, bedrock):
        client, stub = bedrock
        stub.add_response("converse", converse_response(["hi"], 10, 10))
        params = agent_params(model="meta.llama3-8b-instruct-v1:0")
        result = run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client))
        assert (result.output["cost_usd"], result.output["cost_known"]) == (0.0, False)
        assert result.usage == Usage(0.0, 10, 10)

    def test_unknown_model_with_a_budget_is_refused(self, bedrock):
        client, _ = bedrock
        params = agent_params(model="meta.llama3-8b-instruct-v1:0", budget_usd=1.0)
        with pytest.raises(ModelPriceUnknown, match="remove budget_usd"):
            run_builtin("agent", params, CTX, BuiltinDeps(bedrock=client))

    def test_bedrock_errors_keep_their_names(self, bedrock):
        client, stub = bedrock
        stub.add_client_error("converse", "ThrottlingException", "Too many requests", 429)
        with pytest.raises(client.exceptions.ThrottlingException) as caught:
            run_builtin("agent", agent_params(), CTX, BuiltinDeps(bedrock=client))
        assert type(caught.value).__name__ == "ThrottlingException"


class TestPrices:
    @pytest.mark.parametrize(
        "model",
        [
            "amazon.nova-lite-v1:0",
            "us.amazon.nova-lite-v1:0",
            "global.amazon.nova-lite-v1:0",
            "arn:aws:bedrock:us-east-1::foundation-model/amazon.nova-lite-v1:0",
            "arn:aws:bedrock:eu-west-1:123456789012:inference-profile/eu.amazon.nova-lite-v1:0",
        ],
    )
    def test_ids_profiles_and_arns_find_the_price(self, model):
        assert prices.price_of(model) == prices.ModelPrice(0.00006, 0.00024)

    def test_cost(self):
        assert prices.ModelPrice(0.003, 0.015).cost(2000, 1000) == pytest.approx(0.021)


def test_unknown_kinds_are_refused():
    with pytest.raises(UnknownStepKind, match="'task'"):
        run_builtin("task", {}, CTX, BuiltinDeps())


class TestShell:
    def test_each_argument_reaches_the_program_as_it_is(self):
        done = run_builtin("shell", {"command": ["echo", "-n hi; $(id)"]}, CTX, BuiltinDeps())
        assert done.output == {"exit_code": 0, "stdout": "-n hi; $(id)\n", "stderr": ""}

    def test_a_command_line_that_cannot_be_split_is_a_step_error(self):
        # A line only comes from an attempt recorded before the engine split commands.
        with pytest.raises(ShellCommandInvalid, match="step 'call': the command cannot be split"):
            run_builtin("shell", {"command": "echo 'unbalanced"}, CTX, BuiltinDeps())
