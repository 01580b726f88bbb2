"""A small client of the Stepwell HTTP API (urllib only), for the CLI and the end-to-end tests.

It speaks to the API as any client does, over HTTP: no engine, no store.
"""

from __future__ import annotations

import json
import urllib.error
import urllib.parse
import urllib.request
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Reply:
    """An HTTP answer: status, headers (lower-cased names) and the body (JSON when it is)."""

    status: int
    headers: dict[str, str]
    body: Any
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class ApiError(Exception):
    """The API answered with an error status."""

    def __init__(self, reply: Reply, what: str) -> None:
        message = reply.body.get("message") if isinstance(reply.body, dict) else reply.text
        super().__init__(f"{what}: {reply.status} {message}")
        self.reply = reply


class Client:
    """Requests to one API base URL (``http://127.0.0.1:PORT``)."""

    def __init__(self, base_url: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.timeout = timeout

    def request(
        self,
        method: str,
        path_or_url: str,
        *,
        json_body: Any = None,
        form: dict[str, str] | None = None,
        headers: dict[str, str] | None = None,
    ) -> Reply:
        """One request; error statuses are returned, not raised."""
        url = path_or_url if "://" in path_or_url else self.base_url + path_or_url
        data: bytes | None = None
        sent = {"accept": "application/json", **(headers or {})}
        if json_body is not None:
            data = json.dumps(json_body).encode()
            sent.setdefault("content-type", "application/json")
        elif form is not None:
            data = urllib.parse.urlencode(form).encode()
            sent.setdefault("content-type", "application/x-www-form-urlencoded")
        request = urllib.request.Request(url, data=data, method=method, headers=sent)
        # No proxy: the local API is on this machine.
        opener = urllib.request.build_opener(urllib.request.ProxyHandler({}))
        try:
            with opener.open(request, timeout=self.timeout) as response:
                return _reply(response.status, dict(response.headers.items()), response.read())
        except urllib.error.HTTPError as error:
            return _reply(error.code, dict(error.headers.items()), error.read())

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def post(self, path: str, body: Any = None) -> Reply:
        return self.request("POST", path, json_body=body if body is not None else {})

    # -- the routes the CLI and tests use -------------------------------------------------------
    def start_run(self, workflow: str, input: Any = None, **fields: Any) -> Reply:
        """POST /workflows/{name}/runs."""
        body: dict[str, Any] = {"input": input, **fields}
        return self.post(f"/workflows/{urllib.parse.quote(workflow, safe='')}/runs", body)

    def run(self, run_id: str, *, payloads: bool = False) -> dict[str, Any]:
        """GET /runs/{id}: ``{"run": ..., "steps": [...]}``; with ``payloads``, the payloads
        the view leaves out for their size are fetched and put in their places."""
        reply = self.get(f"/runs/{urllib.parse.quote(run_id, safe='')}")
        if not reply.ok:
            raise ApiError(reply, f"GET /runs/{run_id}")
        result: dict[str, Any] = reply.body
        if payloads:
            for record in [result["run"], *result.get("steps", [])]:
                for part in ("input", "output"):
                    url = record.get(f"{part}_url")
                    if url:
                        fetched = self.get(url)
                        if not fetched.ok:
                            raise ApiError(fetched, f"GET {url}")
                        record[part] = fetched.body
        return result

    def timeline(self, run_id: str) -> list[dict[str, Any]]:
        """Every entry of GET /runs/{id}/timeline, following its cursor."""
        entries: list[dict[str, Any]] = []
        cursor: str | None = None
        path = f"/runs/{urllib.parse.quote(run_id, safe='')}/timeline"
        while True:
            query = "?limit=500" + (f"&cursor={urllib.parse.quote(cursor)}" if cursor else "")
            reply = self.get(path + query)
            if not reply.ok:
                raise ApiError(reply, f"GET {path}")
            page = reply.body.get("entries") or []
            entries.extend(page)
            cursor = reply.body.get("cursor")
            if not page or not cursor:
                return entries

    def decide(self, url: str, decision: str, comment: str | None = None) -> Reply:
        """POST an approval link (what the page's button does)."""
        form = {"decision": decision}
        if comment:
            form["comment"] = comment
        return self.request("POST", url, form=form)


def _reply(status: int, headers: dict[str, str], raw: bytes) -> Reply:
    text = raw.decode("utf-8", "replace")
    lowered = {k.lower(): v for k, v in headers.items()}
    body: Any = text
    if "json" in lowered.get("content-type", "") or text[:1] in ("{", "["):
        try:
            body = json.loads(text) if text else None
        except ValueError:
            body = text
    return Reply(status, lowered, body, text)
