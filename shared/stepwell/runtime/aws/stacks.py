"""What the publisher reads of AWS for a Custom::StepwellWorkflow: the functions of the app's
stack, and the description its workflows function gives of a file."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

FUNCTION_TYPES = frozenset({"AWS::Lambda::Function"})


def stack_functions(cloudformation: Any, stack_id: str) -> dict[str, str]:
    """Every Lambda function of a stack, by logical id and by name -> its ARN (a step names its
    function by either)."""
    region, account = _region_account(stack_id)
    partition = stack_id.split(":")[1] if stack_id.startswith("arn:") else "aws"
    found: dict[str, str] = {}
    paginator = cloudformation.get_paginator("list_stack_resources")
    for page in paginator.paginate(StackName=stack_id):
        for resource in page.get("StackResourceSummaries", []):
            if resource.get("ResourceType") not in FUNCTION_TYPES:
                continue
            name = resource.get("PhysicalResourceId")
            if not name:
                continue
            arn = f"arn:{partition}:lambda:{region}:{account}:function:{name}"
            found[resource["LogicalResourceId"]] = arn
            found.setdefault(name, arn)
    return found


def describe(lambda_client: Any, function: str, request: Mapping[str, Any]) -> Any:
    """Ask ``function`` (a workflows function) for a description, synchronously."""
    response = lambda_client.invoke(
        FunctionName=function, InvocationType="RequestResponse", Payload=json.dumps(request)
    )
    return json.loads(response["Payload"].read() or b"null")


def _region_account(stack_id: str) -> tuple[str, str]:
    parts = stack_id.split(":")
    if len(parts) >= 5 and parts[0] == "arn":
        return parts[3], parts[4]
    raise ValueError(f"{stack_id!r} is not a stack ARN")
