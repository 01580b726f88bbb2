"""The dashboard's files and ``stepwell ui``'s signing forwarder, without a browser."""

from __future__ import annotations

import json
import re
import threading
import urllib.error
import urllib.request
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from importlib import resources
from typing import Any

import pytest

from stepwell.ui import assets
from stepwell.ui.proxy import DashboardServer

STATIC = resources.files("stepwell.ui").joinpath("static")


def test_the_root_leads_to_the_dashboard_and_its_files_carry_a_strict_csp() -> None:
    status, headers, _ = assets.serve("GET", "/")
    assert status == 302 and ("location", "/ui/") in headers
    status, headers, body = assets.serve("GET", "/ui/")  # type: ignore[misc]
    named = dict(headers)
    assert status == 200 and named["content-type"].startswith("text/html")
    assert "default-src 'self'" in named["content-security-policy"]
    assert "unsafe" not in named["content-security-policy"]
    assert b'<script type="module" src="/ui/app.js">' in body
    assert assets.serve("GET", "/runs") is None  # the API's


@pytest.mark.parametrize("path", ["/ui/../pyproject.toml", "/ui/%2e%2e/x.js", "/ui/nope.js"])
def test_only_the_dashboards_own_files_are_served(path: str) -> None:
    answer = assets.serve("GET", path)
    assert answer is not None and answer[0] == 404


def test_files_are_read_not_written() -> None:
    answer = assets.serve("POST", "/ui/app.js")
    assert answer is not None and answer[0] == 405


def test_every_file_a_page_names_is_shipped_and_nothing_inline_or_remote() -> None:
    names = {entry.name for entry in STATIC.iterdir()}
    for entry in STATIC.iterdir():
        text = entry.read_text()
        for found in re.findall(r'(?:src|href)="/ui/([^"]+)"', text):
            assert found in names, (entry.name, found)
        for found in re.findall(r'from "\./([^"]+)"', text):
            assert found in names, (entry.name, found)
        assert "http://" not in text.replace('"http://www.w3.org/2000/svg"', "")
        assert "https://" not in text
        if entry.name.endswith(".js"):
            assert "eval(" not in text and "innerHTML" not in text and "new Function" not in text
        if entry.name.endswith(".html"):
            assert "<script>" not in text and "style=" not in text and " on" not in text.lower()


class _Api(BaseHTTPRequestHandler):
    seen: list[dict[str, Any]] = []
    elsewhere = 0

    def _any(self) -> None:
        length = int(self.headers.get("content-length") or 0)
        body = self.rfile.read(length).decode() if length else ""
        _Api.seen.append({"path": self.path, "headers": dict(self.headers), "body": body})
        if "away" in self.path:
            # Elsewhere: another host (localhost is another name than 127.0.0.1).
            self.send_response(307)
            self.send_header("location", f"http://localhost:{_Api.elsewhere}/collect")
            self.send_header("content-length", "0")
            self.end_headers()
            return
        raw = json.dumps({"runs": [], "cursor": None}).encode()
        self.send_response(200 if "conflict" not in self.path else 409)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(raw)))
        self.end_headers()
        self.wfile.write(raw)

    do_GET = do_POST = _any

    def log_message(self, format: str, *args: Any) -> None:
        return


@pytest.fixture
def forwarder() -> Iterator[DashboardServer]:
    api = ThreadingHTTPServer(("127.0.0.1", 0), _Api)
    threading.Thread(target=api.serve_forever, daemon=True).start()
    _Api.seen.clear()
    _Api.elsewhere = api.server_address[1]

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        return {"Authorization": f"AWS4-HMAC-SHA256 signed {method} {url} {len(body)}"}

    server = DashboardServer(f"http://127.0.0.1:{api.server_address[1]}/prod", sign)
    server.start()
    yield server
    server.stop()
    api.shutdown()
    api.server_close()


def _call(server: DashboardServer, path: str, headers: dict[str, str], body: Any = None) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(
        f"http://{server.host}:{server.port}{path}", data=data, headers=headers
    )
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


def test_the_dashboards_calls_are_signed_and_forwarded(forwarder: DashboardServer) -> None:
    ours = {"x-stepwell-dashboard": "1", "content-type": "application/json"}
    status, body = _call(forwarder, "/runs?status=failed", ours)
    assert status == 200 and body == {"runs": [], "cursor": None}
    status, _ = _call(forwarder, "/runs/r-1/conflict", ours, {"reason": "x"})
    assert status == 409  # the API's refusal comes back as it is
    first, second = _Api.seen
    assert first["path"] == "/prod/runs?status=failed"
    assert first["headers"]["Authorization"].startswith("AWS4-HMAC-SHA256 signed GET ")
    assert second["body"] == '{"reason": "x"}'


def test_other_pages_cannot_use_the_signing(forwarder: DashboardServer) -> None:
    status, body = _call(forwarder, "/runs", {})
    assert status == 403 and "dashboard" in body["message"]
    status, _ = _call(forwarder, "/runs", {"x-stepwell-dashboard": "1", "host": "evil.example"})
    assert status == 421
    assert _Api.seen == []


def test_a_redirect_is_not_followed_with_the_signature(forwarder: DashboardServer) -> None:
    ours = {"x-stepwell-dashboard": "1"}
    request = urllib.request.Request(
        f"http://{forwarder.host}:{forwarder.port}/runs/away", headers=ours
    )
    opener = urllib.request.build_opener(_NoFollow())
    with pytest.raises(urllib.error.HTTPError) as answered:
        opener.open(request, timeout=10)
    assert answered.value.code == 307  # the browser gets the API's answer, unsigned
    assert [seen["path"] for seen in _Api.seen] == ["/prod/runs/away"]


class _NoFollow(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None


@pytest.mark.parametrize(
    ("api", "signed", "refused"),
    [
        ("http://abc.execute-api.eu-west-1.amazonaws.com", True, True),
        ("http://10.0.0.7:8080", True, True),
        ("https://abc.execute-api.eu-west-1.amazonaws.com", True, False),
        ("http://127.0.0.1:3000", True, False),
        ("http://localhost:3000", True, False),
        ("http://abc.execute-api.eu-west-1.amazonaws.com", False, False),  # --no-auth
    ],
)
def test_signing_goes_over_https_only_except_to_this_machine(
    api: str, signed: bool, refused: bool
) -> None:
    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        return {}

    if refused:
        with pytest.raises(ValueError, match="signed calls go over https only"):
            DashboardServer(api, sign if signed else None)
        return
    DashboardServer(api, sign if signed else None).stop()
