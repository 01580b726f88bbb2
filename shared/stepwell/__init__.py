"""Stepwell: durable workflows on AWS Lambda, DynamoDB and EventBridge."""

from stepwell.code.batch import BatchResult, Outcome
from stepwell.code.callbacks import Callback
from stepwell.code.context import Context
from stepwell.code.errors import MapFailed, ParallelFailed, RunCancelled, StepFailed
from stepwell.code.saga import Saga
from stepwell.code.workflow import workflow
from stepwell.definition.models import Workflow
from stepwell.runtime.step_context import StepContext
from stepwell.steps import step_handler

__all__ = [
    "BatchResult",
    "Callback",
    "Context",
    "MapFailed",
    "Outcome",
    "ParallelFailed",
    "RunCancelled",
    "Saga",
    "StepContext",
    "StepFailed",
    "Workflow",
    "step_handler",
    "workflow",
]


__version__ = "0.2.0"
"""The package's version (pyproject.toml reads it; the engine template's SemanticVersion
matches it)."""
