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
* ``HttpBadUrl``: the url is not http:// or https:// (urllib would read file:// too).
* ``SecretNotDeclared``: a ``{{secret:NAME}}`` whose NAME the step does not declare.

Any other status, 3xx and 4xx included, *succeeds* with that status: whether a 404 is an error
is the workflow's call (a ``when`` on ``steps.x.output.status``), and retrying a 400 does not
help. Redirects are followed by urllib, except those it refuses (a 307 of a PUT, say), which
come back as their 3xx.

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
import json
import re
import urllib.error
import urllib.request
from collections.abc import Callable, Mapping
from email.message import Message
from typing import Any, ClassVar, Protocol
from urllib.parse import urlsplit

from stepwell.runtime.step_context import StepContext

MAX_RESPONSE_BYTES = 5 * 1024 * 1024
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


class SecretNotDeclared(LookupError):
    """A ``{{secret:NAME}}`` placeholder whose NAME is not in the step's ``secrets``."""

    retryable: ClassVar[bool] = False


ERROR_NAMES = (
    "HttpServerError",
    "HttpThrottled",
    "HttpConnectionError",
    "HttpResponseTooLarge",
    "HttpBadUrl",
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


class _Redirects(urllib.request.HTTPRedirectHandler):
    """Follows redirects, but never carries secret-bearing headers to another origin."""

    def __init__(self, sensitive: set[str]) -> None:
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
        new = super().redirect_request(req, fp, code, msg, headers, newurl)
        if new is not None and _origin(newurl) != _origin(req.full_url):
            for name in list(new.headers):
                if name.lower() in self._sensitive:
                    del new.headers[name]
        return new


def run(params: Mapping[str, Any], ctx: StepContext, secrets: Callable[[str], str]) -> Any:
    """Send the request ``params`` describe and return ``{status, headers, body}``."""
    method = str(params.get("method") or "GET").upper()
    url_template = str(params["url"])
    timeout = float(params.get("request_timeout_s") or 10)
    vault = _Secrets(params.get("secrets") or {}, secrets)

    url = vault.fill(url_template)
    headers = {str(k): vault.fill(str(v)) for k, v in (params.get("headers") or {}).items()}
    sensitive = {
        k.lower() for k, v in (params.get("headers") or {}).items() if _PLACEHOLDER.search(str(v))
    }
    data = _encode_body(vault.fill_any(params.get("body")), headers)
    if not any(k.lower() == "user-agent" for k in headers):
        headers["User-Agent"] = USER_AGENT
    if not any(k.lower() == "idempotency-key" for k in headers):
        # The same for every delivery of this attempt: a server that honours the header does
        # not act twice when an attempt's request is sent again.
        headers["Idempotency-Key"] = ctx.idempotency_key

    if urlsplit(url).scheme not in ("http", "https"):
        # Checked on the filled url, reported with the template (the url may hold a secret).
        raise HttpBadUrl(f"http step url must be http:// or https://, got {url_template!r}")
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    opener = urllib.request.build_opener(_Redirects(sensitive))
    where = f"{method} {url_template}"
    try:
        try:
            with opener.open(request, timeout=timeout) as response:
                status, raw_headers = response.status, response.headers
                raw = b"" if method == "HEAD" else _read(response, where)
        except urllib.error.HTTPError as exc:
            # urllib raises for every status >= 400 (and refused redirects); the body is still
            # the server's answer.
            with exc:
                status, raw_headers = exc.code, exc.headers
                raw = b"" if method == "HEAD" else _read(exc, where)
    except (urllib.error.URLError, http.client.HTTPException, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        if isinstance(reason, TimeoutError):
            raise HttpConnectionError(f"{where}: no answer within {timeout:g}s") from None
        raise HttpConnectionError(f"{where}: {type(reason).__name__}: {reason}") from None

    body = vault.mask(_decode_body(raw, raw_headers))
    if status >= 500 or status == 429:
        snippet = body if isinstance(body, str) else json.dumps(body)
        error = HttpServerError if status >= 500 else HttpThrottled
        raise error(f"{where} answered {status}: {str(snippet)[:200]}")
    ctx.logger.info("http step %s answered %s", where, status)
    return {"status": status, "headers": vault.mask(_headers(raw_headers)), "body": body}


def _encode_body(body: Any, headers: dict[str, str]) -> bytes | None:
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
