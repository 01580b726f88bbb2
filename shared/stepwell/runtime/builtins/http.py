"""The http step: one HTTP request with urllib; the response becomes the step's output.

Output: ``{"status", "headers", "body"}``. Header names are lower-cased (repeated headers are
joined with ", "); the body is parsed as JSON when the response says it is JSON or when it
parses, and is text otherwise (``None`` when empty).

What fails the attempt, by error name (what ``retry_on`` lists):

* ``HttpServerError``: the server answered 5xx (retrying may help).
* ``HttpThrottled``: the server answered 429 Too Many Requests (retrying later helps).
* ``HttpConnectionError`` (a ``ConnectionError``): no answer: DNS, refused connection, TLS,
  a timeout (``request_timeout_s`` applies to connecting and to each read, as urllib's does).
* ``HttpResponseTooLarge``: the body is over :data:`MAX_RESPONSE_BYTES` (not retried).
* ``HttpBadUrl``: the url, or a redirect, is not http:// or https:// (urllib would read
  file:// and ftp:// too).
* ``HttpAddressRefused``: the host resolves to an address http steps do not reach unless
  allowed (see below; not retried).
* ``SecretNotDeclared``: a ``{{secret:NAME}}`` whose NAME the step does not declare.

Any other status, 3xx and 4xx included, *succeeds* with that status: whether a 404 is an error
is the workflow's call (a ``when`` on ``steps.x.output.status``), and retrying a 400 does not
help. Up to :data:`MAX_REDIRECTS` redirects are followed, except those urllib refuses (a 307 of
a PUT, say), which come back as their 3xx, as does the redirect past the limit.

Where a request may go (:mod:`stepwell.addresses`): the step resolves the host itself, refuses
it when any address it resolves to is loopback, link-local, private, unique-local, multicast,
unspecified or reserved (unless the host or the address is on the workflow's ``allow_hosts``
or the stack's list), and connects to the very address it checked, so a second lookup cannot
answer otherwise; every redirect hop is checked the same way. TLS still verifies the
certificate for the url's hostname (SNI and Host stay the url's). Proxies from the
environment (``HTTPS_PROXY``) are not used: the check is about where the request goes.

Secrets: the engine renders ``${secrets.NAME}`` as the placeholder ``{{secret:NAME}}``; here
each placeholder in the url, the header values and the body is replaced by the value of the
secret the step's ``secrets`` map names. Values are substituted verbatim (URL-encode them in
the secret itself if they go into a query string). They are never logged, never put in an
error message, are dropped from the request when a redirect leaves the origin, and any that
the server echoes back is masked in the output by its placeholder again (values shorter than
:data:`MIN_MASKED_SECRET` characters are not masked: masking "1" would mangle every number).
"""

from __future__ import annotations

import http.client
import ipaddress
import json
import re
import socket
import urllib.error
import urllib.request
from collections.abc import Callable, Collection, Mapping
from dataclasses import dataclass, field
from email.message import Message
from functools import partial
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from stepwell.addresses import AllowList, IPAddress, refused_class
from stepwell.runtime.step_context import StepContext

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
MAX_REDIRECTS = 5
MIN_MASKED_SECRET = 6
USER_AGENT = "stepwell-http/1"
_PLACEHOLDER = re.compile(r"\{\{secret:([^{}]+)\}\}")


class HttpServerError(Exception):
    """The server answered 5xx."""

    retryable: ClassVar[bool] = True


class HttpThrottled(Exception):
    """The server answered 429 Too Many Requests."""

    retryable: ClassVar[bool] = True


class HttpConnectionError(ConnectionError):
    """No response: the name did not resolve, the connection failed, or it timed out."""

    retryable: ClassVar[bool] = True


class HttpResponseTooLarge(Exception):
    """The response body is larger than a step output may be."""

    retryable: ClassVar[bool] = False


class HttpBadUrl(ValueError):
    """The url is not an http:// or https:// URL."""

    retryable: ClassVar[bool] = False


class HttpAddressRefused(Exception):
    """The host resolves to an address http steps do not reach unless it is allowed."""

    retryable: ClassVar[bool] = False


class SecretNotDeclared(LookupError):
    """A ``{{secret:NAME}}`` placeholder whose NAME is not in the step's ``secrets``."""

    retryable: ClassVar[bool] = False


ERROR_NAMES = (
    "HttpServerError",
    "HttpThrottled",
    "HttpConnectionError",
    "HttpResponseTooLarge",
    "HttpBadUrl",
    "HttpAddressRefused",
    "SecretNotDeclared",
)
"""The error names an http step fails with (for ``retry_on`` and ``non_retryable``)."""


class _Readable(Protocol):
    def read(self, amt: int, /) -> bytes: ...


class _Secrets:
    """Fetches the secrets a request uses (each once) and remembers them for masking."""

    def __init__(self, declared: Mapping[str, str], read: Callable[[str], str]) -> None:
        self._declared = declared
        self._read = read
        self.used: dict[str, str] = {}

    def fill(self, text: str) -> str:
        return _PLACEHOLDER.sub(lambda m: self._value(m.group(1)), text)

    def fill_any(self, value: Any) -> Any:
        if isinstance(value, str):
            return self.fill(value)
        if isinstance(value, list):
            return [self.fill_any(v) for v in value]
        if isinstance(value, dict):
            return {self.fill_any(k): self.fill_any(v) for k, v in value.items()}
        return value

    def mask(self, value: Any) -> Any:
        if isinstance(value, str):
            for name, secret in self.used.items():
                if len(secret) >= MIN_MASKED_SECRET:
                    value = value.replace(secret, f"{{{{secret:{name}}}}}")
            return value
        if isinstance(value, list):
            return [self.mask(v) for v in value]
        if isinstance(value, dict):
            return {self.mask(k): self.mask(v) for k, v in value.items()}
        return value

    def _value(self, name: str) -> str:
        if name not in self.used:
            if name not in self._declared:
                raise SecretNotDeclared(
                    f"the request uses secret {name!r}, which the step does not declare: "
                    f"add it under the step's 'secrets' (name -> secret id)"
                )
            self.used[name] = self._read(self._declared[name])
        return self.used[name]


Resolver = Callable[[str, int], list[IPAddress]]
"""(host, port) -> the addresses a connection to them may use."""


def resolve(host: str, port: int) -> list[IPAddress]:
    """The addresses ``host`` resolves to, by the system's resolver."""
    found = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return list(dict.fromkeys(ipaddress.ip_address(info[4][0]) for info in found))


@dataclass(frozen=True)
class Network:
    """Where http steps may go: the stack's allow-list (``HttpAllowHosts``) and the resolver."""

    allowed: AllowList = field(default_factory=AllowList)
    resolve: Resolver = field(default=resolve)
    apis: Mapping[str, str] | None = None
    """Locally, the URL each of the stack's own APIs is served at, by its ``execute-api``
    host (None on AWS, where that host is the API)."""


class _Guard:
    """Resolves a host, checks every address, connects to a checked one: the only way a
    request of the step (a redirect's too) reaches the network."""

    def __init__(self, step: str, allowed: AllowList, resolve: Resolver) -> None:
        self._step = step
        self._allowed = allowed
        self._resolve = resolve

    def connect(
        self, address: tuple[str, int], timeout: Any, source_address: Any = None
    ) -> socket.socket:
        host, port = address
        error: OSError = OSError(f"{host} resolves to no address")
        for ip in self._checked(host, port):
            try:
                return socket.create_connection((str(ip), port), timeout, source_address)
            except OSError as exc:
                error = exc
        raise error

    def _checked(self, host: str, port: int) -> list[IPAddress]:
        found = self._resolve(host, port)
        if self._allowed.allows_host(host):
            return found
        for ip in found:
            kind = refused_class(ip)
            if kind is not None and not self._allowed.allows_address(ip):
                name = host.strip("[]")
                said = f"{name} is" if name == str(ip) else f"{name} resolves to {ip},"
                raise HttpAddressRefused(
                    f"step '{self._step}': {said} a {kind} address, which http steps reach only"
                    f" when it is allowed: add {name!r} (or a CIDR holding {ip}) to the"
                    " workflow's allow_hosts, or to the stack's HttpAllowHosts parameter"
                )
        return found


class _Connection(http.client.HTTPConnection):
    def __init__(self, host: str, *, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        # http.client opens its socket through this hook: here, to an address the guard
        # resolved and checked itself (a name is never looked up twice).
        self._create_connection = guard.connect


class _TlsConnection(http.client.HTTPSConnection):
    """As :class:`_Connection`; TLS then wraps the socket for the url's hostname (SNI and the
    certificate check)."""

    def __init__(self, host: str, *, guard: _Guard, **kwargs: Any) -> None:
        super().__init__(host, **kwargs)
        self._create_connection = guard.connect


class _Opens(urllib.request.HTTPHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self._guard = guard

    def http_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(partial(_Connection, guard=self._guard), req)


class _OpensTls(urllib.request.HTTPSHandler):
    def __init__(self, guard: _Guard) -> None:
        super().__init__()
        self._guard = guard

    def https_open(self, req: urllib.request.Request) -> http.client.HTTPResponse:
        return self.do_open(partial(_TlsConnection, guard=self._guard), req)


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows up to :data:`MAX_REDIRECTS` redirects to http(s) URLs only, and never carries
    secret-bearing headers to another origin."""

    max_redirections = MAX_REDIRECTS

    def __init__(self, step: str, sensitive: set[str]) -> None:
        self._step = step
        self._sensitive = sensitive | {"authorization", "cookie", "proxy-authorization"}

    def redirect_request(
        self,
        req: urllib.request.Request,
        fp: Any,
        code: int,
        msg: str,
        headers: http.client.HTTPMessage,
        newurl: str,
    ) -> urllib.request.Request | None:
        scheme = urlsplit(newurl).scheme
        if scheme not in ("http", "https"):
            raise HttpBadUrl(
                f"step '{self._step}': {req.get_method()} {_origin_text(req.full_url)} redirected"
                f" to a {scheme}:// URL; http steps follow http:// and https:// redirects only"
            )
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            for name in list(new.headers):
                if name.lower() in self._sensitive:
                    del new.headers[name]
        return new


def run(
    params: Mapping[str, Any],
    ctx: StepContext,
    secrets: Callable[[str], str],
    network: Network,
) -> Any:
    """Send the request ``params`` describe and return ``{status, headers, body}``.

    ``params["allow_hosts"]`` (the workflow's) adds to ``network``'s allow-list (the stack's).
    """
    method = str(params.get("method") or "GET").upper()
    url_template = str(params["url"])
    timeout = float(params.get("request_timeout_s") or 10)
    vault = _Secrets(params.get("secrets") or {}, secrets)

    url = vault.fill(url_template)
    headers = {str(k): vault.fill(str(v)) for k, v in (params.get("headers") or {}).items()}
    sensitive = {
        k.lower() for k, v in (params.get("headers") or {}).items() if _PLACEHOLDER.search(str(v))
    }
    data = encode_body(vault.fill_any(params.get("body")), headers)
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    if not any(k.lower() == "idempotency-key" for k in headers):
        # The same for every delivery of this attempt: a server that honours the header does
        # not act twice when an attempt's request is sent again.
        headers["Idempotency-Key"] = ctx.idempotency_key

    if urlsplit(url).scheme not in ("http", "https"):
        # Checked on the filled url, reported with the template (the url may hold a secret).
        raise HttpBadUrl(f"http step url must be http:// or https://, got {url_template!r}")
    allowed = network.allowed | AllowList.of(params.get("allow_hosts") or ())
    where = f"{method} {url_template}"
    answer = send(
        urllib.request.Request(url, data=data, method=method, headers=headers),
        Network(allowed, network.resolve),
        ctx.step_id,
        where,
        timeout,
        sensitive,
    )
    status, raw_headers, raw = answer.status, answer.headers, answer.raw
    body = vault.mask(_decode_body(raw, raw_headers))
    if status >= 500 or status == 429:
        snippet = body if isinstance(body, str) else json.dumps(body)
        error = HttpServerError if status >= 500 else HttpThrottled
        raise error(f"{where} answered {status}: {str(snippet)[:200]}")
    ctx.logger.info("http step %s answered %s", where, status)
    return {"status": status, "headers": vault.mask(_headers(raw_headers)), "body": body}


@dataclass(frozen=True)
class Answer:
    """A server's answer: its status, reason phrase, headers and body."""

    status: int
    reason: str
    headers: Message
    raw: bytes


def send(
    request: urllib.request.Request,
    network: Network,
    step: str,
    where: str,
    timeout: float,
    sensitive: Collection[str] = (),
) -> Answer:
    """Send ``request`` where ``network`` lets it go (every redirect hop checked too); the
    answer whatever its status. ``where`` names the request in errors (never a secret);
    ``sensitive`` headers are dropped when a redirect leaves the origin."""
    guard = _Guard(step, network.allowed, network.resolve)
    opener = urllib.request.build_opener(
        urllib.request.ProxyHandler({}),
        _Opens(guard),
        _OpensTls(guard),
        _Redirects(step, set(sensitive)),
    )
    head = request.get_method() == "HEAD"
    try:
        try:
            with opener.open(request, timeout=timeout) as response:
                raw = b"" if head else _read(response, where)
                return Answer(response.status, response.reason, response.headers, raw)
        except urllib.error.HTTPError as exc:
            # urllib raises for every status >= 400 (and refused redirects); the body is still
            # the server's answer.
            with exc:
                raw = b"" if head else _read(exc, where)
                return Answer(exc.code, str(exc.reason), exc.headers, raw)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            raise HttpConnectionError(f"{where}: no answer within {timeout:g}s") from None
        raise HttpConnectionError(f"{where}: {type(reason).__name__}: {reason}") from None


def encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
    """A request body: text as it is, anything else as JSON, labelled so unless ``headers``
    already say what it is."""
    if body is None:
        return None
    has_type = any(k.lower() == "content-type" for k in headers)
    if isinstance(body, str):
        # urllib would label any body application/x-www-form-urlencoded.
        if not has_type:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return body.encode()
    if not has_type:
        headers["Content-Type"] = "application/json"
    return json.dumps(body, separators=(",", ":")).encode()


def _read(response: _Readable, where: str) -> bytes:
    raw = response.read(MAX_RESPONSE_BYTES + 1)
    if len(raw) > MAX_RESPONSE_BYTES:
        raise HttpResponseTooLarge(
            f"{where}: the response body is over {MAX_RESPONSE_BYTES} bytes; "
            "ask the server for less (pagination, a filter)"
        )
    return raw


def _decode_body(raw: bytes, headers: Message) -> Any:
    if not raw:
        return None
    text = raw.decode(headers.get_content_charset() or "utf-8", errors="replace")
    try:
        return json.loads(text)
    except ValueError:
        return text


def _headers(headers: Message) -> dict[str, str]:
    out: dict[str, str] = {}
    for name, value in headers.items():
        key = name.lower()
        out[key] = f"{out[key]}, {value}" if key in out else value
    return out


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    return parts.scheme, (parts.hostname or "").lower(), parts.port


def _origin_text(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or ''}" + (f":{parts.port}" if parts.port else "")
