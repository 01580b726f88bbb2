"""Stepwell: durable workflows on AWS Lambda, DynamoDB and EventBridge."""

from stepwell.definition.models import Workflow

__all__ = ["Workflow"]
__version__ = "0.1.0"
