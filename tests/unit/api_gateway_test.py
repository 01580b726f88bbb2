"""Step Functions' ``apigateway:invoke``: the request its parameters make (URL of the endpoint,
stage and path, list-valued headers and query, a body without nulls), SigV4 for ``IAM_ROLE``,
the result and ``ApiGateway.NNN`` errors, and where the request goes locally, against the
loopback listener of the HTTP Task's tests."""

from __future__ import annotations

import json
import urllib.parse
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import boto3
import botocore.auth
import pytest
from botocore.auth import SigV4Auth
from botocore.awsrequest import AWSRequest
from http_invoke_test import Handler, listening, runner

from helpers import task_problems
from stepwell.cli import main as cli
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.builtins.http import Network
from stepwell.runtime.step_context import StepContext
from stepwell.runtime.wiring import local_apis

CTX = StepContext("run-1", "call", "call", 1, "run-1:call:1")
OWN = "a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"


@pytest.fixture(scope="module")
def listener() -> Iterator[str]:
    with listening() as url:
        yield url


@pytest.fixture
def deps(monkeypatch: pytest.MonkeyPatch) -> Iterator[BuiltinDeps]:
    with runner(monkeypatch) as made:
        yield made


def invoke(deps: BuiltinDeps, **parameters: Any) -> Any:
    params = {"service": "apigateway", "action": "invoke", "integration": "optimized"}
    return run_builtin("aws", params | {"parameters": parameters}, CTX, deps).output


def test_the_url_is_the_endpoint_stage_and_path_with_each_value_of_the_query(
    deps: BuiltinDeps, listener: str
) -> None:
    result = invoke(
        deps,
        ApiEndpoint=listener,
        Method="POST",
        Stage="prod",
        Path="/orders/7",
        Headers={"Accept": ["application/json"], "X-Tags": ["a", "b"]},
        QueryParameters={"state": ["open", "held"], "page": "2"},
        RequestBody={"order": 7, "note": None, "lines": [{"sku": "x", "gift": None}]},
    )
    assert result["ResponseBody"] == {"orders": [7]}
    assert (result["StatusCode"], result["StatusText"]) == (200, "OK")
    assert result["Headers"]["Set-Cookie"] == ["a=1", "b=2"]
    (seen,) = Handler.seen
    assert seen["path"] == "/prod/orders/7"
    assert urllib.parse.parse_qs(seen["query"]) == {"state": ["open", "held"], "page": ["2"]}
    assert seen["headers"]["x-tags"] == "a,b" and "authorization" not in seen["headers"]
    # Step Functions leaves a body's nulls out unless AllowNullValues is true.
    assert json.loads(seen["body"]) == {"order": 7, "lines": [{"sku": "x"}]}


def test_allow_null_values_keeps_them(deps: BuiltinDeps, listener: str) -> None:
    invoke(
        deps, ApiEndpoint=listener, Method="POST", RequestBody={"note": None}, AllowNullValues=True
    )
    assert json.loads(Handler.seen[0]["body"]) == {"note": None}


def test_iam_role_signs_the_request_with_sigv4_for_execute_api(
    deps: BuiltinDeps, listener: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    invoke(
        deps,
        ApiEndpoint=listener,
        Method="POST",
        Stage="prod",
        Path="orders",
        QueryParameters={"q": ["1"]},
        RequestBody={"order": 7},
        AuthType="IAM_ROLE",
    )
    credentials = boto3.Session().get_credentials()
    assert credentials is not None
    (seen,) = Handler.seen
    authorization = seen["headers"]["authorization"]
    assert authorization.startswith(f"AWS4-HMAC-SHA256 Credential={credentials.access_key}/")
    assert "/us-east-1/execute-api/aws4_request" in authorization
    # The same request signed again at the same moment gives the same signature: the
    # signature covers this method, path, query, body and these headers. SigV4Auth signs at
    # the time it reads, so it is given the moment the request was signed.
    again = AWSRequest(
        method="POST",
        url=f"{listener}/prod/orders?q=1",
        data=seen["body"].encode(),
        headers={"Content-Type": seen["headers"]["content-type"]},
    )
    signed_at = datetime.strptime(seen["headers"]["x-amz-date"], "%Y%m%dT%H%M%SZ")
    monkeypatch.setattr(botocore.auth, "get_current_datetime", lambda: signed_at)
    SigV4Auth(credentials, "execute-api", "us-east-1").add_auth(again)
    assert again.headers["Authorization"] == authorization


def test_iam_role_signs_with_the_steps_role_for_its_run(deps: BuiltinDeps, listener: str) -> None:
    role = "arn:aws:iam::123456789012:role/api-caller"
    params = {"service": "apigateway", "action": "invoke", "integration": "optimized"}
    given = {"ApiEndpoint": listener, "Method": "GET", "AuthType": "IAM_ROLE"}
    run_builtin("aws", params | {"role": role, "parameters": given}, CTX, deps)
    assumed = deps.roles.credentials(role, CTX.run_id)
    assert assumed.access_key != "testing"  # the role's, from STS, not the runner's own
    (seen,) = Handler.seen
    assert f"Credential={assumed.access_key}/" in seen["headers"]["authorization"]
    assert seen["headers"]["x-amz-security-token"] == assumed.token


def test_a_status_outside_2xx_is_api_gateway_and_the_status(
    deps: BuiltinDeps, listener: str
) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, ApiEndpoint=listener, Method="GET", Path="missing")
    assert failed.value.error_type == "ApiGateway.404"
    assert json.loads(str(failed.value)) == {"message": "no such order"}


@pytest.mark.parametrize(
    ("parameters", "said"),
    [
        ({"Method": "GET"}, "ApiEndpoint must be an API's host"),
        ({"ApiEndpoint": "ftp://x", "Method": "GET"}, "ApiEndpoint must be an API's host"),
        ({"ApiEndpoint": "x", "Method": "FETCH"}, "Method must be one of GET"),
        ({"ApiEndpoint": "x", "Method": "GET", "AuthType": "IAM"}, "AuthType must be one of"),
        (
            {"ApiEndpoint": "x", "Method": "GET", "Headers": {"X-Amz-Date": ["1"]}},
            "does not let a state set the header 'X-Amz-Date'",
        ),
    ],
)
def test_a_request_that_cannot_be_sent_says_why(
    deps: BuiltinDeps, parameters: dict[str, Any], said: str
) -> None:
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, **parameters)
    assert failed.value.error_type == "States.TaskFailed" and not failed.value.retryable
    assert said in str(failed.value)


def test_locally_the_stacks_own_api_is_served_on_loopback(deps: BuiltinDeps, listener: str) -> None:
    # The local stack's own API: reachable though the stack allows no loopback address.
    deps.network = Network(apis=local_apis({"STEPWELL_LOCAL_APIS": f"{OWN}={listener}"}))
    invoke(deps, ApiEndpoint=OWN, Method="GET", Stage="$default", Path="orders")
    assert Handler.seen[0]["path"] == "/$default/orders"
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, ApiEndpoint="zz9.execute-api.us-east-2.amazonaws.com", Method="GET")
    assert failed.value.error_type == "States.TaskFailed" and not failed.value.retryable
    assert "zz9.execute-api.us-east-2.amazonaws.com needs AWS" in str(failed.value)
    assert OWN in str(failed.value) and len(Handler.seen) == 1


def test_on_aws_an_endpoint_is_an_https_host_and_loopback_stays_refused(
    deps: BuiltinDeps, listener: str
) -> None:
    assert local_apis({}) is None
    deps.network = Network()
    with pytest.raises(ServiceCallFailed) as failed:
        invoke(deps, ApiEndpoint=listener.removeprefix("http://"), Method="GET")
    assert "loopback address" in str(failed.value) and Handler.seen == []


def test_a_machine_is_checked_against_the_integrations_parameters(tmp_path: Path) -> None:
    def problems(resource: str, parameters: dict[str, Any]) -> list[str]:
        return task_problems(tmp_path, f"arn:aws:states:::apigateway:{resource}", parameters)

    given = {"ApiEndpoint": OWN, "Method": "GET", "AuthType": "IAM_ROLE", "Stage": "prod"}
    assert problems("invoke", given) == []
    assert problems("invoke.waitForTaskToken", {**given, "Headers": {"T.$": "$$.Task.Token"}}) == []
    (unknown,) = problems("invoke", {**given, "Url": "https://x"})
    assert "apigateway:invoke takes no parameter 'Url'" in unknown and "AllowNullValues" in unknown


def test_validate_warns_that_an_execute_api_host_written_in_the_machine_runs_on_aws_only(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    def task(endpoint: dict[str, str]) -> dict[str, Any]:
        parameters = {"Method": "GET", **endpoint}
        return {
            "Type": "Task",
            "Resource": "arn:aws:states:::apigateway:invoke",
            "Parameters": parameters,
        }

    states = {
        "Foreign": {
            **task({"ApiEndpoint": "zz9.execute-api.us-east-2.amazonaws.com"}),
            "Next": "Given",
        },
        "Given": {**task({"ApiEndpoint.$": "$.api"}), "Next": "Listener"},
        "Listener": {**task({"ApiEndpoint": "http://127.0.0.1:8080"}), "End": True},
    }
    path = tmp_path / "caller.asl.json"
    path.write_text(json.dumps({"StartAt": "Foreign", "States": states}, indent=1))
    assert cli.main(["validate", "--no-template", str(path)]) == 0
    out = capsys.readouterr().out
    (line,) = [line for line in out.splitlines() if "warning" in line]
    assert "Foreign" in line and "ApiEndpoint" in line
    assert "apigateway:invoke of zz9.execute-api.us-east-2.amazonaws.com runs on AWS only" in line
    assert "caller ok" in out
