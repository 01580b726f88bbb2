"""Stepwell: durable workflows on AWS Lambda, DynamoDB and EventBridge."""

from stepwell.code.context import Context
from stepwell.code.errors import StepFailed
from stepwell.code.workflow import workflow
from stepwell.definition.models import Workflow

__all__ = ["Context", "StepFailed", "Workflow", "workflow"]
__version__ = "0.1.0"
