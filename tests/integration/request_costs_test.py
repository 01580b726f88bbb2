"""``benchmarks/request_costs.py``: a W1 step's three requests and the floor's step, sent bare on
any table with Stepwell's keys (W1 in ``make bench`` sends them on its own stack's table)."""

from __future__ import annotations

from typing import Any

from conftest import TABLE

import request_costs


def test_the_requests_are_sent_on_items_of_their_own_and_each_succeeds(dynamodb: Any) -> None:
    figures = request_costs.measure(dynamodb, TABLE, "w1", count=3)
    for name in ("floor step (2 requests)", "W1 step started", "W1 step's result"):
        assert figures[name] > 0
    assert figures["W1 step (3 requests)"] == round(
        figures["W1 step started"] + figures["W1 step's result"] + figures["W1 step's read"], 3
    )
    # Each step was started once and ended on its revision (a failed condition would raise).
    step = dynamodb.get_item(TableName=TABLE, Key=request_costs._step_key("w1", 2))["Item"]
    assert step["status"] == {"S": "succeeded"} and step["rev"] == {"N": "2"}
    assert len(step["tl"]["L"]) == 2
    floor = {"pk": {"S": "FLOOR#w1"}, "sk": {"S": "STEP#00002"}}
    assert dynamodb.get_item(TableName=TABLE, Key=floor)["Item"]["status"] == {"S": "succeeded"}
