"""Stepwell: durable workflows on AWS Lambda, DynamoDB and EventBridge."""

from stepwell.code.batch import BatchResult, Outcome
from stepwell.code.callbacks import Callback
from stepwell.code.context import Context
from stepwell.code.errors import MapFailed, ParallelFailed, RunCancelled, StepFailed
from stepwell.code.saga import Saga
from stepwell.code.workflow import workflow
from stepwell.definition.models import Workflow

__all__ = [
    "BatchResult",
    "Callback",
    "Context",
    "MapFailed",
    "Outcome",
    "ParallelFailed",
    "RunCancelled",
    "Saga",
    "StepFailed",
    "Workflow",
    "workflow",
]
__version__ = "0.1.0"
