"""A small client of Stepwell's HTTP API (standard library only), used by the CLI.

Requests to a deployed API are signed with SigV4 (the management routes use IAM auth), with
the credentials botocore finds; ``STEPWELL_API_TOKEN`` sends a bearer token instead (a JWT API).
Requests to the local stack on 127.0.0.1 are sent as they are.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any, Literal

LOCAL_PORT = 3000
"""The port ``stepwell dev`` serves on unless told otherwise."""
DEFAULT_API = f"http://127.0.0.1:{LOCAL_PORT}"
"""The local stack (``stepwell dev``), where the CLI goes unless ``--api`` or ``STEPWELL_API``
says otherwise."""
TIMEOUT_S = 30.0
_REGION = re.compile(r"\.execute-api\.([a-z0-9-]+)\.amazonaws\.com$")

Auth = Literal["auto", "none", "sigv4"]


class ApiError(Exception):
    """The API answered with an error (``status`` and its JSON ``{error, message, details}``),
    could not be reached, or answered what a Stepwell API does not (``status`` 0)."""

    def __init__(self, status: int, message: str, body: Any = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.body = body


@dataclass
class Client:
    """Talks to one API base URL."""

    base_url: str = DEFAULT_API
    auth: Auth = "auto"
    timeout: float = TIMEOUT_S

    def __post_init__(self) -> None:
        self.base_url = self.base_url.rstrip("/")

    def get(
        self, path: str, query: dict[str, Any] | None = None, *, expect: tuple[str, ...] = ()
    ) -> Any:
        """GET a JSON answer (an object holding the keys ``expect`` names)."""
        return self.request("GET", path, query=query, expect=expect)

    def post(
        self,
        path: str,
        body: Any = None,
        form: dict[str, str] | None = None,
        *,
        headers: dict[str, str] | None = None,
        expect: tuple[str, ...] = (),
    ) -> Any:
        """POST JSON (or a form) and return the JSON answer."""
        return self.request("POST", path, body=body, form=form, headers=headers, expect=expect)

    def request(
        self,
        method: str,
        path: str,
        *,
        query: dict[str, Any] | None = None,
        body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
        expect: tuple[str, ...] = (),
    ) -> Any:
        """One request; raises :class:`ApiError` for an error answer, an unreachable API, or a
        success whose body is not JSON (or, with ``expect``, not an object with those keys)."""
        url = self.base_url + path
        pairs = {k: str(v) for k, v in (query or {}).items() if v is not None}
        if pairs:
            url += "?" + urllib.parse.urlencode(pairs)
        headers = {"Accept": "application/json", "User-Agent": "stepwell-cli", **(headers or {})}
        data: bytes | None = None
        if form is not None:
            data = urllib.parse.urlencode(form).encode()
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        elif body is not None:
            data = json.dumps(body).encode()
            headers["Content-Type"] = "application/json"
        headers.update(self._auth_headers(method, url, data, headers))
        request = urllib.request.Request(url, data=data, method=method, headers=headers)
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                raw = response.read()
        except urllib.error.HTTPError as exc:
            raw = exc.read()
            parsed = _json(raw)
            message = parsed.get("message") if isinstance(parsed, dict) else None
            raise ApiError(exc.code, str(message or f"HTTP {exc.code}"), parsed) from None
        except (TimeoutError, urllib.error.URLError, ConnectionError) as exc:
            reason = getattr(exc, "reason", exc)
            raise ApiError(
                0,
                f"cannot reach the Stepwell API at {self.base_url} ({reason}); "
                "is `stepwell dev` running, or is --api right?",
            ) from None
        return self._answer(method, url, raw, expect)

    def _answer(self, method: str, url: str, raw: bytes, expect: tuple[str, ...]) -> Any:
        """The JSON of a success, when it is what a Stepwell API answers."""
        try:
            answer = json.loads(raw) if raw else None
        except ValueError:
            answer = _NOT_JSON
        missing = [key for key in expect if not isinstance(answer, dict) or key not in answer]
        if answer is _NOT_JSON or missing:
            what = "not JSON" if answer is _NOT_JSON else f"JSON without {', '.join(missing)}"
            shown = raw[:80].decode(errors="replace").replace("\n", " ")
            raise ApiError(
                0,
                f"unexpected answer to {method} {url}: {what} ({shown!r}); "
                "is --api the URL of a Stepwell API?",
            )
        return answer

    def _auth_headers(
        self, method: str, url: str, data: bytes | None, headers: dict[str, str]
    ) -> dict[str, str]:
        token = os.environ.get("STEPWELL_API_TOKEN")
        if token:
            return {"Authorization": f"Bearer {token}"}
        host = urllib.parse.urlsplit(url).hostname or ""
        local = host in ("127.0.0.1", "localhost", "::1") or host.startswith("127.")
        if self.auth == "none" or (self.auth == "auto" and local):
            return {}
        return _sigv4(method, url, data, headers, host)


def _sigv4(
    method: str, url: str, data: bytes | None, headers: dict[str, str], host: str
) -> dict[str, str]:
    """SigV4 headers for API Gateway (``execute-api``) with botocore's credentials."""
    import botocore.session
    from botocore.auth import SigV4Auth
    from botocore.awsrequest import AWSRequest

    session = botocore.session.get_session()
    credentials = session.get_credentials()
    if credentials is None:
        raise ApiError(0, "no AWS credentials to sign the request with (SigV4)")
    found = _REGION.search(host)
    region = found.group(1) if found else session.get_config_variable("region") or "us-east-1"
    signed = AWSRequest(method=method, url=url, data=data or b"", headers=dict(headers))
    SigV4Auth(credentials, "execute-api", region).add_auth(signed)
    return {
        k: v for k, v in signed.headers.items() if k.lower() not in {h.lower() for h in headers}
    }


_NOT_JSON = object()


def _json(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return {"message": raw[:500].decode(errors="replace")}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``--api`` and ``--sigv4``/``--no-auth``, shared by the commands that call the API."""
    parser.add_argument(
        "--api",
        default=os.environ.get("STEPWELL_API", DEFAULT_API),
        metavar="URL",
        help=f"the Stepwell API (default: $STEPWELL_API or {DEFAULT_API}, the local stack)",
    )
    auth = parser.add_mutually_exclusive_group()
    auth.add_argument(
        "--sigv4",
        dest="auth",
        action="store_const",
        const="sigv4",
        default="auto",
        help="sign requests with SigV4 even on 127.0.0.1 (an API behind a local proxy)",
    )
    auth.add_argument(
        "--no-auth", dest="auth", action="store_const", const="none", help="never sign"
    )


def from_args(args: argparse.Namespace) -> Client:
    """The client the command line asks for."""
    return Client(str(args.api), auth=args.auth)


def report(command: str, error: ApiError) -> int:
    """Print an API error for a person; the exit code (1, or 2 when the API is unreachable)."""
    import sys

    status = f" ({error.status})" if error.status else ""
    print(f"stepwell {command}: {error.message}{status}", file=sys.stderr)
    details = error.body.get("details") if isinstance(error.body, dict) else None
    for detail in details if isinstance(details, list) else []:
        if isinstance(detail, dict) and detail.get("message"):
            where = detail.get("path") or ".".join(str(p) for p in detail.get("loc") or [])
            print(
                f"  {where}: {detail['message']}" if where else f"  {detail['message']}",
                file=sys.stderr,
            )
    return 2 if error.status == 0 else 1
