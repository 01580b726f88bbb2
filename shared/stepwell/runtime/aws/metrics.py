"""Metrics on AWS: CloudWatch embedded metric format through Powertools Metrics.

Powertools keeps one metric set per process, shared by every ``Metrics`` instance, so the data
points the orchestrator adds here are published by the ``@metrics.log_metrics`` decorator of
the function's handler (or by :meth:`EmfMetrics.flush` where no decorator runs, e.g. a
``@step_handler`` function). The namespace comes from ``POWERTOOLS_METRICS_NAMESPACE``.
"""

from __future__ import annotations

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import (
    AmazonCloudWatchEMFProvider,
)

NAMESPACE = "Stepwell"


class _QuietWhenEmpty(AmazonCloudWatchEMFProvider):
    """Publishes nothing, and warns of nothing, after an invocation that added no metric: one
    that changed no run (a sweep with nothing due) is not a problem. (A filter on the warning
    would not do: a test runner resets filters, and an app's tests would warn of it.)"""

    def flush_metrics(self, raise_on_empty_metrics: bool = False) -> None:
        if self.metric_set or raise_on_empty_metrics:
            super().flush_metrics(raise_on_empty_metrics=raise_on_empty_metrics)


metrics = Metrics(namespace=NAMESPACE)
"""The process's Powertools Metrics: handlers decorate with ``@metrics.log_metrics``."""
metrics.provider = _QuietWhenEmpty(
    namespace=NAMESPACE,
    metric_set=metrics.metric_set,
    dimension_set=metrics.dimension_set,
    metadata_set=metrics.metadata_set,
    default_dimensions=metrics.default_dimensions,
)


class EmfMetrics:
    """Implements the Metrics port with Powertools Metrics (one EMF log line per flush)."""

    def __init__(self, target: Metrics = metrics) -> None:
        self._metrics = target

    def add(self, name: str, unit: str, value: float) -> None:
        """Add a data point to the invocation's metric set."""
        self._metrics.add_metric(name=name, unit=MetricUnit(unit), value=value)

    def flush(self) -> None:
        """Publish the metric set now (no-op when nothing was added)."""
        self._metrics.flush_metrics()
