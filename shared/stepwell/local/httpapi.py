"""The HTTP API: requests on 127.0.0.1 become API Gateway HTTP API (payload 2.0) events.

Over 500 lines: the server, API Gateway's event and the mapping of its answer are one protocol.

:func:`build_event` makes the event API Gateway sends (``version`` 2.0, ``routeKey``,
``rawPath``, ``rawQueryString``, ``cookies``, lower-cased ``headers`` with repeats joined by
commas, ``queryStringParameters``, ``pathParameters`` matched from the route, ``requestContext``
with ``http``, ``requestId``, ``routeKey``, ``stage`` ``$default``, ``time`` and ``timeEpoch``,
``body`` base64-encoded unless its content-type is text, JSON, XML or JavaScript) and
:func:`http_response` turns the function's response back into HTTP by the 2.0 rules: a dict
with ``statusCode`` is used as given (headers, cookies, body, isBase64Encoded); anything else is
a 200 ``application/json`` response whose body is the value (a string as it is, anything else
as JSON). Both are pure.

Routes are chosen as API Gateway chooses them: the most specific match wins (literal path and
exact method before ``{param}``, before ``{proxy+}``, before ``$default``).

The same port also answers AWS JSON-protocol calls (a POST with ``X-Amz-Target``), so the AWS
CLI and SDKs outside the process can put events on the stack's buses with ``--endpoint-url``.

Only this machine's own clients may drive it, though nothing asks who they are: every request
must name the server in its ``Host`` (127.0.0.1, localhost or the bound address: a page that
reached it through a name of its own by DNS rebinding gets 421), and every state-changing
request must be JSON, carry the dashboard's header or be an AWS call (what a page of another
site cannot send without a CORS preflight, which is never granted: 415 otherwise). Approval
links take their form posts, as on AWS: the signed token is their authorisation. A request
whose framing cannot be read gets 400, and a connection idle for :data:`IDLE_TIMEOUT_S` is
closed.
"""

from __future__ import annotations

import base64
import json
import re
import secrets
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import formatdate
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, unquote

from stepwell.local.lambdas import PayloadTooLarge
from stepwell.local.template import HttpRoute
from stepwell.ui import assets

_TEXT_TYPES = re.compile(r"^\s*(text/[^;]*|application/(json|xml|javascript))\s*(;.*)?$", re.I)
"""Bodies API Gateway passes as text; every other body (form posts and a missing content-type
included) arrives base64-encoded, as HTTP APIs do."""


@dataclass(frozen=True)
class Route:
    """A route of the API and the function behind it."""

    route: HttpRoute
    function: str


@dataclass(frozen=True)
class Match:
    """The route a request matched and the path parameters it gave."""

    route: Route
    path_parameters: dict[str, str]


def _segments(path: str) -> list[str]:
    return [s for s in path.split("/") if s]


def match_route(routes: Sequence[Route], method: str, path: str) -> Match | None:
    """The most specific route for ``method path`` (None: 404)."""
    best: tuple[tuple[int, ...], Match] | None = None
    request = _segments(path)
    for route in routes:
        spec = route.route
        if spec.path == "$default":
            rank: tuple[int, ...] = (0, 0, 0, 0)
            candidate = Match(route, {})
        else:
            if spec.method not in ("ANY", method):
                continue
            params = _match_path(_segments(spec.path), request)
            if params is None:
                continue
            greedy = any(s.endswith("+}") for s in _segments(spec.path))
            literals = sum(1 for s in _segments(spec.path) if not s.startswith("{"))
            rank = (1, 0 if greedy else 1, literals, 1 if spec.method == method else 0)
            candidate = Match(route, params)
        if best is None or rank > best[0]:
            best = (rank, candidate)
    return best[1] if best else None


def _match_path(template: list[str], request: list[str]) -> dict[str, str] | None:
    params: dict[str, str] = {}
    for index, part in enumerate(template):
        if part.startswith("{") and part.endswith("+}"):
            if index >= len(request):
                return None
            params[part[1:-2]] = "/".join(unquote(s) for s in request[index:])
            return params
        if index >= len(request):
            return None
        if part.startswith("{") and part.endswith("}"):
            params[part[1:-1]] = unquote(request[index])
        elif part != request[index]:
            return None
    return params if len(template) == len(request) else None


def request_id() -> str:
    """An id shaped like API Gateway's (``JKJaXmPLvHcESHA=``)."""
    return base64.b64encode(secrets.token_bytes(10)).decode()


def build_event(
    *,
    method: str,
    raw_path: str,
    raw_query: str,
    headers: Sequence[tuple[str, str]],
    body: bytes,
    match: Match | None,
    source_ip: str,
    now: datetime,
    api_id: str,
    account: str,
    request_id: str,
    protocol: str = "HTTP/1.1",
    authorizer: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The API Gateway HTTP API payload 2.0 event for one request (``authorizer`` is what the
    route's authorizer put in ``requestContext.authorizer``)."""
    joined: dict[str, str] = {}
    cookies: list[str] = []
    for name, value in headers:
        key = name.lower()
        if key == "cookie":
            cookies.extend(c.strip() for c in value.split(";") if c.strip())
            continue
        joined[key] = f"{joined[key]},{value}" if key in joined else value
    route_key = "$default"
    if match is not None:
        route_key = match.route.route.route_key
    host = joined.get("host", "")
    domain_prefix = host.split(".", 1)[0].split(":", 1)[0]
    stamp = now.astimezone(UTC)
    event: dict[str, Any] = {
        "version": "2.0",
        "routeKey": route_key,
        "rawPath": raw_path,
        "rawQueryString": raw_query,
    }
    if cookies:
        event["cookies"] = cookies
    event["headers"] = joined
    if raw_query:
        params: dict[str, str] = {}
        for key, value in parse_qsl(raw_query, keep_blank_values=True):
            params[key] = f"{params[key]},{value}" if key in params else value
        event["queryStringParameters"] = params
    context: dict[str, Any] = {
        "accountId": account,
        "apiId": api_id,
        "domainName": host,
        "domainPrefix": domain_prefix,
        "http": {
            "method": method,
            "path": raw_path,
            "protocol": protocol,
            "sourceIp": source_ip,
            "userAgent": joined.get("user-agent", ""),
        },
        "requestId": request_id,
        "routeKey": route_key,
        "stage": "$default",
        "time": stamp.strftime("%d/%b/%Y:%H:%M:%S +0000"),
        "timeEpoch": int(stamp.timestamp() * 1000),
    }
    if authorizer is not None:
        context = {"accountId": account, "apiId": api_id, "authorizer": authorizer, **context}
    event["requestContext"] = context
    if match is not None and match.path_parameters:
        event["pathParameters"] = match.path_parameters
    if body:
        text = _TEXT_TYPES.match(joined.get("content-type", "")) is not None
        if text:
            try:
                event["body"] = body.decode()
                event["isBase64Encoded"] = False
            except UnicodeDecodeError:
                text = False
        if not text:
            event["body"] = base64.b64encode(body).decode()
            event["isBase64Encoded"] = True
    else:
        event["isBase64Encoded"] = False
    return event


@dataclass(frozen=True)
class HttpResponse:
    """What goes back to the client."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes


def http_response(result: Any) -> HttpResponse:
    """The HTTP response for a function's (decoded) response, by the payload 2.0 rules."""
    if isinstance(result, dict) and "statusCode" in result:
        try:
            status = int(result["statusCode"])
        except (TypeError, ValueError):
            return error_response(500, "Internal Server Error")
        headers: list[tuple[str, str]] = []
        for name, value in (result.get("headers") or {}).items():
            values = value if isinstance(value, list) else [value]
            headers.extend((str(name), _header_text(v)) for v in values)
        for name, value in (result.get("multiValueHeaders") or {}).items():
            headers.extend((str(name), _header_text(v)) for v in value or [])
        headers.extend(("set-cookie", str(c)) for c in result.get("cookies") or [])
        body = result.get("body")
        if body is None:
            raw = b""
        elif result.get("isBase64Encoded"):
            raw = base64.b64decode(str(body))
        else:
            raw = (body if isinstance(body, str) else json.dumps(body)).encode()
        return HttpResponse(status, headers, raw)
    raw = result.encode() if isinstance(result, str) else json.dumps(result).encode()
    return HttpResponse(200, [("content-type", "application/json")], raw)


def _header_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


_CREDENTIAL = re.compile(r"Credential=([A-Z0-9a-z]+)/")


def iam_authorizer(headers: Sequence[tuple[str, str]], account: str, user: str) -> dict[str, Any]:
    """What API Gateway's IAM authorizer reports for a request (the caller is ``user`` of the
    local account; the access key is taken from a SigV4 Authorization header when there is one).
    The signature is not checked locally."""
    access_key = "AKIALOCALSTEPWELL"
    for name, value in headers:
        if name.lower() == "authorization":
            found = _CREDENTIAL.search(value)
            if found:
                access_key = found.group(1)
    user_id = f"AIDALOCAL{user.upper()[:12]}"
    return {
        "iam": {
            "accessKey": access_key,
            "accountId": account,
            "callerId": user_id,
            "cognitoIdentity": None,
            "principalOrgId": None,
            "userArn": f"arn:aws:iam::{account}:user/{user}",
            "userId": user_id,
        }
    }


def error_response(status: int, message: str) -> HttpResponse:
    """API Gateway's own error answer (``{"message": "Not Found"}``)."""
    body = json.dumps({"message": message}).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


def _refused(status: int, error: str, message: str) -> HttpResponse:
    """The local server's own refusal, shaped as Stepwell's errors."""
    body = json.dumps({"error": error, "message": message, "details": None}).encode()
    return HttpResponse(status, [("content-type", "application/json")], body)


ROUTED_METHODS = frozenset({"GET", "POST", "PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"})
"""The methods an HTTP API routes (``ANY`` stands for these); any other is API Gateway's 404."""
IDLE_TIMEOUT_S = 30.0
"""A connection that sends nothing for this long (an unfinished request, an idle keep-alive)
is closed, so it holds no thread."""


def refusal(method: str, path: str, headers: Any, bound: str, port: int) -> HttpResponse | None:
    """Why this server does not take a request from where it came (None: it does)."""
    if not assets.names_this_server(headers.get("host"), bound, port):
        return _refused(
            421,
            "misdirected",
            "misdirected request: this server answers for 127.0.0.1, localhost and its own "
            "address only",
        )
    # Only a POST can come from a page of another site without a CORS preflight (which is
    # never granted): PUT, PATCH and DELETE need no more than the Host check.
    links = ("/approvals/", "/inputs/", "/delegations/", "/_local/cloudformation/")
    if method != "POST" or path.startswith(links):
        # An approval or form link's token (a delegation's too), and a custom resource's
        # answer to its one unguessable request id, are their authorisation (CloudFormation's
        # answer has no content type).
        return None
    kind = str(headers.get("content-type") or "").split(";")[0].strip().lower()
    if kind == "application/json" or headers.get(assets.DASHBOARD_HEADER) == "1":
        return None
    if headers.get("x-amz-target"):
        return None
    return _refused(
        415,
        "unsupported_media_type",
        "send application/json: the local stack takes changes only from its own clients (a "
        "page of another site cannot send JSON here)",
    )


# -- the server -------------------------------------------------------------------------------

Invoke = Callable[[Route, dict[str, Any], float], "tuple[Any, bool]"]
"""``(route, event, timeout_s) -> (decoded response, ok)``; ok False when the function failed."""


class HttpApi:
    """A ThreadingHTTPServer on 127.0.0.1 serving the template's HttpApi routes."""

    def __init__(
        self,
        routes: Sequence[Route],
        invoke: Invoke,
        *,
        now: Callable[[], datetime],
        api_id: str,
        account: str,
        host: str = "127.0.0.1",
        port: int = 0,
        on_request: Callable[[str, str, int, float], None] | None = None,
        activity: Any = None,
        user: str = "developer",
        aws: Callable[[str, bytes], tuple[int, Any]] | None = None,
        local: Callable[[str, str, bytes], tuple[int, Any] | None] | None = None,
        static: Callable[[str, str], tuple[int, list[tuple[str, str]], bytes] | None] | None = None,
        idle_timeout: float = IDLE_TIMEOUT_S,
    ) -> None:
        self.routes = list(routes)
        self._invoke = invoke
        self._now = now
        self._api_id = api_id
        self._account = account
        self._on_request = on_request
        self._activity = activity
        self._user = user
        self._aws = aws
        self._local = local
        self._static = static
        """Files served beside the API (the dashboard): ``(method, path) -> (status, headers,
        body)``, or None for a path that is not theirs."""
        api = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            server_version = "Stepwell-local"
            # The socket's timeout: a read that waits longer ends the connection.
            timeout = idle_timeout

            def _any(self) -> None:
                api._serve(self)

            def __getattr__(self, name: str) -> Any:
                # Every method reaches _serve (TRACE, PROPFIND ...), not http.server's 501
                # page: API Gateway answers those itself, with JSON.
                if name.startswith("do_"):
                    return self._any
                raise AttributeError(name)

            def log_message(self, format: str, *args: Any) -> None:
                return  # requests are reported through on_request

            def date_time_string(self, timestamp: float | None = None) -> str:
                # The stack's time (virtual time runs ahead): what a page says is "ago" counts
                # from it.
                return formatdate(api._now().timestamp(), usegmt=True)

        self.server = ThreadingHTTPServer((host, port), Handler)
        self.server.daemon_threads = True
        address = self.server.server_address
        self.host, self.port = str(address[0]), int(address[1])
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        """``http://127.0.0.1:PORT``."""
        return f"http://{self.host}:{self.port}"

    def start(self) -> None:
        """Serve in a background thread."""
        self._thread = threading.Thread(
            target=self.server.serve_forever,
            kwargs={"poll_interval": 0.1},
            name="http-api",
            daemon=True,
        )
        self._thread.start()

    def stop(self) -> None:
        """Stop serving and close the socket."""
        if self._thread is not None:
            self.server.shutdown()
            self._thread.join(timeout=5)
            self._thread = None
        self.server.server_close()

    def _serve(self, handler: BaseHTTPRequestHandler) -> None:
        if self._activity is not None:
            self._activity.begin()
        try:
            started = self._now()
            response = self._respond(handler)
            self._write(handler, response)
            if self._on_request is not None:
                elapsed = (self._now() - started).total_seconds()
                self._on_request(handler.command, handler.path, response.status, elapsed)
        finally:
            if self._activity is not None:
                self._activity.end()

    def _respond(self, handler: BaseHTTPRequestHandler) -> HttpResponse:
        raw_path, _, raw_query = handler.path.partition("?")
        refused = refusal(handler.command, raw_path, handler.headers, self.host, self.port)
        if refused is not None:
            handler.close_connection = True  # its body, if any, was not read
            return refused
        try:
            body = _read_body(handler)
        except BadFraming as exc:
            handler.close_connection = True  # where the next request begins is unknown
            return error_response(400, f"Bad Request: {exc}")
        if body is None:
            return error_response(413, "Request Entity Too Large")
        target = handler.headers.get("x-amz-target")
        if target and self._aws is not None and handler.command == "POST":
            # An AWS JSON-protocol call (the AWS CLI or an SDK with --endpoint-url).
            status, answer = self._aws(target, body)
            raw = json.dumps(answer).encode()
            return HttpResponse(status, [("content-type", "application/x-amz-json-1.1")], raw)
        if self._static is not None:
            found = self._static(handler.command, raw_path)
            if found is not None:
                return HttpResponse(*found)
        if self._local is not None:
            own = self._local(handler.command, raw_path, body)
            if own is not None:
                status, answer = own
                raw = json.dumps(answer).encode()
                return HttpResponse(status, [("content-type", "application/json")], raw)
        match = match_route(self.routes, handler.command, raw_path)
        if match is None or handler.command not in ROUTED_METHODS:
            return error_response(404, "Not Found")
        source_ip = handler.client_address[0]
        headers = list(handler.headers.items())
        headers += [
            ("x-forwarded-for", source_ip),
            ("x-forwarded-port", str(self.port)),
            ("x-forwarded-proto", "http"),
            (
                "x-amzn-trace-id",
                f"Root=1-{int(self._now().timestamp()):08x}-{secrets.token_hex(12)}",
            ),
        ]
        event = build_event(
            method=handler.command,
            raw_path=raw_path,
            raw_query=raw_query,
            headers=headers,
            body=body,
            match=match,
            source_ip=source_ip,
            now=self._now(),
            api_id=self._api_id,
            account=self._account,
            request_id=request_id(),
            protocol=handler.request_version,
            authorizer=(
                iam_authorizer(headers, self._account, self._user)
                if match.route.route.authorizer == "AWS_IAM"
                else None
            ),
        )
        timeout = match.route.route.timeout_ms / 1000
        try:
            result, ok = self._invoke(match.route, event, timeout)
        except TimeoutError:
            return error_response(503, "Service Unavailable")
        except PayloadTooLarge:  # the event is over what Lambda takes in one invocation
            return error_response(413, "Request Entity Too Large")
        if not ok:
            return error_response(500, "Internal Server Error")
        return http_response(result)

    def _write(self, handler: BaseHTTPRequestHandler, response: HttpResponse) -> None:
        handler.send_response(response.status)
        names = {name.lower() for name, _ in response.headers}
        for name, value in response.headers:
            handler.send_header(name, value)
        if "content-length" not in names:
            handler.send_header("content-length", str(len(response.body)))
        if handler.close_connection:
            handler.send_header("connection", "close")
        handler.send_header("apigw-requestid", request_id())
        handler.end_headers()
        if handler.command != "HEAD":
            handler.wfile.write(response.body)


BODY_LIMIT = 10 * 1024 * 1024
"""API Gateway's largest request body (HTTP APIs: 10 MB); a larger one is answered 413."""


def _read_body(handler: BaseHTTPRequestHandler) -> bytes | None:
    """The request body, or None when it is over :data:`BODY_LIMIT` (read to its end all the
    same, so that the client gets the 413 rather than a reset connection)."""
    chunks: list[bytes] = []
    size = 0
    for chunk in _body_chunks(handler):
        size += len(chunk)
        if size <= BODY_LIMIT:
            chunks.append(chunk)
    return b"".join(chunks) if size <= BODY_LIMIT else None


class BadFraming(ValueError):
    """The request's body cannot be delimited (a bad length or chunk size)."""


_DIGITS = re.compile(r"^[0-9]{1,15}$")
_CHUNK_SIZE = re.compile(rb"^[0-9a-fA-F]{1,15}$")
_PIECE = 1024 * 1024


def _body_chunks(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    encodings = handler.headers.get_all("transfer-encoding") or []
    lengths = handler.headers.get_all("content-length") or []
    if encodings:
        if [e.strip().lower() for e in ",".join(encodings).split(",")] != ["chunked"]:
            raise BadFraming("only transfer-encoding: chunked is understood")
        if lengths:
            raise BadFraming("content-length and transfer-encoding together")
        yield from _chunked(handler)
        return
    if not lengths:
        return
    values = {v.strip() for v in ",".join(lengths).split(",")}
    if len(values) != 1 or not _DIGITS.match(next(iter(values))):
        raise BadFraming(f"content-length {', '.join(lengths)!r} is not one number")
    yield from _pieces(handler, int(values.pop()))


def _chunked(handler: BaseHTTPRequestHandler) -> Iterator[bytes]:
    while True:
        line = handler.rfile.readline(1024)
        size = line.split(b";")[0].strip()
        if not _CHUNK_SIZE.match(size):
            raise BadFraming(f"chunk size {size[:20]!r} is not a hexadecimal number")
        if int(size, 16) == 0:
            while handler.rfile.readline(1024).strip():
                pass  # trailer fields: nothing here reads them
            return
        yield from _pieces(handler, int(size, 16))
        if handler.rfile.readline(3).strip():
            raise BadFraming("a chunk is longer than its size says")


def _pieces(handler: BaseHTTPRequestHandler, size: int) -> Iterator[bytes]:
    """``size`` bytes of the body, a megabyte at a time (never one allocation of a size a
    client chose); fewer if the client stops sending."""
    left = size
    while left > 0:
        piece = handler.rfile.read(min(left, _PIECE))
        if not piece:
            return
        left -= len(piece)
        yield piece
