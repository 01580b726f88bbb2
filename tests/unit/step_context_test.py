"""What a step function's ``ctx.logger`` writes carries its attempt, so a log query finds the
attempt's lines (CloudWatch Logs Insights filters on ``run_id``, ``step_id``, ``attempt``)."""

from __future__ import annotations

import logging

import pytest

from stepwell.runtime.step_context import LOGGER, StepContext, attempt_keys


def test_lines_logged_during_an_attempt_carry_its_keys(caplog: pytest.LogCaptureFixture) -> None:
    ctx = StepContext("run-1", "charge", "charge", 2, "run-1:charge:2")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        with attempt_keys(ctx):
            ctx.logger.info("charging %s", "ada")
        ctx.logger.info("between attempts")
    during, after = caplog.records
    assert (during.run_id, during.step_id, during.attempt) == ("run-1", "charge", 2)  # type: ignore[attr-defined]
    assert during.getMessage() == "charging ada"
    assert not hasattr(after, "run_id")
