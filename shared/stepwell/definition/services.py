"""The AWS APIs an aws step calls, named as Step Functions' AWS SDK integrations name them
(``arn:aws:states:::aws-sdk:SERVICE:ACTION``), read from the API models botocore ships.

Step Functions names a service as its SDK's module does (``sfn``, ``eventbridge``,
``cloudwatchlogs``) or as boto3 does without dashes (``acmpca``), and its action in camelCase
(``listObjectsV2``). A service's error is ``Service.CodeException`` (``S3.NoSuchKeyException``,
``DynamoDb.ConditionalCheckFailedException``: the service in PascalCase, and ``Exception``
added to a code without it).
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Mapping
from functools import cache
from typing import Any, ClassVar

from botocore.model import OperationModel, ServiceModel

from stepwell.definition import emr

ALIASES = {
    "sfn": "stepfunctions",
    "eventbridge": "events",
    "cloudwatchevents": "events",
    "cloudwatchlogs": "logs",
    "elasticloadbalancingv2": "elbv2",
    "elasticloadbalancing": "elb",
    "costexplorer": "ce",
    "databasemigration": "dms",
    "cognitoidentityprovider": "cognito-idp",
    "configservice": "config",
    "directoryservice": "ds",
    "elasticsearch": "es",
    "marketplacemetering": "meteringmarketplace",
    "migrationhub": "mgh",
    "lexmodelsv2": "lexv2-models",
    "lexruntimev2": "lexv2-runtime",
    "lexmodelbuilding": "lex-models",
    "iotdataplane": "iot-data",
    "iotjobsdataplane": "iot-jobs-data",
    "timestreamquery": "timestream-query",
    "timestreamwrite": "timestream-write",
    "elasticmapreduce": "emr",
}
"""Step Functions' service names that are not boto3's with its dashes removed (``acmpca`` is
``acm-pca``, ``bedrockruntime`` is ``bedrock-runtime``)."""


class UnknownCall(ValueError):
    """The step names a service boto3 does not know, or an action its service has not."""

    retryable: ClassVar[bool] = False


@cache
def _services() -> dict[str, str]:
    import boto3

    known = boto3.session.Session().get_available_services()
    return {name.replace("-", ""): name for name in known} | {
        alias: name for alias, name in ALIASES.items() if name in known
    }


def service_name(service: str) -> str:
    """boto3's name of a service as Step Functions or boto3 spells it; UnknownCall names the
    closest when there is none."""
    found = _services().get(service.lower().replace("-", ""))
    if found is None:
        close = difflib.get_close_matches(service.lower(), list(_services()), n=1)
        hint = f": did you mean {close[0]!r}?" if close else ""
        raise UnknownCall(f"{service!r} is not an AWS service boto3 knows{hint}")
    return found


@cache
def service_model(service: str) -> ServiceModel:
    """The API model of a service (boto3's name), as botocore ships it."""
    import botocore.session

    return botocore.session.get_session().get_service_model(service)


def operation(service: str, action: str) -> OperationModel:
    """The operation an action names (``listObjectsV2``, ``ListObjectsV2``: case aside)."""
    model = service_model(service)
    by_lower = {name.lower(): name for name in model.operation_names}
    name = by_lower.get(action.lower())
    if name is None:
        close = difflib.get_close_matches(action.lower(), list(by_lower), n=1)
        hint = f": did you mean {camel(by_lower[close[0]])!r}?" if close else ""
        raise UnknownCall(f"{service} has no action {action!r}{hint}")
    return model.operation_model(name)


OPTIMIZED = {
    "dynamodb": ("DynamoDB", ("getItem", "putItem", "updateItem", "deleteItem")),
    "sns": ("SNS", ("publish",)),
    "sqs": ("SQS", ("sendMessage",)),
    "athena": (
        "",
        ("startQueryExecution", "stopQueryExecution", "getQueryExecution", "getQueryResults"),
    ),
    "batch": ("", ("submitJob",)),
    "glue": ("", ("startJobRun",)),
    "ecs": ("", ("runTask",)),
    "codebuild": ("", ("startBuild", "stopBuild", "batchDeleteBuilds", "batchGetReports")),
    "mediaconvert": ("", ("createJob",)),
    "bedrock": ("", ("createModelCustomizationJob", "invokeModel")),
    "http": ("", ("invoke",)),
    "apigateway": ("", ("invoke",)),
    "elasticmapreduce": ("", tuple(emr.CALLS)),
    "sagemaker": (
        "",
        (
            "createEndpoint",
            "createEndpointConfig",
            "createHyperParameterTuningJob",
            "createLabelingJob",
            "createModel",
            "createProcessingJob",
            "createTrainingJob",
            "createTransformJob",
            "updateEndpoint",
        ),
    ),
    "databrew": ("", ("startJobRun",)),
    "emr-serverless": (
        "",
        (
            "createApplication",
            "startApplication",
            "stopApplication",
            "deleteApplication",
            "startJobRun",
            "cancelJobRun",
        ),
    ),
}
"""Step Functions' optimized integrations that are one call of the service's API
(``arn:aws:states:::sns:publish``), by service: the name their errors start with where it is
not the service's own (``DynamoDB.``, where the AWS SDK integration's is ``DynamoDb.``) and
their request-response actions (a ``.sync`` one waits for the job it starts). The HTTP Task,
``http:invoke``, and ``apigateway:invoke`` call no AWS API (:data:`NO_API`)."""
WITH_METADATA = frozenset({"dynamodb", "sns", "sqs"})
"""Optimized integrations whose result carries the call's ``SdkHttpMetadata`` and
``SdkResponseMetadata`` besides the response."""
TOKENLESS = frozenset({"dynamodb"})
"""Optimized integrations Step Functions refuses ``.waitForTaskToken`` on."""


def optimized(service: str, action: str) -> bool:
    """Whether ``arn:aws:states:::SERVICE:ACTION`` is an optimized integration that runs."""
    return action in OPTIMIZED.get(service, ("", ()))[1]


def parameter_names(service: str, action: str, integration: str = "sdk") -> list[str]:
    """The action's parameters, in PascalCase as Step Functions writes them (UnknownCall: no
    such call)."""
    if integration == "optimized" and (service.lower(), action.lower()) in NO_API:
        return list(NO_API[(service.lower(), action.lower())])
    wrapped = emr.call(service, action) if integration == "optimized" else None
    if wrapped is not None and wrapped.parameters is not None:
        return list(wrapped.parameters)
    shape = api_of(service, action, integration)[1].input_shape
    names = [m[:1].upper() + m[1:] for m in shape.members] if shape is not None else []
    if integration == "optimized":
        names += OWN_PARAMETERS.get((service.lower(), action.lower()), ())
    return names


def unknown_parameters(
    service: str, action: str, parameters: Mapping[str, Any], integration: str = "sdk"
) -> list[str]:
    """The top-level parameter names the action does not take (a ``.$`` name is its path's)."""
    members = {m.lower() for m in parameter_names(service, action, integration)}
    names = [key.removesuffix(".$") for key in parameters]
    return [name for name in names if name.lower() not in members]


def error_prefix(service: str) -> str:
    """A service's name in its errors, as Step Functions writes it: its model's ``serviceId``
    in PascalCase, an initialism as a word (``ACM PCA`` -> ``AcmPca``, ``DynamoDB`` ->
    ``DynamoDb``, ``SFN`` -> ``Sfn``, ``S3`` -> ``S3``)."""
    service_id = service_model(service).metadata.get("serviceId") or service
    words = re.findall(r"[A-Z]+(?![a-z])|[A-Z]?[a-z]+|\d+", service_id)
    return "".join(word[:1].upper() + word[1:].lower() for word in words)


def error_name(service: str, code: str, integration: str = "sdk") -> str:
    """``Service.CodeException``: Step Functions adds ``Exception`` to a code without it (an
    optimized integration's service is named as its own table says)."""
    suffix = "" if code.endswith("Exception") else "Exception"
    prefix = error_prefix(service)
    if integration == "optimized" and OPTIMIZED.get(service, ("",))[0]:
        prefix = OPTIMIZED[service][0]
    return f"{prefix}.{code}{suffix}"


def camel(operation_name: str) -> str:
    """An operation's name as Step Functions spells its action (``ListObjectsV2`` ->
    ``listObjectsV2``)."""
    return operation_name[:1].lower() + operation_name[1:]


ELSEWHERE = {("bedrock", "invokemodel"): "bedrock-runtime"}
"""Optimized integrations whose action is another service's API: Step Functions'
``bedrock:invokeModel`` is Bedrock Runtime's ``InvokeModel``."""
OWN_PARAMETERS = {("bedrock", "invokemodel"): ("Input", "Output")}
"""Parameters an optimized integration takes besides its API's: ``bedrock:invokeModel`` reads
its body from S3 (``Input.S3Uri``) and writes the model's answer there (``Output.S3Uri``)."""


def api_of(service: str, action: str, integration: str = "sdk") -> tuple[str, OperationModel]:
    """boto3's service and the API operation that a call names (Step Functions' spelling)."""
    if integration == "optimized":
        elsewhere = ELSEWHERE.get((service.lower(), action.lower()))
        if elsewhere is not None:
            return elsewhere, operation(elsewhere, action)
        if (wrapped := emr.call(service, action)) is not None:
            return "emr", operation("emr", wrapped.operation)
    boto3_name = service_name(service)
    return boto3_name, operation(boto3_name, action)


NO_API = {
    ("http", "invoke"): (
        "ApiEndpoint",
        "Method",
        "Authentication",
        "InvocationConfig",
        "Headers",
        "QueryParameters",
        "RequestBody",
        "Transform",
    ),
    ("apigateway", "invoke"): (
        "ApiEndpoint",
        "Method",
        "Stage",
        "Path",
        "Headers",
        "QueryParameters",
        "RequestBody",
        "AuthType",
        "AllowNullValues",
    ),
}
"""Optimized integrations that call no AWS API, with their parameters: Step Functions' HTTP
Task and its call of an API Gateway endpoint."""
