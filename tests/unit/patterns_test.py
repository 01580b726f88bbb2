"""EventBridge pattern matching, operator by operator, and the patterns PutRule refuses."""

from __future__ import annotations

import pytest

from stepwell.patterns import InvalidPattern, check, matches

EVENT = {
    "source": "shop",
    "detail-type": "order.placed",
    "detail": {
        "total": 120,
        "country": "FR",
        "tags": ["gift", "rush"],
        "note": None,
        "ip": "10.0.3.7",
    },
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
        ({"detail": {"ip": [{"cidr": "10.0.0.0/16"}]}}, True),
        ({"detail": {"ip": [{"cidr": "10.1.0.0/16"}]}}, False),
        ({"detail": {"country": [{"cidr": "10.0.0.0/8"}]}}, False),  # not an address
        ({"detail": {"country": [{"anything-but": {"equals-ignore-case": ["fr", "us"]}}]}}, False),
        ({"detail": {"country": [{"anything-but": {"wildcard": "U*"}}]}}, True),
    ],
)
def test_each_operator_matches_as_eventbridge_does(pattern: dict, expected: bool) -> None:
    assert matches(pattern, EVENT) is expected


VALID = [
    {"source": ["shop"]},
    {"detail": {"country": [{"anything-but": {"prefix": "U"}}], "total": [{"numeric": [">", 1]}]}},
    {"detail": {"total": [{"numeric": [">=", 0, "<", 5]}, {"numeric": ["=", 9]}]}},
    {"detail-type": [{"prefix": {"equals-ignore-case": "order."}}, {"suffix": ".x"}, None, 3]},
    {"detail": {"ip": [{"cidr": "10.0.0.0/24"}], "note": [{"exists": False}]}},
    {"$or": [{"source": ["a"]}, {"detail": {"n": [{"wildcard": "a*"}]}}]},
]


@pytest.mark.parametrize("pattern", VALID)
def test_the_patterns_eventbridge_takes_pass_the_check(pattern: dict) -> None:
    check(pattern)


@pytest.mark.parametrize(
    ("pattern", "reason"),
    [
        (["shop"], "Filter is not an object"),
        ({"source": "shop"}, '"source" must be an object or an array'),
        ({"source": []}, "Empty arrays are not allowed (at source)"),
        ({"detail": {}}, "Empty objects are not allowed (at detail)"),
        ({"source": [["a"]]}, "Match value must be String, number, true, false, or null"),
        ({"source": [{"prefix": "a", "suffix": "b"}]}, "Only one key allowed"),
        ({"source": [{"prefixx": "a"}]}, "Unrecognized match type prefixx (at source)"),
        ({"source": [{"prefix": 1}]}, "prefix match pattern must be a string"),
        ({"detail": {"n": [{"numeric": [">", "1"]}]}}, "Value of > must be numeric (at detail.n)"),
        ({"detail": {"n": [{"numeric": ["<", 1, ">", 0]}]}}, "A numeric range is > or >="),
        ({"detail": {"n": [{"numeric": ["!=", 1]}]}}, "Unrecognized numeric range operator: !="),
        ({"detail": {"n": [{"exists": "yes"}]}}, "exists match pattern must be either true"),
        ({"detail": {"n": [{"anything-but": ["a", 1]}]}}, "not mixed"),
        ({"detail": {"n": [{"anything-but": {"numeric": [">", 1]}}]}}, "Unsupported anything-but"),
        ({"detail": {"ip": [{"cidr": "10.0.0.0/99"}]}}, "Malformed CIDR"),
        ({"$or": [{"source": ["a"]}]}, "at least 2 objects"),
        ({"$or": [{"source": ["a"]}, "b"]}, "Only JSON objects are allowed in $or"),
    ],
)
def test_patterns_eventbridge_refuses_fail_the_check_with_its_reason(
    pattern: object, reason: str
) -> None:
    with pytest.raises(InvalidPattern) as refused:
        check(pattern)
    assert reason in str(refused.value)
