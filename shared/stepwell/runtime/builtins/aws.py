"""The aws step: one call of an AWS API with boto3, spelled as Step Functions' AWS SDK
integrations spell it (``arn:aws:states:::aws-sdk:SERVICE:ACTION``; names and errors:
``stepwell.definition.services``).

Its parameters and its result's fields are in PascalCase whatever the service's own model says
(API Gateway's ``restApiId`` is ``RestApiId``); a blob is a string, a timestamp an ISO 8601
string. A service's error fails the step as ``Service.CodeException``; anything else that fails
the call is ``States.TaskFailed``.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

from botocore import xform_name
from botocore.exceptions import BotoCoreError, ClientError, ParamValidationError
from botocore.model import ListShape, MapShape, OperationModel, Shape, StructureShape
from botocore.response import StreamingBody

from stepwell.definition import emr
from stepwell.definition.services import WITH_METADATA, api_of, camel, error_name
from stepwell.runtime.aws.roles import RoleNotAssumed
from stepwell.runtime.step_context import StepContext

TASK_FAILED = "States.TaskFailed"


class ServiceCallFailed(Exception):
    """The call failed: ``error_type`` is the name Step Functions gives the failure."""

    def __init__(self, error_type: str, message: str, retryable: bool = True) -> None:
        super().__init__(message)
        self.error_type = error_type
        self.retryable = retryable

    @property
    def error_name(self) -> str:
        """The name a replay records it by (a job's check: ``ctx.aws_job``)."""
        return self.error_type


ERROR_NAMES = (TASK_FAILED, "UnknownCall")
"""The names of an aws step's failures besides its service's own (``Service.CodeException``)."""


Clients = Callable[[str, str | None, str], Any]
"""``(boto3 service name, role ARN or None, run id) -> client``."""


def run(params: Mapping[str, Any], ctx: StepContext, client: Clients) -> Any:
    """Call ``{service, action, parameters}`` (as ``role`` when given) with ``client``; return
    the response as Step Functions gives it (ResponseMetadata left out)."""
    integration = str(params.get("integration") or "sdk")
    service, model = api_of(str(params["service"]), str(params["action"]), integration)
    given = parameters_of(params, ctx)
    # An optimized EMR action is an EMR API call of another shape.
    optimized = integration == "optimized"
    wrapped = emr.call(str(params["service"]), str(params["action"])) if optimized else None
    if wrapped is not None:
        given = wrapped.request(given)
    if integration == "optimized":
        given = _as_text(given, model.input_shape)
    request = _request(given, model.input_shape)
    as_role = with_role(client, role_of(params, ctx))
    response = call(as_role, service, model, request, ctx, integration)
    metadata: Mapping[str, Any] = response.pop("ResponseMetadata", None) or {}
    result = _result(response, model.output_shape)
    if integration == "optimized" and service in WITH_METADATA:
        result |= _sdk_metadata(metadata)
    if wrapped is not None:
        return wrapped.response(result)
    return result


def role_of(params: Mapping[str, Any], ctx: StepContext) -> str | None:
    """The role the call runs as (a step's ``role``, a Task's ``Credentials``), if any."""
    role = params.get("role") or None
    if role is not None and not isinstance(role, str):
        raise ServiceCallFailed(
            TASK_FAILED,
            f"step '{ctx.step_id}': the role to call {params['service']} as is {role!r}, not an "
            "IAM role's ARN",
            retryable=False,
        )
    return role


def with_role(client: Clients, role: str | None) -> Clients:
    """``client`` making its clients call as ``role`` (when one is given)."""
    return lambda service, named, run_id: client(service, named or role, run_id)


def refused(ctx: StepContext, call: str, why: str) -> ServiceCallFailed:
    """A request the integration ``call`` cannot send (Step Functions would refuse it too): the
    task fails with ``why``, naming the step; retrying cannot help."""
    return ServiceCallFailed(TASK_FAILED, f"step '{ctx.step_id}': {call}: {why}", retryable=False)


def parameters_of(params: Mapping[str, Any], ctx: StepContext) -> dict[str, Any]:
    """The call's parameters: an object, or a failure that says so."""
    given = params.get("parameters") or {}
    if not isinstance(given, dict):
        raise ServiceCallFailed(
            TASK_FAILED,
            f"step '{ctx.step_id}': the parameters of {params['service']}:{params['action']} "
            f"must be an object, not {type(given).__name__}",
            retryable=False,
        )
    return given


def call(
    client: Clients,
    service: str,
    model: OperationModel,
    request: Mapping[str, Any],
    ctx: StepContext,
    integration: str = "sdk",
    named: str | None = None,
) -> dict[str, Any]:
    """One call of ``model`` (an operation of ``service``, boto3's name) with ``request`` in
    boto3's spelling; its response as boto3 gives it. A service's error is
    ``Service.CodeException`` (``named``: the service its errors are named after)."""
    try:
        method = getattr(client(service, None, ctx.run_id), xform_name(model.name))
    except RoleNotAssumed as exc:
        raise ServiceCallFailed(
            TASK_FAILED, f"step '{ctx.step_id}': {exc}", retryable=exc.retryable
        ) from None
    try:
        response: dict[str, Any] = method(**request)
    except ClientError as exc:
        error = exc.response.get("Error", {})
        meta = exc.response.get("ResponseMetadata", {})
        # A service that answers JSON for a query API's codes keeps its modeled code apart.
        code = str(error.get("QueryErrorCode") or error.get("Code") or "Unknown")
        name = error_name(named or service, code, integration)
        raise ServiceCallFailed(
            name,
            f"{error.get('Message') or code} (Service: {name.split('.')[0]}, Status Code: "
            f"{meta.get('HTTPStatusCode', 400)}, Request ID: {meta.get('RequestId', '')})",
        ) from None
    except ParamValidationError as exc:
        raise ServiceCallFailed(
            TASK_FAILED,
            f"step '{ctx.step_id}': {service}:{camel(model.name)} refused its parameters: "
            f"{exc.kwargs.get('report', exc)}",
            retryable=False,
        ) from None
    except BotoCoreError as exc:
        raise ServiceCallFailed(TASK_FAILED, f"{service}:{camel(model.name)}: {exc}") from None
    ctx.logger.info("aws step called %s:%s", service, model.name)
    return response


def _as_text(given: dict[str, Any], shape: Shape | None) -> dict[str, Any]:
    """An optimized integration writes a JSON value given for a string parameter as its JSON
    text (an SQS MessageBody, an SNS Message given as an object)."""
    if not isinstance(shape, StructureShape):
        return given
    members = {str(name).lower(): member for name, member in shape.members.items()}
    return {
        key: json.dumps(value, separators=(",", ":"))
        if not isinstance(value, str)
        and getattr(members.get(str(key).lower()), "type_name", "") == "string"
        else value
        for key, value in given.items()
    }


def _sdk_metadata(meta: Mapping[str, Any]) -> dict[str, Any]:
    """What an optimized integration's result carries besides the response (the Java SDK's
    metadata of the call): its HTTP status and headers, and its request id."""
    headers = {str(k): str(v) for k, v in (meta.get("HTTPHeaders") or {}).items()}
    return {
        "SdkHttpMetadata": {
            "AllHttpHeaders": {k: [v] for k, v in headers.items()},
            "HttpHeaders": headers,
            "HttpStatusCode": int(meta.get("HTTPStatusCode") or 200),
        },
        "SdkResponseMetadata": {"RequestId": str(meta.get("RequestId") or "")},
    }


def _request(value: Any, shape: Shape | None) -> Any:
    """Step Functions' spelling as the model's: member names matched case aside, a blob's
    string as its bytes."""
    if shape is None:
        return value
    if isinstance(shape, StructureShape) and isinstance(value, dict):
        members: dict[str, str] = {str(name).lower(): str(name) for name in shape.members}
        out = {}
        for key, item in value.items():
            name = members.get(str(key).lower(), str(key))
            out[name] = _request(item, shape.members.get(name))
        return out
    if isinstance(shape, ListShape) and isinstance(value, list):
        return [_request(item, shape.member) for item in value]
    if isinstance(shape, MapShape) and isinstance(value, dict):
        return {key: _request(item, shape.value) for key, item in value.items()}
    if shape.type_name == "blob" and isinstance(value, str):
        return value.encode()
    return value


def _result(value: Any, shape: Shape | None) -> Any:
    """The response in Step Functions' shape: structure members in PascalCase (a map's keys
    are data and stay), blobs as text (base64 when not UTF-8), timestamps in ISO 8601."""
    if isinstance(value, StreamingBody):
        value = value.read()
    if isinstance(value, bytes | bytearray):
        try:
            return bytes(value).decode()
        except UnicodeDecodeError:
            return base64.b64encode(value).decode()
    if isinstance(value, datetime):
        moment = value.astimezone(UTC) if value.tzinfo else value
        return moment.isoformat().replace("+00:00", "Z")
    if isinstance(value, dict):
        if isinstance(shape, StructureShape):
            return {
                key[:1].upper() + key[1:]: _result(item, shape.members.get(key))
                for key, item in value.items()
            }
        inner = shape.value if isinstance(shape, MapShape) else None
        return {key: _result(item, inner) for key, item in value.items()}
    if isinstance(value, list):
        member = shape.member if isinstance(shape, ListShape) else None
        return [_result(item, member) for item in value]
    return value
