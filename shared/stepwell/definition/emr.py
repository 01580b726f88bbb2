"""Step Functions' optimized EMR integration, ``arn:aws:states:::elasticmapreduce:ACTION``: its
actions are EMR API calls under other names, with requests and responses of their own shape
(``createCluster`` is ``RunJobFlow`` answering ``{"ClusterId"}``; ``addStep`` is
``AddJobFlowSteps`` of one ``Step``, answering ``{"StepId"}``).

Requests and responses are spelled as Stepwell's aws steps spell them (PascalCase).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

SERVICE = "elasticmapreduce"
Shape = Callable[[Mapping[str, Any]], dict[str, Any]]


def _first(value: Any) -> Any:
    return value[0] if isinstance(value, list) and value else None


@dataclass(frozen=True)
class Call:
    """One action: the EMR API ``operation`` it makes, the ``parameters`` it takes (None: the
    operation's own), and how its ``request`` and ``response`` become the operation's."""

    operation: str
    parameters: tuple[str, ...] | None
    request: Shape
    response: Shape


CALLS: dict[str, Call] = {
    "createCluster": Call(
        "RunJobFlow",
        None,
        dict,
        lambda answer: {"ClusterId": answer.get("JobFlowId")},
    ),
    "terminateCluster": Call(
        "TerminateJobFlows",
        ("ClusterId",),
        lambda given: {"JobFlowIds": [given.get("ClusterId")]},
        lambda answer: {},
    ),
    "addStep": Call(
        "AddJobFlowSteps",
        ("ClusterId", "Step"),
        lambda given: {"JobFlowId": given.get("ClusterId"), "Steps": [given.get("Step")]},
        lambda answer: {"StepId": _first(answer.get("StepIds"))},
    ),
    "cancelStep": Call(
        "CancelSteps",
        ("ClusterId", "StepId", "StepCancellationOption"),
        lambda given: {
            "ClusterId": given.get("ClusterId"),
            "StepIds": [given.get("StepId")],
            **{k: v for k, v in given.items() if k == "StepCancellationOption"},
        },
        lambda answer: {"CancelStepsInfo": _first(answer.get("CancelStepsInfoList"))},
    ),
    "setClusterTerminationProtection": Call(
        "SetTerminationProtection",
        ("ClusterId", "TerminationProtected"),
        lambda given: {
            "JobFlowIds": [given.get("ClusterId")],
            "TerminationProtected": given.get("TerminationProtected"),
        },
        lambda answer: {},
    ),
}
"""The actions Stepwell runs, by Step Functions' name."""


def call(service: str, action: str) -> Call | None:
    """The EMR call an optimized ``service:action`` is (None: it is not one)."""
    if service.lower() != SERVICE:
        return None
    return next((c for name, c in CALLS.items() if name.lower() == action.lower()), None)
