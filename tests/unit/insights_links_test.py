"""A deployed stack links a step attempt to its Logs Insights query over the engine's log group
and the run's own functions' groups (a team's step functions log to their own)."""

from __future__ import annotations

from datetime import UTC, datetime
from urllib.parse import unquote

from stepwell.runtime.aws.logs import GROUPS, InsightsLinks, function_name

ARN = "arn:aws:lambda:eu-west-1:123456789012:function:shop-ChargeCard-1A2B"


def _state(link: str) -> str:
    return unquote(link.split("#", 1)[1].replace("$", "%").replace("*", "%"))


def test_a_function_s_name_comes_from_its_arn_of_a_version_too() -> None:
    assert function_name(ARN) == "shop-ChargeCard-1A2B"
    assert function_name(ARN + ":7") == "shop-ChargeCard-1A2B"
    assert function_name("shop-Runner") == "shop-Runner"


def test_the_query_reads_the_engine_s_group_and_each_function_s_once() -> None:
    links = InsightsLinks("eu-west-1", "/aws/lambda/stepwell")
    start = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)
    found = links.attempt("r1", "charge", 2, start, None, [ARN, ARN + ":3", "shop-Runner"])
    state = _state(found.link or "")
    assert (
        "source~(~'/aws/lambda/stepwell~'/aws/lambda/shop-ChargeCard-1A2B~'/aws/lambda/shop-Runner)"
        in state
    )
    assert "2 function(s)" in found.where


def test_no_more_groups_than_one_query_reads() -> None:
    links = InsightsLinks("eu-west-1", "/aws/lambda/stepwell")
    many = [f"fn-{n}" for n in range(80)]
    state = _state(links.attempt("r1", "s", 1, None, None, many).link or "")
    assert state.count("~'/aws/lambda/") == GROUPS
