"""The checks a service makes beyond botocore's, read from the same model."""

from __future__ import annotations

import botocore.session

from stepwell.local.intercept import constraint_errors

MODELS = botocore.session.get_session()


def errors(service: str, operation: str, params: dict[str, object]) -> list[str]:
    model = MODELS.get_service_model(service).operation_model(operation)
    return constraint_errors(model.input_shape, params)


def test_a_valid_request_passes() -> None:
    assert (
        errors(
            "scheduler",
            "CreateSchedule",
            {
                "Name": "wf-nightly.report_1",
                "ScheduleExpression": "cron(0 6 * * ? *)",
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "Target": {"Arn": "arn:x", "RoleArn": "arn:aws:iam::123456789012:role/r"},
                "State": "ENABLED",
            },
        )
        == []
    )


def test_patterns_enums_and_maximums_are_checked_in_the_service_s_words() -> None:
    assert errors("events", "PutRule", {"Name": "no spaces", "State": "ON"}) == [
        "Value 'no spaces' at 'name' failed to satisfy constraint: Member must satisfy regular "
        "expression pattern: [\\.\\-_A-Za-z0-9]+",
        "Value 'ON' at 'state' failed to satisfy constraint: Member must satisfy enum value set: "
        "[ENABLED, DISABLED, ENABLED_WITH_ALL_CLOUDTRAIL_MANAGEMENT_EVENTS]",
    ]
    assert errors("scheduler", "ListSchedules", {"MaxResults": 101}) == [
        "Value '101' at 'maxResults' failed to satisfy constraint: Member must have value less "
        "than or equal to 100"
    ]
    (too_long,) = errors("events", "PutRule", {"Name": "x" * 65})
    assert "at 'name'" in too_long and "length less than or equal to 64" in too_long


def test_nested_members_are_named_as_on_the_wire() -> None:
    found = errors(
        "events",
        "PutTargets",
        {
            "Rule": "r",
            "Targets": [
                {"Id": "ok", "Arn": "arn:x"},
                {
                    "Id": "b@d",
                    "Arn": "arn:x",
                    "InputTransformer": {"InputPathsMap": {"a b": "$"}, "InputTemplate": "x"},
                },
            ],
        },
    )
    assert [e.split("' at '")[1].split("'")[0] for e in found] == [
        "targets.2.member.id",
        "targets.2.member.inputTransformer.inputPathsMap.key",
    ]
