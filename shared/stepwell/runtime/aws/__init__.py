"""AWS adapters of the runtime ports: one module per service, each holding only the calls."""

from stepwell.runtime.aws.bus import EventBridgeBus, EventPublishError
from stepwell.runtime.aws.lambda_invoker import FunctionResolver, LambdaDispatchError, LambdaInvoker
from stepwell.runtime.aws.payloads import S3PayloadStore
from stepwell.runtime.aws.secrets import SecretsReader, signing_keys
from stepwell.runtime.aws.timers import AwsTimers

__all__ = [
    "AwsTimers",
    "EventBridgeBus",
    "EventPublishError",
    "FunctionResolver",
    "LambdaDispatchError",
    "LambdaInvoker",
    "S3PayloadStore",
    "SecretsReader",
    "signing_keys",
]
