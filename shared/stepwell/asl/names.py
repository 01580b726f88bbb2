"""How a machine's names meet Stepwell's: a Step Functions machine's name as a workflow name,
and the ARNs of Lambda functions and service integrations in any partition and account."""

from __future__ import annotations

import re
from typing import Any

_WORD_START = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")


def workflow_name(machine: str) -> str:
    """A Step Functions machine's name (letters, digits, ``-`` and ``_``) as a workflow name,
    which is spelled the same in URLs, DynamoDB keys, EventBridge rules and the CLI: lower
    case, words split at ``_`` and at capitals (``Order_Machine``, ``OrderMachine`` ->
    ``order-machine``). A name already a workflow name is itself."""
    spaced = _WORD_START.sub("-", machine)
    return re.sub(r"[^a-z0-9]+", "-", spaced.lower()).strip("-")


_PLACE = r"(?:[a-z0-9-]+|\$\{[^}]*\})"
_PARTITION = re.compile(
    rf"^arn:(?:aws[a-z-]*|\$\{{[^}}]*\}}):states:{_PLACE}?:{_PLACE}?:"
    r"(?!(?:stateMachine|activity|execution|express|mapRun):)"
)
"""An integration's ARN in any partition, with or without a region and account (Step Functions
takes ``arn:aws:states:us-east-1:111122223333:aws-sdk:s3:getObject`` as the integration)."""
INTEGRATIONS = "arn:aws:states:::"
"""Where Step Functions' service integrations are, in the ``aws`` partition."""


def resource(state: dict[str, Any]) -> str:
    """A Task's ``Resource``, a service integration's ARN in any partition (``aws-cn``,
    ``aws-us-gov``, a template's placeholder such as ``${AWS::Partition}``), region and account
    spelled as in ``aws`` without them: the integration is the same wherever it runs."""
    return _PARTITION.sub(INTEGRATIONS, str(state.get("Resource") or ""))
