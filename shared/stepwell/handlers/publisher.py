"""Publisher: CloudFormation's requests for Custom::StepwellWorkflow resources in apps' stacks
(publish a workflow, publish its new version, retire it)."""

from __future__ import annotations

from typing import Any

import boto3
from aws_lambda_powertools import Logger, Tracer

from stepwell.runtime import custom_resource
from stepwell.runtime.aws import stacks
from stepwell.runtime.wiring import current

logger = Logger()
tracer = Tracer()


@logger.inject_lambda_context(correlation_id_path="RequestId")
@tracer.capture_lambda_handler
def handler(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """One CloudFormation request; the answer goes to its ResponseURL, whatever happens."""
    try:
        lambda_client = boto3.client("lambda")
        cloudformation = boto3.client("cloudformation")
        outcome = custom_resource.handle(
            event,
            current().workflows,
            lambda function, request: stacks.describe(lambda_client, function, request),
            lambda stack_id: stacks.stack_functions(cloudformation, stack_id),
        )
    except Exception as exc:  # CloudFormation waits an hour for an answer that never comes
        logger.exception("publication failed")
        outcome = custom_resource.Outcome(
            False,
            str(event.get("PhysicalResourceId") or custom_resource.PHYSICAL_PREFIX),
            f"the publisher failed: {type(exc).__name__}: {exc}",
        )
    logger.info(
        "publication",
        extra={"ok": outcome.ok, "physical_id": outcome.physical_id, "reason": outcome.reason},
    )
    custom_resource.send(str(event["ResponseURL"]), custom_resource.response_body(event, outcome))
    return {"ok": outcome.ok, "physical_id": outcome.physical_id, "reason": outcome.reason}
