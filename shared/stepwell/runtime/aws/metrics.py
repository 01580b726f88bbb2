"""Metrics on AWS: CloudWatch embedded metric format through Powertools Metrics.

Powertools keeps one metric set per process, shared by every ``Metrics`` instance, so the data
points the orchestrator adds here are published by the ``@metrics.log_metrics`` decorator of
the function's handler (or by :meth:`EmfMetrics.flush` where no decorator runs, e.g. a
``@step_handler`` function). The namespace comes from ``POWERTOOLS_METRICS_NAMESPACE``.
"""

from __future__ import annotations

import warnings

from aws_lambda_powertools import Metrics
from aws_lambda_powertools.metrics import MetricUnit

NAMESPACE = "Stepwell"

# An invocation that changed no run (a sweep with nothing due) has no metrics: not a problem.
warnings.filterwarnings("ignore", "No application metrics to publish", UserWarning)

metrics = Metrics(namespace=NAMESPACE)
"""The process's Powertools Metrics: handlers decorate with ``@metrics.log_metrics``."""


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
