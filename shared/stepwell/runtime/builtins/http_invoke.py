"""Step Functions' HTTP Task, ``arn:aws:states:::http:invoke``: one HTTPS request with an
EventBridge connection's authorization.

Parameters: ``ApiEndpoint`` and ``Method`` (required), ``Authentication.ConnectionArn`` (or
``InvocationConfig.ConnectionArn``; required), ``Headers``, ``QueryParameters``,
``RequestBody`` (JSON, or text), ``Transform`` (``RequestBodyEncoding: URL_ENCODED`` sends an
object as a form, its arrays as ``RequestEncodingOptions.ArrayFormat`` says: ``INDICES``
(default), ``REPEAT``, ``COMMAS`` or ``BRACKETS``). The connection's headers, query string and
body parameters are added (its own win, as EventBridge's do), with its authorization
(:mod:`connections`).

The result is ``{"Headers", "ResponseBody", "StatusCode", "StatusText"}``: each header's values
as a list, the body as JSON when it parses, its text otherwise. A status outside 2xx fails the
task with ``States.Http.StatusCode.NNN``, the result as JSON text its Cause. The request goes
where the http step's go (:mod:`stepwell.runtime.builtins.http`: private and loopback addresses
only when the stack's ``HttpAllowHosts`` allows them, each redirect checked again).
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from typing import Any

from stepwell.runtime.builtins import connections
from stepwell.runtime.builtins.aws import (
    TASK_FAILED,
    Clients,
    ServiceCallFailed,
    parameters_of,
    refused,
    role_of,
    with_role,
)
from stepwell.runtime.builtins.http import (
    HttpAddressRefused,
    HttpBadUrl,
    HttpConnectionError,
    Network,
    encode_body,
    send,
)
from stepwell.runtime.step_context import StepContext

METHODS = ("GET", "POST", "PUT", "DELETE", "PATCH", "OPTIONS", "HEAD")
ARRAY_FORMATS = ("INDICES", "REPEAT", "COMMAS", "BRACKETS")
TIMEOUT_S = 60.0
"""How long the server may take to answer (Step Functions gives an HTTP Task 60 seconds)."""


def run(
    params: Mapping[str, Any], ctx: StepContext, client: Clients, network: Network
) -> dict[str, Any]:
    """Send the request; return Step Functions' result of it."""
    client = with_role(client, role_of(params, ctx))
    given = parameters_of(params, ctx)
    endpoint, method = given.get("ApiEndpoint"), str(given.get("Method") or "").upper()
    if not isinstance(endpoint, str) or urllib.parse.urlsplit(endpoint).scheme not in (
        "http",
        "https",
    ):
        raise refused(ctx, "http:invoke", f"ApiEndpoint must be an https:// URL, not {endpoint!r}")
    if method not in METHODS:
        raise refused(
            ctx, "http:invoke", f"Method must be one of {', '.join(METHODS)}, not {method!r}"
        )
    arn = _connection(given)
    if arn is None:
        raise refused(
            ctx, "http:invoke", "give the EventBridge connection as Authentication.ConnectionArn"
        )
    extra = connections.authorization(arn, client, network, ctx)
    headers = {str(k): str(v) for k, v in (given.get("Headers") or {}).items()} | extra.headers
    query = {**(given.get("QueryParameters") or {}), **extra.query}
    transform = given.get("Transform") or {}
    arrays = str((transform.get("RequestEncodingOptions") or {}).get("ArrayFormat") or "INDICES")
    if arrays not in ARRAY_FORMATS:
        raise refused(ctx, "http:invoke", f"ArrayFormat must be one of {', '.join(ARRAY_FORMATS)}")
    url = endpoint + (("&" if "?" in endpoint else "?") + _form(query, arrays) if query else "")
    data = _body(given.get("RequestBody"), extra.body, transform, arrays, headers)
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    result, _ = exchange(request, network, ctx, f"{method} {endpoint}")
    if not 200 <= result["StatusCode"] < 300:
        raise ServiceCallFailed(
            f"States.Http.StatusCode.{result['StatusCode']}",
            json.dumps(result, separators=(",", ":")),
        )
    return result


def exchange(
    request: urllib.request.Request, network: Network, ctx: StepContext, where: str
) -> tuple[dict[str, Any], str]:
    """Send an integration's request where ``network`` lets it go; Step Functions' result of
    it (``{"Headers", "ResponseBody", "StatusCode", "StatusText"}``: each header's values a
    list, the body JSON when it parses) and the body's text. ``where`` names the request."""
    try:
        answer = send(request, network, ctx.step_id, where, TIMEOUT_S, {"authorization"})
    except (HttpBadUrl, HttpAddressRefused, HttpConnectionError) as exc:
        # A task's failure without a name of its own is States.TaskFailed in Step Functions.
        retryable = isinstance(exc, HttpConnectionError)
        raise ServiceCallFailed(TASK_FAILED, str(exc), retryable=retryable) from None
    text = answer.raw.decode(answer.headers.get_content_charset() or "utf-8", errors="replace")
    try:
        body: Any = json.loads(text) if text else ""
    except ValueError:
        body = text
    ctx.logger.info("%s answered %s", where, answer.status)
    result = {
        "Headers": {name: answer.headers.get_all(name) or [] for name in answer.headers},
        "ResponseBody": body,
        "StatusCode": answer.status,
        "StatusText": answer.reason,
    }
    return result, text


def _connection(given: Mapping[str, Any]) -> str | None:
    for field in ("Authentication", "InvocationConfig"):
        arn = (given.get(field) or {}).get("ConnectionArn")
        if isinstance(arn, str) and arn:
            return arn
    return None


def _body(
    given: Any,
    extra: Mapping[str, str],
    transform: Mapping[str, Any],
    arrays: str,
    headers: dict[str, str],
) -> bytes | None:
    """The request's body: JSON (the connection's body parameters added to an object), text,
    or a form when ``Transform`` asks for one."""
    if isinstance(given, dict) or (given is None and extra):
        given = {**(given or {}), **extra}
    if given is None:
        return None
    if transform.get("RequestBodyEncoding") == "URL_ENCODED" and isinstance(given, dict):
        if not any(k.lower() == "content-type" for k in headers):
            headers["Content-Type"] = "application/x-www-form-urlencoded"
        return _form(given, arrays).encode()
    return encode_body(given, headers)


def _form(values: Mapping[str, Any], arrays: str) -> str:
    """``values`` URL-encoded, arrays as ``arrays`` says (``a[0]=x``, ``a=x&a=y``, ``a=x,y``,
    ``a[]=x``), an object's members as ``a[b]=x``."""
    pairs: list[tuple[str, str]] = []

    def add(name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                add(f"{name}[{key}]", item)
        elif isinstance(value, list):
            if arrays == "COMMAS":
                pairs.append((name, ",".join(_text(v) for v in value)))
                return
            for index, item in enumerate(value):
                suffix = {"INDICES": f"[{index}]", "BRACKETS": "[]"}.get(arrays, "")
                add(f"{name}{suffix}", item)
        else:
            pairs.append((name, _text(value)))

    for key, value in values.items():
        add(str(key), value)
    return urllib.parse.urlencode(pairs)


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)
