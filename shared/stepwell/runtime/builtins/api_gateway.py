"""Step Functions' API Gateway integration, ``arn:aws:states:::apigateway:invoke``: one request
to an API Gateway endpoint, sent the way the HTTP Task sends its own (:mod:`http_invoke`).

Parameters: ``ApiEndpoint`` (the API's host, ``ID.execute-api.REGION.amazonaws.com``) and
``Method`` (required), ``Stage``, ``Path``, ``Headers`` and ``QueryParameters`` (each name's
values as a list, or one value), ``RequestBody`` (JSON, or text; its null members left out
unless ``AllowNullValues`` is true), ``AuthType``: ``NO_AUTH`` (the default),
``RESOURCE_POLICY`` (the API's resource policy decides; sent unsigned), or ``IAM_ROLE``
(signed with SigV4, service ``execute-api``, with the step's credentials, so the workflow's
role or the state's ``Credentials`` apply). The headers Step Functions does not let a state set
(``Authorization``, ``Host``, ``X-Amz-*``, ...) are refused.

The result is ``{"Headers", "ResponseBody", "StatusCode", "StatusText"}``; a status outside
2xx fails the task with ``ApiGateway.NNN``, the response body as text its Cause. The request
goes where the http steps' go (:mod:`stepwell.runtime.builtins.http`).

Locally the stack's own APIs are served on loopback (:attr:`Network.apis`): an ``ApiEndpoint``
naming one goes there; another ``execute-api`` host is refused as one that needs AWS, since
the local stack's credentials are not an AWS account's. An ``ApiEndpoint`` written as a URL
(``http://127.0.0.1:8080``: a listener of your own, which the stack's ``HttpAllowHosts`` lets
the runner reach) is taken as it is, locally and on AWS.
"""

from __future__ import annotations

import json
import urllib.parse
import urllib.request
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from botocore.credentials import Credentials

from stepwell.addresses import AllowList, execute_api_region
from stepwell.runtime.builtins.aws import (
    TASK_FAILED,
    ServiceCallFailed,
    parameters_of,
    refused,
    role_of,
)
from stepwell.runtime.builtins.http import Network, encode_body
from stepwell.runtime.builtins.http_invoke import METHODS, exchange
from stepwell.runtime.step_context import StepContext

AUTH_TYPES = ("NO_AUTH", "IAM_ROLE", "RESOURCE_POLICY")
REFUSED_HEADERS = frozenset(
    {"authorization", "connection", "content-md5", "expect", "host", "max-forwards"}
    | {"proxy-authenticate", "server", "te", "transfer-encoding", "trailer", "upgrade"}
    | {"via", "www-authenticate"}
)
REFUSED_PREFIXES = ("x-forwarded", "x-amz", "x-amzn")
"""The request headers Step Functions does not let a state set."""


@dataclass(frozen=True)
class Signer:
    """What signs a request with SigV4: the credentials, and the region of the runner (an
    endpoint whose host names none is signed for it)."""

    credentials: Credentials
    region: str


Signers = Callable[[str | None, str], Signer]
"""``(role ARN or None, run id) -> Signer``: the role's for the run, else the runner's own."""


def run(
    params: Mapping[str, Any], ctx: StepContext, signers: Signers, network: Network
) -> dict[str, Any]:
    """Send the request; return Step Functions' result of it."""
    given = parameters_of(params, ctx)
    method = str(given.get("Method") or "").upper()
    if method not in METHODS:
        raise refused(
            ctx, "apigateway:invoke", f"Method must be one of {', '.join(METHODS)}, not {method!r}"
        )
    auth = str(given.get("AuthType") or "NO_AUTH")
    if auth not in AUTH_TYPES:
        raise refused(
            ctx,
            "apigateway:invoke",
            f"AuthType must be one of {', '.join(AUTH_TYPES)}, not {auth!r}",
        )
    base, region, network = _where(given.get("ApiEndpoint"), network, ctx)
    headers = _headers(given.get("Headers"), ctx)
    url = base + _path(given.get("Stage"), given.get("Path"))
    if query := _pairs(given.get("QueryParameters"), "QueryParameters", ctx):
        url += "?" + urllib.parse.urlencode(query)
    body = given.get("RequestBody")
    if not given.get("AllowNullValues"):
        body = _without_nulls(body)
    data = encode_body(body, headers)
    if auth == "IAM_ROLE":
        signer = signers(role_of(params, ctx), ctx.run_id)
        signed = AWSRequest(method=method, url=url, data=data, headers=headers)
        SigV4Auth(signer.credentials, "execute-api", region or signer.region).add_auth(signed)
        headers = dict(signed.headers.items())
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    result, text = exchange(request, network, ctx, f"apigateway:invoke {method} {base}")
    if not 200 <= result["StatusCode"] < 300:
        raise ServiceCallFailed(f"ApiGateway.{result['StatusCode']}", text)
    return result


def _where(endpoint: Any, network: Network, ctx: StepContext) -> tuple[str, str | None, Network]:
    """The URL ``ApiEndpoint`` names (no trailing ``/``), the region of its ``execute-api``
    host (None: another host), and where the request may go (the local stack's own API is
    reachable though on loopback)."""
    if not isinstance(endpoint, str) or not endpoint.strip("/"):
        raise refused(
            ctx, "apigateway:invoke", f"ApiEndpoint must be an API's host, not {endpoint!r}"
        )
    parts = urllib.parse.urlsplit(endpoint if "://" in endpoint else f"https://{endpoint}")
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise refused(
            ctx, "apigateway:invoke", f"ApiEndpoint must be an API's host, not {endpoint!r}"
        )
    host = parts.hostname
    region = execute_api_region(host)
    base = f"{parts.scheme}://{parts.netloc}{parts.path.rstrip('/')}"
    if region is None or network.apis is None:
        return base, region, network
    served = network.apis.get(host)
    if served is None:
        raise ServiceCallFailed(
            TASK_FAILED,
            f"step '{ctx.step_id}': apigateway:invoke of {host} needs AWS: the local stack "
            f"serves only its own APIs ({', '.join(sorted(network.apis)) or 'none'}); deploy "
            "the workflow to call another, or write ApiEndpoint as the URL of a listener the "
            "stack's HttpAllowHosts allows",
            retryable=False,
        )
    local = urllib.parse.urlsplit(served)
    allowed = network.allowed | AllowList.of([local.hostname or ""])
    return served.rstrip("/") + parts.path.rstrip("/"), region, Network(allowed, network.resolve)


def _path(stage: Any, path: Any) -> str:
    """``/STAGE/PATH`` (each optional: an HTTP API's ``$default`` stage has no name)."""
    words = [str(part).strip("/") for part in (stage, path) if part not in (None, "")]
    joined = "/".join(w for w in words if w)
    return f"/{joined}" if joined else ""


def _pairs(given: Any, field: str, ctx: StepContext) -> list[tuple[str, str]]:
    """``{name: [values]}`` (or ``{name: value}``) as name/value pairs."""
    if given is None:
        return []
    if not isinstance(given, dict):
        raise refused(
            ctx, "apigateway:invoke", f"{field} must be an object of names and their values"
        )
    pairs = []
    for name, values in given.items():
        for value in values if isinstance(values, list) else [values]:
            pairs.append((str(name), value if isinstance(value, str) else json.dumps(value)))
    return pairs


def _headers(given: Any, ctx: StepContext) -> dict[str, str]:
    headers: dict[str, str] = {}
    for name, value in _pairs(given, "Headers", ctx):
        lower = name.lower()
        if lower in REFUSED_HEADERS or lower.startswith(REFUSED_PREFIXES):
            raise refused(
                ctx,
                "apigateway:invoke",
                f"Step Functions does not let a state set the header {name!r}",
            )
        headers[name] = f"{headers[name]},{value}" if name in headers else value
    return headers


def _without_nulls(value: Any) -> Any:
    """``value`` without the null members of its objects (Step Functions leaves them out of a
    request body unless ``AllowNullValues`` is true)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value
