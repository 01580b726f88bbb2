"""The handlers' Powertools Metrics: an invocation that added no metric publishes nothing and
warns of nothing (an app's own tests run the handlers, under a runner that resets warning
filters); one that added metrics publishes them as one EMF line."""

from __future__ import annotations

import json
import warnings
from typing import Any

import pytest

from stepwell.runtime.aws.metrics import EmfMetrics, metrics


def test_an_invocation_that_added_nothing_is_silent(capsys: pytest.CaptureFixture[str]) -> None:
    @metrics.log_metrics
    def handler(event: Any, context: Any) -> str:
        return "ok"

    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert handler({}, None) == "ok"
    assert capsys.readouterr().out == ""


def test_an_invocation_that_added_metrics_publishes_them(
    capsys: pytest.CaptureFixture[str],
) -> None:
    @metrics.log_metrics
    def handler(event: Any, context: Any) -> str:
        EmfMetrics().add("RunsStarted", "Count", 1)
        return "ok"

    assert handler({}, None) == "ok"
    (line,) = capsys.readouterr().out.splitlines()
    published = json.loads(line)
    assert published["RunsStarted"] == [1.0]
    assert published["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "Stepwell"
