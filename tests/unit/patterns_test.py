"""EventBridge pattern matching, operator by operator."""

from __future__ import annotations

import pytest

from stepwell.patterns import matches

EVENT = {
    "source": "shop",
    "detail-type": "order.placed",
    "detail": {"total": 120, "country": "FR", "tags": ["gift", "rush"], "note": None},
}


@pytest.mark.parametrize(
    ("pattern", "expected"),
    [
        ({"source": ["shop"]}, True),
        ({"source": ["bank"]}, False),
        ({"detail-type": [{"prefix": "order."}]}, True),
        ({"detail-type": [{"suffix": ".placed"}]}, True),
        ({"detail-type": [{"suffix": ".paid"}]}, False),
        ({"detail": {"country": [{"anything-but": ["US", "CA"]}]}}, True),
        ({"detail": {"country": [{"anything-but": "FR"}]}}, False),
        ({"detail": {"country": [{"anything-but": {"prefix": "F"}}]}}, False),
        ({"detail": {"total": [{"numeric": [">", 100, "<=", 200]}]}}, True),
        ({"detail": {"total": [{"numeric": ["<", 100]}]}}, False),
        ({"detail": {"missing": [{"exists": False}]}}, True),
        ({"detail": {"country": [{"exists": True}]}}, True),
        ({"detail": {"country": [{"exists": False}]}}, False),
        ({"detail-type": [{"wildcard": "order.*"}]}, True),
        ({"detail": {"country": [{"equals-ignore-case": "fr"}]}}, True),
        ({"detail": {"tags": ["rush"]}}, True),
        ({"detail": {"note": [None]}}, True),
        ({"$or": [{"source": ["bank"]}, {"detail": {"country": ["FR"]}}]}, True),
        ({"$or": [{"source": ["bank"]}, {"detail": {"country": ["US"]}}]}, False),
        ({"source": ["shop"], "detail": {"total": [{"numeric": [">", 500]}]}}, False),
    ],
)
def test_each_operator_matches_as_eventbridge_does(pattern: dict, expected: bool) -> None:
    assert matches(pattern, EVENT) is expected
