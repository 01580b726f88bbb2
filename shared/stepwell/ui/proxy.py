"""``stepwell ui``'s server: the dashboard on 127.0.0.1, and every other request forwarded to a
deployed Stepwell API, signed with SigV4 (service ``execute-api``) with the user's AWS
credentials, so the deployed stack needs no new public surface.

Only the dashboard's own pages may use the signing: a forwarded request must carry the
``X-Stepwell-Dashboard`` header (a page of another site cannot send it without a CORS
preflight, which is never granted) and name this server in its ``Host`` header (no DNS
rebinding). The signature goes to ``--api``'s host alone: the forwarder follows no redirect
(the API's 3xx comes back as it is), and it signs nothing over plain http except to this
machine.
"""

from __future__ import annotations

import re
import threading
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from stepwell.ui import assets

FORWARDED = ("accept", "content-type", "idempotency-key")
"""Request headers passed on to the API (the rest are the browser's own)."""
_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")

Signer = Callable[[str, str, bytes, dict[str, str]], dict[str, str]]
"""``(method, url, body, headers) -> headers to add`` (the SigV4 Authorization and dates)."""


def sigv4_signer(api_url: str, profile: str | None, region: str | None) -> Signer:
    """A signer with the credentials of ``profile`` (botocore's chain without one); the region
    is ``region``, else the API URL's, else the profile's."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.Session(profile=profile)
    credentials = session.get_credentials()
    if credentials is None:
        raise ValueError(
            "no AWS credentials to sign the dashboard's API calls with: configure a profile "
            "(aws configure) and pass --profile, or set AWS_ACCESS_KEY_ID"
        )
    host = urllib.parse.urlsplit(api_url).hostname or ""
    found = _REGION.search(host)
    chosen = region or (found.group(1) if found else session.get_config_variable("region"))
    if not chosen:
        raise ValueError("give --region: the API URL names none and the profile has none")

    def sign(method: str, url: str, body: bytes, headers: dict[str, str]) -> dict[str, str]:
        request = AWSRequest(method=method, url=url, data=body, headers=dict(headers))
        SigV4Auth(credentials, "execute-api", chosen).add_auth(request)
        return {k: v for k, v in request.headers.items() if k not in headers}

    return sign


class DashboardServer:
    """The dashboard and a signing forwarder to ``api_url``, on ``host:port``."""

    def __init__(
        self,
        api_url: str,
        sign: Signer | None,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        timeout: float = 30.0,
        on_request: Callable[[str, str, int], None] | None = None,
    ) -> None:
        self.api_url = api_url.rstrip("/")
        target = urllib.parse.urlsplit(self.api_url)
        if sign is not None and target.scheme != "https" and target.hostname not in LOOPBACK:
            raise ValueError(
                f"--api {api_url}: signed calls go over https only (over http anyone on the "
                "way reads them); give the API's https:// URL, or --no-auth for a local stack"
            )
        self._sign = sign
        # No redirect is followed: it would carry the signed headers to another host.
        self._opener = urllib.request.build_opener(_NoRedirects())
        self._timeout = timeout
        self._on_request = on_request
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "Stepwell-ui"

            def _any(self) -> None:
                server._serve(self)

            do_GET = do_POST = do_HEAD = _any

            def log_message(self, format: str, *args: Any) -> None:
                return

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        self.host, self.port = (
            str(self.server.server_address[0]),
            int(self.server.server_address[1]),
        )
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """Where the dashboard is: ``http://127.0.0.1:PORT/ui/``."""
        return f"http://{self.host}:{self.port}{assets.PREFIX}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
        self.server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        path, _, query = handler.path.partition("?")
        answer = assets.serve(handler.command, path) or self._forward(handler, path, query)
        status, headers, body = answer
        handler.send_response(status)
        for name, value in headers:
            handler.send_header(name, value)
        handler.send_header("content-length", str(len(body)))
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(body)
        if self._on_request is not None:
            self._on_request(handler.command, handler.path, status)

    def _forward(self, handler: BaseHTTPRequestHandler, path: str, query: str) -> assets.Answer:
        if not assets.names_this_server(handler.headers.get("host"), self.host, self.port):
            return _json(421, "misdirected request: this server answers for its own address only")
        if handler.headers.get(assets.DASHBOARD_HEADER) != "1":
            return _json(403, "only the dashboard's pages can call the API through this server")
        length = int(handler.headers.get("content-length") or 0)
        body = handler.rfile.read(length) if length else b""
        url = self.api_url + path + (f"?{query}" if query else "")
        headers = {k: v for k in FORWARDED if (v := handler.headers.get(k)) is not None}
        if self._sign is not None:
            headers.update(self._sign(handler.command, url, body, headers))
        request = urllib.request.Request(
            url, data=body or None, method=handler.command, headers=headers
        )
        try:
            with self._opener.open(request, timeout=self._timeout) as response:
                return response.status, _answer_headers(response.headers), response.read()
        except urllib.error.HTTPError as error:
            return error.code, _answer_headers(error.headers), error.read()
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            return _json(502, f"cannot reach the Stepwell API at {self.api_url} ({reason})")


LOOPBACK = frozenset({"127.0.0.1", "localhost", "::1"})


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *args: Any, **kwargs: Any) -> None:
        return None  # urllib then hands back the 3xx itself


def _answer_headers(headers: Any) -> list[tuple[str, str]]:
    kind = headers.get("content-type") or "application/json"
    return [("content-type", kind), *assets.headers(kind)[1:]]


def _json(status: int, message: str) -> assets.Answer:
    import json

    code = {403: "forbidden", 421: "misdirected", 502: "unreachable"}.get(status, "error")
    body = json.dumps({"error": code, "message": message, "details": None}).encode()
    return status, assets.headers("application/json"), body
