"""The dashboard's files, shipped in the package (``stepwell/ui/static``): what ``stepwell dev``
and ``stepwell ui`` answer for ``/`` and ``/ui/...``.

Every answer carries a strict Content-Security-Policy: scripts, styles and connections only
from the page's own origin, no inline script or style, no eval, no frames. Nothing is fetched
from anywhere else at run time.
"""

from __future__ import annotations

import re
from importlib import resources

CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; "
    "frame-ancestors 'none'"
)
PREFIX = "/ui/"
TYPES = {
    "html": "text/html; charset=utf-8",
    "js": "text/javascript; charset=utf-8",
    "css": "text/css; charset=utf-8",
    "svg": "image/svg+xml",
}
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]*\.(html|js|css|svg)$")

Answer = tuple[int, list[tuple[str, str]], bytes]
"""(status, headers, body)."""

DASHBOARD_HEADER = "x-stepwell-dashboard"
"""What the dashboard's pages send with every API call: a page of another site cannot send it
without a CORS preflight, which the local servers never grant."""


def names_this_server(host_header: str | None, bound: str, port: int) -> bool:
    """Whether a request's ``Host`` names a local server bound to ``bound:port`` (as
    127.0.0.1, localhost or its bound address): a page that reached the server through a name
    of its own (DNS rebinding) does not, and is refused."""
    names = {"127.0.0.1", "localhost", bound.lower(), f"[{bound.lower()}]"}
    host = (host_header or "").strip().lower()
    return host in {f"{name}:{port}" for name in names} or (port == 80 and host in names)


def headers(content_type: str) -> list[tuple[str, str]]:
    """The headers of every dashboard answer."""
    return [
        ("content-type", content_type),
        ("content-security-policy", CSP),
        ("x-content-type-options", "nosniff"),
        ("referrer-policy", "no-referrer"),
        ("x-frame-options", "DENY"),
        ("cache-control", "no-cache"),
    ]


def serve(method: str, path: str) -> Answer | None:
    """The answer for a dashboard path, or None when ``path`` is not the dashboard's (``/``
    leads to the dashboard; the API has no route there)."""
    if path in ("/", "/ui"):
        return 302, [("location", PREFIX), *headers("text/plain; charset=utf-8")], b""
    if not path.startswith(PREFIX):
        return None
    if method not in ("GET", "HEAD"):
        return _plain(405, "the dashboard's files are read with GET")
    name = path[len(PREFIX) :] or "index.html"
    found = _NAME.match(name)
    if found is None:
        return _plain(404, "no such file of the dashboard")
    file = resources.files("stepwell.ui").joinpath("static", name)
    if not file.is_file():
        return _plain(404, "no such file of the dashboard")
    return 200, headers(TYPES[found.group(1)]), file.read_bytes()


def _plain(status: int, message: str) -> Answer:
    return status, headers("text/plain; charset=utf-8"), message.encode()
