"""EventBridge rules locally: the rule API (PutRule, PutTargets ...) with its shapes and
errors."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from stepwell.local.rules import Rule, RuleError, Rules

TRANSFORMER = {
    "InputPathsMap": {},
    "InputTemplate": '{"workflow": "order-fulfilment", "event": <aws.events.event>}',
}
FUNCTION = "arn:aws:lambda:us-east-1:123456789012:function:trigger"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
SHOP = {"source": ["shop"], "detail-type": ["order.placed"]}


def rules() -> tuple[Rules, list[tuple[str, bool]]]:
    changes: list[tuple[str, bool]] = []
    found = Rules(
        {"shop": "arn:aws:events:us-east-1:123456789012:event-bus/shop"},
        account="123456789012",
        region="us-east-1",
        delivers_to=lambda arn: arn == FUNCTION,
    )
    found.on_change = lambda rule, gone: changes.append((rule.name, gone))
    return found, changes


def refused(call: Any, code: str, words: str | None = None) -> RuleError:
    with pytest.raises(RuleError, match=words) as caught:
        call()
    assert caught.value.code == code
    return caught.value


def test_put_rule_makes_a_rule_and_describe_shows_it() -> None:
    found, changes = rules()
    pattern = json.dumps(SHOP)
    answer = found.put_rule(
        {"Name": "wf-order", "EventBusName": "shop", "EventPattern": pattern, "Description": "d"},
        NOW,
    )
    assert answer == {"RuleArn": "arn:aws:events:us-east-1:123456789012:rule/shop/wf-order"}
    assert found.describe_rule({"Name": "wf-order", "EventBusName": "shop"}) == {
        "Name": "wf-order",
        "Arn": "arn:aws:events:us-east-1:123456789012:rule/shop/wf-order",
        "EventPattern": pattern,
        "State": "ENABLED",
        "Description": "d",
        "EventBusName": "shop",
        "CreatedBy": "123456789012",
    }
    on_default = found.put_rule({"Name": "tick", "ScheduleExpression": "rate(5 minutes)"}, NOW)
    assert on_default["RuleArn"] == "arn:aws:events:us-east-1:123456789012:rule/tick"
    assert changes == [("wf-order", False), ("tick", False)]


def test_put_rule_again_changes_the_rule_and_keeps_its_targets() -> None:
    found, _ = rules()
    found.put_rule({"Name": "r", "EventBusName": "shop", "EventPattern": json.dumps(SHOP)}, NOW)
    found.put_targets(
        {"Rule": "r", "EventBusName": "shop", "Targets": [{"Id": "t", "Arn": FUNCTION}]}
    )
    found.put_rule(
        {"Name": "r", "EventBusName": "shop", "EventPattern": '{"source": ["bank"]}'}, NOW
    )
    rule = found.find("shop", "r")
    assert rule is not None and rule.pattern == {"source": ["bank"]}
    assert [t.id for t in rule.targets] == ["t"]


@pytest.mark.parametrize(
    ("request_", "code", "words"),
    [
        ({"Name": "r"}, "ValidationException", "EventPattern or ScheduleExpression"),
        ({"Name": "r", "EventPattern": "{source"}, "InvalidEventPatternException", "not JSON"),
        (
            {"Name": "r", "EventPattern": '{"source": "shop"}'},
            "InvalidEventPatternException",
            'Event pattern is not valid. Reason: "source" must be an object or an array',
        ),
        (
            {"Name": "r", "EventPattern": '{"detail": {"n": [{"numeric": [">", "x"]}]}}'},
            "InvalidEventPatternException",
            r"Value of > must be numeric \(at detail.n\)",
        ),
        (
            {"Name": "r", "EventBusName": "shop", "ScheduleExpression": "rate(1 minute)"},
            "ValidationException",
            "only on the default event bus",
        ),
        (
            {"Name": "r", "ScheduleExpression": "rate(1 minutes)"},
            "ValidationException",
            "Parameter ScheduleExpression is not valid",
        ),
        (
            {"Name": "r", "ScheduleExpression": "at(2026-01-01T00:00:00)"},
            "ValidationException",
            "rules take rate\\(\\) or cron\\(\\)",
        ),
        (
            {"Name": "r", "EventBusName": "nope", "EventPattern": "{}"},
            "ResourceNotFoundException",
            "Event bus nope does not exist.",
        ),
    ],
)
def test_put_rule_refuses_what_eventbridge_refuses(
    request_: dict[str, Any], code: str, words: str
) -> None:
    found, changes = rules()
    refused(lambda: found.put_rule(request_, NOW), code, words)
    assert found.all() == [] and changes == []


def test_targets_are_put_replaced_listed_and_removed() -> None:
    found, _ = rules()
    found.put_rule({"Name": "r", "EventBusName": "shop", "EventPattern": json.dumps(SHOP)}, NOW)
    where = {"Rule": "r", "EventBusName": "arn:aws:events:us-east-1:123456789012:event-bus/shop"}
    targets = [{"Id": f"t{i}", "Arn": FUNCTION, "Input": json.dumps({"i": i})} for i in range(3)]
    assert found.put_targets({**where, "Targets": targets}) == {
        "FailedEntryCount": 0,
        "FailedEntries": [],
    }
    found.put_targets(
        {
            **where,
            "Targets": [{"Id": "t1", "Arn": FUNCTION, "InputPath": "$.detail", "RoleArn": "x"}],
        }
    )
    first = found.list_targets_by_rule({**where, "Limit": 2})
    assert first["Targets"] == [
        {"Id": "t0", "Arn": FUNCTION, "Input": '{"i": 0}'},
        {"Id": "t1", "Arn": FUNCTION, "InputPath": "$.detail", "RoleArn": "x"},
    ]
    rest = found.list_targets_by_rule({**where, "NextToken": first["NextToken"]})
    assert [t["Id"] for t in rest["Targets"]] == ["t2"] and "NextToken" not in rest
    found.remove_targets({**where, "Ids": ["t0", "t2", "not-there"]})
    assert [t["Id"] for t in found.list_targets_by_rule(where)["Targets"]] == ["t1"]


def test_put_targets_refuses_what_eventbridge_refuses() -> None:
    found, _ = rules()
    found.put_rule({"Name": "r", "EventBusName": "shop", "EventPattern": json.dumps(SHOP)}, NOW)
    where = {"Rule": "r", "EventBusName": "shop"}

    def put(*targets: dict[str, Any]) -> Any:
        return lambda: found.put_targets({**where, "Targets": list(targets)})

    refused(
        put({"Id": "a", "Arn": FUNCTION, "Input": "{}", "InputPath": "$"}),
        "ValidationException",
        "only one of",
    )
    refused(
        put({"Id": "a", "Arn": FUNCTION, "Input": "{not json"}),
        "ValidationException",
        "not valid JSON",
    )
    refused(
        put(
            {
                "Id": "a",
                "Arn": FUNCTION,
                "InputTransformer": {"InputPathsMap": {"x": "detail"}, "InputTemplate": "<x>"},
            }
        ),
        "ValidationException",
        "invalid InputPath",
    )
    refused(
        put({"Id": "a", "Arn": "arn:aws:sns:us-east-1:123456789012:t"}),
        "ValidationException",
        "local stack",
    )
    refused(put(*({"Id": f"t{i}", "Arn": FUNCTION} for i in range(6))), "LimitExceededException")
    refused(
        lambda: found.put_targets({"Rule": "nope", "EventBusName": "shop", "Targets": []}),
        "ResourceNotFoundException",
        "Rule nope does not exist on EventBus shop.",
    )
    rule = found.find("shop", "r")
    assert rule is not None and rule.targets == []  # nothing put by a refused request


def test_a_rule_is_deleted_once_its_targets_are_gone() -> None:
    found, changes = rules()
    found.put_rule({"Name": "r", "EventBusName": "shop", "EventPattern": json.dumps(SHOP)}, NOW)
    found.put_targets(
        {"Rule": "r", "EventBusName": "shop", "Targets": [{"Id": "t", "Arn": FUNCTION}]}
    )
    refused(
        lambda: found.delete_rule({"Name": "r", "EventBusName": "shop"}),
        "ValidationException",
        "Rule can't be deleted since it has targets.",
    )
    found.remove_targets({"Rule": "r", "EventBusName": "shop", "Ids": ["t"]})
    assert found.delete_rule({"Name": "r", "EventBusName": "shop"}) == {}
    assert found.delete_rule({"Name": "r", "EventBusName": "shop"}) == {}  # done already
    assert changes[-1] == ("r", True)
    refused(
        lambda: found.describe_rule({"Name": "r", "EventBusName": "shop"}),
        "ResourceNotFoundException",
        "Rule r does not exist on EventBus shop.",
    )


def test_list_rules_by_prefix_a_page_at_a_time_and_disabled_rules_match_nothing() -> None:
    found, _ = rules()
    for name in ("wf-a", "wf-b", "wf-c", "other"):
        found.put_rule(
            {"Name": name, "EventBusName": "shop", "EventPattern": json.dumps(SHOP)}, NOW
        )
    first = found.list_rules({"EventBusName": "shop", "NamePrefix": "wf-", "Limit": 2})
    assert [r["Name"] for r in first["Rules"]] == ["wf-a", "wf-b"]
    rest = found.list_rules(
        {"EventBusName": "shop", "NamePrefix": "wf-", "NextToken": first["NextToken"]}
    )
    assert [r["Name"] for r in rest["Rules"]] == ["wf-c"]
    assert found.list_rules({})["Rules"] == []  # the default bus has none
    found.disable_rule({"Name": "wf-b", "EventBusName": "shop"})
    assert found.describe_rule({"Name": "wf-b", "EventBusName": "shop"})["State"] == "DISABLED"
    assert sorted(r.name for r in found.matching("shop")) == ["other", "wf-a", "wf-c"]
    found.enable_rule({"Name": "wf-b", "EventBusName": "shop"})
    assert len(found.matching("shop")) == 4
    refused(lambda: found.enable_rule({"Name": "nope"}), "ResourceNotFoundException")
    refused(lambda: found.list_rules({"NextToken": "%%%"}), "ValidationException")


def test_rules_made_through_the_api_are_kept_across_a_restart() -> None:
    found, _ = rules()
    found.add(Rule("from-template", "shop", "arn:t", pattern=SHOP, from_template=True))
    found.put_rule(
        {
            "Name": "r",
            "EventBusName": "shop",
            "EventPattern": json.dumps(SHOP),
            "State": "DISABLED",
        },
        NOW,
    )
    found.put_targets(
        {
            "Rule": "r",
            "EventBusName": "shop",
            "Targets": [{"Id": "t", "Arn": FUNCTION, "InputTransformer": TRANSFORMER}],
        }
    )
    found.put_rule({"Name": "tick", "ScheduleExpression": "rate(1 hour)"}, NOW)
    saved = json.loads(json.dumps(found.snapshot()))  # as state.json holds it
    assert sorted(entry["name"] for entry in saved) == ["r", "tick"]  # the template's are not

    again, changes = rules()
    again.restore([*saved, {**saved[0], "bus": "gone-bus"}])
    assert sorted(changes) == [("r", False), ("tick", False)]
    assert again.describe_rule({"Name": "r", "EventBusName": "shop"}) == found.describe_rule(
        {"Name": "r", "EventBusName": "shop"}
    )
    assert again.list_targets_by_rule({"Rule": "r", "EventBusName": "shop"}) == (
        found.list_targets_by_rule({"Rule": "r", "EventBusName": "shop"})
    )
    tick = again.find("default", "tick")
    assert tick is not None and tick.created == NOW  # a rate keeps its phase
