"""An EventBridge connection's authorization, as an HTTP Task sends it.

A connection (``arn:aws:events:REGION:ACCOUNT:connection/NAME/ID``) keeps its credentials in the
Secrets Manager secret EventBridge made for it (``DescribeConnection``'s ``SecretArn``; the
description itself leaves the secret values out): an API key (``api_key_name``,
``api_key_value``: a header), basic credentials (``username``, ``password``: ``Authorization:
Basic``) or OAuth client credentials (``client_parameters`` with ``client_id`` and
``client_secret``, ``authorization_endpoint``, ``http_method``, ``o_auth_http_parameters``: a
token asked for with the client's basic credentials and ``grant_type=client_credentials``, then
``Authorization: Bearer``). Its ``invocation_http_parameters`` (headers, query string and body
parameters) go with every request. The secret's keys are read case and underscores aside.
"""

from __future__ import annotations

import base64
import json
import urllib.parse
import urllib.request
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from stepwell.definition.services import operation
from stepwell.runtime.builtins.aws import TASK_FAILED, Clients, ServiceCallFailed, call
from stepwell.runtime.builtins.http import Network, send
from stepwell.runtime.step_context import StepContext

TOKEN_TIMEOUT_S = 10.0


@dataclass
class Parameters:
    """What a request carries besides its own: headers, query string and body parameters."""

    headers: dict[str, str] = field(default_factory=dict)
    query: dict[str, str] = field(default_factory=dict)
    body: dict[str, str] = field(default_factory=dict)


def name_of(arn: str) -> str:
    """A connection's name, from its ARN (or the name itself)."""
    return arn.split(":connection/", 1)[1].split("/", 1)[0] if ":connection/" in arn else arn


def authorization(arn: str, client: Clients, network: Network, ctx: StepContext) -> Parameters:
    """The parameters a request through connection ``arn`` carries, its authorization among
    them."""
    described = call(
        client, "events", operation("events", "DescribeConnection"), {"Name": name_of(arn)}, ctx
    )
    secret_arn = described.get("SecretArn")
    got = call(
        client,
        "secretsmanager",
        operation("secretsmanager", "GetSecretValue"),
        {"SecretId": secret_arn},
        ctx,
    )
    secret = _plain(json.loads(got.get("SecretString") or "{}"))
    kind = str(described.get("AuthorizationType") or "")
    out = _parameters(secret.get("invocationhttpparameters"))
    if kind == "API_KEY":
        out.headers[str(secret.get("apikeyname"))] = str(secret.get("apikeyvalue"))
    elif kind == "BASIC":
        out.headers["Authorization"] = _basic(secret.get("username"), secret.get("password"))
    elif kind == "OAUTH_CLIENT_CREDENTIALS":
        token = _token(secret, network, ctx)
        out.headers["Authorization"] = f"Bearer {token}"
    else:
        raise ServiceCallFailed(
            TASK_FAILED,
            f"step '{ctx.step_id}': connection {arn} has authorization type {kind!r}; an HTTP "
            "Task sends API_KEY, BASIC and OAUTH_CLIENT_CREDENTIALS",
            retryable=False,
        )
    return out


def _token(secret: Mapping[str, Any], network: Network, ctx: StepContext) -> str:
    """An access token from the connection's authorization endpoint."""
    client = secret.get("clientparameters") or {}
    endpoint = str(secret.get("authorizationendpoint") or "")
    method = str(secret.get("httpmethod") or "POST").upper()
    extra = _parameters(secret.get("oauthhttpparameters"))
    form = {"grant_type": "client_credentials", **extra.body}
    url = endpoint
    if extra.query:
        url += ("&" if "?" in url else "?") + urllib.parse.urlencode(extra.query)
    headers = {
        **extra.headers,
        "Authorization": _basic(client.get("clientid"), client.get("clientsecret")),
        "Content-Type": "application/x-www-form-urlencoded",
    }
    data = urllib.parse.urlencode(form).encode() if method != "GET" else None
    where = f"{method} {endpoint} (the connection's OAuth token)"
    request = urllib.request.Request(url, data=data, method=method, headers=headers)
    answer = send(request, network, ctx.step_id, where, TOKEN_TIMEOUT_S, {"authorization"})
    try:
        token = json.loads(answer.raw).get("access_token") if 200 <= answer.status < 300 else None
    except (ValueError, AttributeError):
        token = None
    if not isinstance(token, str):
        raise ServiceCallFailed(
            "States.Http.StatusCode." + str(answer.status) if answer.status >= 400 else TASK_FAILED,
            f"step '{ctx.step_id}': {where} answered {answer.status} {answer.reason} with no "
            "access_token",
        )
    return token


def _parameters(given: Any) -> Parameters:
    """A connection's ``*_http_parameters``: lists of ``{key, value}`` by where they go."""
    found = given if isinstance(given, dict) else {}
    out = Parameters()
    for field_name, into in (
        ("headerparameters", out.headers),
        ("querystringparameters", out.query),
        ("bodyparameters", out.body),
    ):
        for item in found.get(field_name) or []:
            if isinstance(item, dict) and item.get("key") is not None:
                into[str(item["key"])] = str(item.get("value") or "")
    return out


def _plain(value: Any) -> Any:
    """Keys lower-cased without underscores (``client_i_d``, ``ClientID`` -> ``clientid``)."""
    if isinstance(value, dict):
        return {str(k).replace("_", "").lower(): _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _basic(user: Any, password: Any) -> str:
    pair = f"{user or ''}:{password or ''}".encode()
    return "Basic " + base64.b64encode(pair).decode()
