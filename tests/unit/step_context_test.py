"""What a step function's ``ctx.logger`` writes carries its attempt, so a log query finds the
attempt's lines (CloudWatch Logs Insights filters on ``run_id``, ``step_id``, ``attempt``)."""

from __future__ import annotations

import json
import logging
from typing import Any

import pytest
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

from stepwell.runtime.step_context import LOGGER, StepContext, attempt_keys
from stepwell.steps import step_handler


def test_lines_logged_during_an_attempt_carry_its_keys(caplog: pytest.LogCaptureFixture) -> None:
    ctx = StepContext("run-1", "charge", "charge", 2, "run-1:charge:2")
    # (a handler of its own: a @step_handler module makes the logger keep its lines to itself)
    logger = logging.getLogger(LOGGER)
    propagates = logger.propagate
    logger.addHandler(caplog.handler)
    logger.propagate = False
    try:
        with caplog.at_level(logging.INFO, logger=LOGGER):
            with attempt_keys(ctx):
                ctx.logger.info("charging %s", "ada")
            ctx.logger.info("between attempts")
    finally:
        logger.removeHandler(caplog.handler)
        logger.propagate = propagates
    during, after = caplog.records
    assert (during.run_id, during.step_id, during.attempt) == ("run-1", "charge", 2)  # type: ignore[attr-defined]
    assert during.getMessage() == "charging ada"
    assert not hasattr(after, "run_id")


def test_a_step_function_s_lines_are_json_at_info_whatever_its_own_logging() -> None:
    """In a team's own function nothing configures logging (Lambda's root logger drops INFO):
    the step decorator gives ctx.logger a JSON handler of its own."""

    @step_handler
    def charge(order: dict[str, Any], ctx: StepContext) -> dict[str, Any]:
        return order

    logger = logging.getLogger(LOGGER)
    assert logger.getEffectiveLevel() <= logging.INFO and not logger.propagate
    (handler,) = [h for h in logger.handlers if isinstance(h.formatter, LambdaPowertoolsFormatter)]
    ctx = StepContext("run-1", "charge", "charge", 2, "run-1:charge:2")
    with attempt_keys(ctx):
        record = logger.makeRecord(LOGGER, logging.INFO, __file__, 1, "charging", (), None)
        for keep in logger.filters:
            keep.filter(record)
    line = json.loads(handler.format(record))
    assert (line["message"], line["run_id"], line["attempt"]) == ("charging", "run-1", 2)
    assert line["level"] == "INFO" and line["service"]
