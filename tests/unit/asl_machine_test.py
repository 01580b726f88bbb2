"""Amazon States Language machines interpreted on a code-first Context (a fake engine): the
input and output processing, Choice, Pass, Wait, Task with Retry and Catch, Fail, Map and
Parallel, as the Step Functions developer guide gives them."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import pytest
from code_fake_engine import Fail, FakeRun

from stepwell.asl.machine import Machine
from stepwell.code.protocol import Issue

STATE_MACHINES = "arn:aws:states:us-east-1:123456789012:stateMachine"


def machine(states: dict[str, Any], start: str | None = None) -> Machine:
    return Machine("test", {"StartAt": start or next(iter(states)), "States": states})


def run(states: dict[str, Any], input: Any, answer: Any = None, start: str | None = None) -> Any:
    fake = FakeRun(machine(states, start), input)
    result = fake.drive(answer or (lambda issue: None))
    return fake, result


def test_pass_with_result_and_result_path_from_the_developer_guide() -> None:
    # The guide's Pass example: Result placed at $.coords, the input kept.
    states = {
        "Pass": {
            "Type": "Pass",
            "Result": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
            "ResultPath": "$.coords",
            "End": True,
        }
    }
    _, result = run(states, {"georefOf": "Home"})
    assert result.output == {
        "georefOf": "Home",
        "coords": {"x-datum": 0.381018, "y-datum": 622.2269926397355},
    }


def test_input_path_parameters_result_selector_result_path_output_path() -> None:
    states = {
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "InputPath": "$.order",
            "Parameters": {
                "amount.$": "$.total",
                "currency": "EUR",
                "who.$": "$$.Execution.Input.user",
            },
            "ResultSelector": {"id.$": "$.charge_id"},
            "ResultPath": "$.charge",
            "OutputPath": "$.charge",
            "End": True,
        }
    }
    fake, result = run(
        states,
        {"order": {"total": 12.5}, "user": "ada"},
        lambda issue: {"charge_id": "ch-1", "noise": True},
    )
    assert fake.issues["Charge"].input == {"amount": 12.5, "currency": "EUR", "who": "ada"}
    assert fake.issues["Charge"].spec["function"] == "ChargeCardFunction"
    assert result.output == {"id": "ch-1"}


def test_a_choice_loop_keeps_a_record_for_every_visit() -> None:
    states = {
        "Count": {"Type": "Task", "Resource": "IncrementFunction", "Next": "Enough?"},
        "Enough?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericGreaterThanEquals": 3, "Next": "Done"}],
            "Default": "Count",
        },
        "Done": {"Type": "Succeed"},
    }
    fake, result = run(states, {"n": 0}, lambda issue: {"n": issue.input["n"] + 1})
    assert result.output == {"n": 3}
    assert list(fake.issues) == ["Count", "Count~2", "Count~3"]


@pytest.mark.parametrize(
    ("rule", "holds"),
    [
        ({"Variable": "$.s", "StringEquals": "go"}, True),
        ({"Variable": "$.s", "StringMatches": "g*"}, True),
        ({"Variable": "$.n", "NumericLessThanPath": "$.m"}, True),
        ({"Variable": "$.b", "BooleanEquals": False}, True),
        ({"Variable": "$.t", "TimestampGreaterThan": "2020-01-01T00:00:00Z"}, True),
        ({"Variable": "$.missing", "IsPresent": False}, True),
        ({"Variable": "$.z", "IsNull": True}, True),
        ({"Not": {"Variable": "$.s", "StringEquals": "go"}}, False),
        (
            {
                "And": [
                    {"Variable": "$.n", "IsNumeric": True},
                    {"Variable": "$.s", "IsString": True},
                ]
            },
            True,
        ),
        (
            {
                "Or": [
                    {"Variable": "$.missing", "StringEquals": "x"},
                    {"Variable": "$.n", "NumericEquals": 2},
                ]
            },
            False,
        ),
    ],
)
def test_choice_rules(rule: dict[str, Any], holds: bool) -> None:
    states = {
        "Decide": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
        "Yes": {"Type": "Pass", "Result": "yes", "End": True},
        "No": {"Type": "Pass", "Result": "no", "End": True},
    }
    data = {"s": "go", "n": 1, "m": 5, "b": False, "t": "2024-05-01T10:00:00Z", "z": None}
    _, result = run(states, data)
    assert result.output == ("yes" if holds else "no")


def test_one_retrier_is_the_engines_retry_policy_on_one_record() -> None:
    states = {
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "Retry": [
                {"ErrorEquals": ["Flaky"], "IntervalSeconds": 2, "MaxAttempts": 2, "BackoffRate": 3}
            ],
            "End": True,
        }
    }
    fake = FakeRun(machine(states), {})
    fake.replay()
    assert fake.issues["Charge"].spec["retry"] == {
        "max_attempts": 3,  # the first try and 2 retries
        "interval": "2s",
        "backoff_rate": 3.0,
        "jitter": "none",
        "retry_on": ["Flaky"],
    }


def test_several_retriers_retry_in_the_machine_then_catch_routes_the_error_output() -> None:
    states = {
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "Retry": [
                {
                    "ErrorEquals": ["Flaky"],
                    "IntervalSeconds": 2,
                    "MaxAttempts": 2,
                    "BackoffRate": 3,
                },
                {"ErrorEquals": ["States.ALL"], "MaxAttempts": 0},
            ],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Refund"}],
            "End": True,
        },
        "Refund": {"Type": "Pass", "End": True},
    }

    def answer(issue: Issue) -> Any:
        return Fail("Flaky", "try later") if issue.kind == "task" else None

    fake, result = run(states, {"order": 1}, answer)
    charges = [k for k in fake.issues if k.startswith("Charge") and "retry" not in k]
    assert charges == ["Charge", "Charge~2", "Charge~3"]  # the first try and 2 retries
    waits = [i.spec["duration"] for k, i in fake.issues.items() if "retry" in k]
    assert waits == ["2s", "6s"]  # IntervalSeconds, then times BackoffRate
    assert result.output["order"] == 1
    assert result.output["error"]["Error"] == "Flaky"
    assert '"errorMessage":"try later"' in result.output["error"]["Cause"]


def test_a_fail_state_fails_the_run_with_its_error_and_cause() -> None:
    states = {"Nope": {"Type": "Fail", "Error": "OrderRejected", "Cause": "too big"}}
    _, result = run(states, {})
    assert result.status == "failed" and result.error == {
        "type": "OrderRejected",
        "message": "too big",
    }


def test_an_uncaught_task_error_fails_the_run_with_the_lambda_error_name() -> None:
    states = {"Charge": {"Type": "Task", "Resource": "ChargeCardFunction", "End": True}}
    _, result = run(states, {}, lambda issue: Fail("CardDeclined", "no"))
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "CardDeclined"


def test_wait_seconds_and_timestamp_paths() -> None:
    states = {
        "Short": {"Type": "Wait", "SecondsPath": "$.pause", "Next": "Until"},
        "Until": {"Type": "Wait", "TimestampPath": "$.at", "End": True},
    }
    fake, result = run(states, {"pause": 30, "at": "2030-01-01T00:00:00Z"})
    assert fake.issues["Short"].kind == "delay" and fake.issues["Short"].spec["duration"] == "30s"
    assert fake.issues["Until"].kind == "delay"
    assert result.output == {"pause": 30, "at": "2030-01-01T00:00:00Z"}


def test_intrinsic_functions_in_parameters() -> None:
    states = {
        "Shape": {
            "Type": "Pass",
            "Parameters": {
                "greeting.$": "States.Format('Hello, {}! You have {} items.', $.name, $.count)",
                "parts.$": "States.StringSplit($.csv, ',')",
                "pairs.$": "States.ArrayPartition(States.Array(1, 2, 3), 2)",
                "sum.$": "States.MathAdd($.count, 1)",
                "has.$": "States.ArrayContains($.tags, 'vip')",
                "range.$": "States.ArrayRange(1, 9, 4)",
                "json.$": "States.JsonToString($.obj)",
                "back.$": "States.StringToJson('{\"a\": 1}')",
                "b64.$": "States.Base64Encode('hi')",
                "len.$": "States.ArrayLength($.tags)",
                "uniq.$": "States.ArrayUnique(States.Array(1, 1, 2))",
                "item.$": "States.ArrayGetItem($.tags, 1)",
                "merged.$": "States.JsonMerge($.obj, States.StringToJson('{\"b\": 2}'), false)",
                "hash.$": "States.Hash('x', 'SHA-256')",
            },
            "End": True,
        }
    }
    data = {"name": "Ada", "count": 2, "csv": "a,b,,c", "tags": ["new", "vip"], "obj": {"a": 1}}
    _, result = run(states, data)
    out = result.output
    assert out["greeting"] == "Hello, Ada! You have 2 items."
    assert out["parts"] == ["a", "b", "c"]
    assert out["pairs"] == [[1, 2], [3]]
    assert out["sum"] == 3 and out["has"] is True and out["range"] == [1, 5, 9]
    assert out["json"] == '{"a":1}' and out["back"] == {"a": 1} and out["b64"] == "aGk="
    assert out["len"] == 2 and out["uniq"] == [1, 2] and out["item"] == "vip"
    assert out["merged"] == {"a": 1, "b": 2}
    assert out["hash"] == "2d711642b726b04401627ca9fbac32f5c8530fb1903cc4db02258717921a4881"


def test_map_runs_each_item_with_its_context_and_tolerates_failures() -> None:
    states = {
        "Each": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"sku.$": "$$.Map.Item.Value", "at.$": "$$.Map.Item.Index"},
            "ToleratedFailureCount": 1,
            "ItemProcessor": {
                "StartAt": "Reserve",
                "States": {"Reserve": {"Type": "Task", "Resource": "ReserveFunction", "End": True}},
            },
            "ResultPath": "$.reserved",
            "End": True,
        }
    }

    def answer(issue: Issue) -> Any:
        return Fail("OutOfStock") if issue.input["sku"] == "b" else {"ok": issue.input["at"]}

    _, result = run(states, {"items": ["a", "b", "c"]}, answer)
    assert result.output["reserved"] == [{"ok": 0}, None, {"ok": 2}]


def test_parallel_gives_each_branchs_output_in_order() -> None:
    def branch(result: str) -> dict[str, Any]:
        return {"StartAt": "P", "States": {"P": {"Type": "Pass", "Result": result, "End": True}}}

    states = {
        "Both": {"Type": "Parallel", "Branches": [branch("left"), branch("right")], "End": True}
    }
    _, result = run(states, {})
    assert result.output == ["left", "right"]


def test_a_task_token_is_a_signed_callback_whose_answer_is_the_result() -> None:
    states = {
        "Ask": {
            "Type": "Task",
            "Resource": "arn:aws:states:::lambda:invoke.waitForTaskToken",
            "Parameters": {
                "FunctionName": "NotifyApproverFunction",
                "Payload": {"token.$": "$$.Task.Token", "order.$": "$.order"},
            },
            "TimeoutSeconds": 3600,
            "End": True,
        }
    }
    fake = FakeRun(machine(states), {"order": "o-1"})
    first = fake.replay()
    kinds = {i.key: i.kind for i in first.issued}
    assert kinds == {"Ask token": "callback", "Ask": "task"}
    assert fake.issues["Ask"].input == {"token": "Ask token", "order": "o-1"}  # no keys in tests
    fake.succeed("Ask", {"sent": True})
    fake.succeed("Ask token", {"approved": True})
    assert fake.replay().output == {"approved": True}


def test_put_events_puts_each_entry_on_the_bus() -> None:
    states = {
        "Tell": {
            "Type": "Task",
            "Resource": "arn:aws:states:::events:putEvents",
            "Parameters": {
                "Entries": [
                    {"Source": "shop", "DetailType": "order.seen", "Detail": {"id.$": "$.id"}},
                    {"DetailType": "order.logged", "Detail": '{"n": 1}'},
                ]
            },
            "End": True,
        }
    }
    fake, result = run(states, {"id": "o-9"}, lambda issue: {"event_id": f"e-{issue.key}"})
    assert fake.issues["Tell"].kind == "notify"
    assert fake.issues["Tell"].input == {
        "detail_type": "order.seen",
        "detail": {"id": "o-9"},
        "source": "shop",
    }
    assert fake.issues["Tell 2"].input["detail"] == {"n": 1}
    assert result.output == {
        "Entries": [{"EventId": "e-Tell"}, {"EventId": "e-Tell 2"}],
        "FailedEntryCount": 0,
    }


@pytest.mark.parametrize(
    ("suffix", "given", "output"),
    [(".sync", '{"rows": 3}', '{"done": true}'), (".sync:2", {"rows": 3}, {"done": True})],
)
def test_start_execution_sync_runs_a_child_workflow(suffix: str, given: Any, output: Any) -> None:
    states = {
        "Child": {
            "Type": "Task",
            "Resource": f"arn:aws:states:::states:startExecution{suffix}",
            "Parameters": {
                "StateMachineArn": f"{STATE_MACHINES}:publish-report",
                "Input": {"rows.$": "$.rows"},
            },
            "End": True,
        }
    }
    fake, result = run(states, {"rows": 3}, lambda issue: {"done": True})
    assert fake.issues["Child"].kind == "workflow"
    assert fake.issues["Child"].spec == {"workflow": "publish-report"}
    assert fake.issues["Child"].input == {"rows": 3}
    assert result.output == {
        "Input": given,
        "InputDetails": {"Included": True},
        "Output": output,
        "OutputDetails": {"Included": True},
        "StateMachineArn": f"{STATE_MACHINES}:publish-report",
        "Status": "SUCCEEDED",
    }


@pytest.mark.parametrize("suffix", ["", ".waitForTaskToken"])
def test_start_execution_starts_a_run_of_its_own_and_goes_on(suffix: str) -> None:
    states = {
        "Start": {
            "Type": "Task",
            "Resource": f"arn:aws:states:::states:startExecution{suffix}",
            "Parameters": {"StateMachineArn": f"{STATE_MACHINES}:publish-report"},
            "End": True,
        }
    }
    started = {"run_id": "r-1.Start.1", "started_at": "2030-01-01T00:00:00+00:00"}
    fake, result = run(states, {}, lambda issue: started)
    assert fake.issues["Start"].kind == "workflow"
    assert fake.issues["Start"].spec == {"workflow": "publish-report", "wait": False}
    assert fake.issues["Start"].input == {}  # Step Functions' input when none is given
    if not suffix:
        assert result.output == {
            "ExecutionArn": f"{STATE_MACHINES}:publish-report:r-1.Start.1".replace(
                ":stateMachine:", ":execution:"
            ),
            "StartDate": "2030-01-01T00:00:00+00:00",
        }


# -- more of the developer guide's cases -------------------------------------------------------


def one(state: dict[str, Any]) -> dict[str, Any]:
    return {
        "S": {**state, "End": True} if state["Type"] not in ("Succeed", "Fail", "Choice") else state
    }


@pytest.mark.parametrize(
    ("state", "data", "output"),
    [
        # InputPath and OutputPath select; the guide's "dataset2" example.
        (
            {"Type": "Pass", "InputPath": "$.dataset2"},
            {"dataset1": {"a": 1}, "dataset2": {"b": 2}},
            {"b": 2},
        ),
        ({"Type": "Pass", "OutputPath": "$.x"}, {"x": [1, 2], "y": 3}, [1, 2]),
        # ResultPath null keeps the input; a nested ResultPath creates what it needs.
        ({"Type": "Pass", "Result": "r", "ResultPath": None}, {"a": 1}, {"a": 1}),
        (
            {"Type": "Pass", "Result": "r", "ResultPath": "$.a.b.c"},
            {"a": {}},
            {"a": {"b": {"c": "r"}}},
        ),
        (
            {"Type": "Pass", "Result": 9, "ResultPath": "$.list[1]"},
            {"list": [0, 1]},
            {"list": [0, 9]},
        ),
        # Parameters: static values kept, .$ fields read, nested objects and arrays.
        (
            {"Type": "Pass", "Parameters": {"static": [1, {"deep.$": "$.v"}], "flag": True}},
            {"v": "x"},
            {"static": [1, {"deep": "x"}], "flag": True},
        ),
        # A wildcard path gives a list.
        (
            {"Type": "Pass", "Parameters": {"skus.$": "$.items[*].sku"}},
            {"items": [{"sku": "a"}, {"sku": "b"}]},
            {"skus": ["a", "b"]},
        ),
        # The context object.
        (
            {
                "Type": "Pass",
                "Parameters": {"id.$": "$$.Execution.Id", "machine.$": "$$.StateMachine.Name"},
            },
            {},
            {"id": "run-1", "machine": "test"},
        ),
        ({"Type": "Pass", "Parameters": {"state.$": "$$.State.Name"}}, {}, {"state": "S"}),
        # Succeed's OutputPath.
        ({"Type": "Succeed", "OutputPath": "$.keep"}, {"keep": 1, "drop": 2}, 1),
    ],
)
def test_input_and_output_processing(state: dict[str, Any], data: Any, output: Any) -> None:
    _, result = run(one(state), data)
    assert result.status == "completed", result
    assert result.output == output


def test_a_path_that_matches_nothing_is_a_runtime_error_no_catch_takes() -> None:
    states = {
        "Read": {
            "Type": "Pass",
            "InputPath": "$.missing",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}],
            "End": True,
        },
        "Caught": {"Type": "Succeed"},
    }
    _, result = run(states, {})
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "States.Runtime"


def test_a_bad_intrinsic_is_an_intrinsic_failure() -> None:
    states = one({"Type": "Pass", "Parameters": {"x.$": "States.Format('{} {}', $.a)"}})
    _, result = run(states, {"a": 1})
    assert result.error is not None and result.error["type"] == "States.IntrinsicFailure"


def test_no_choice_matched_without_a_default() -> None:
    states = {
        "Pick": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.n", "NumericEquals": 1, "Next": "A"}],
        },
        "A": {"Type": "Succeed"},
    }
    _, result = run(states, {"n": 2})
    assert result.error is not None and result.error["type"] == "States.NoChoiceMatched"


def test_fail_with_error_path_and_cause_path() -> None:
    states = one({"Type": "Fail", "ErrorPath": "$.why.code", "CausePath": "$.why.text"})
    _, result = run(states, {"why": {"code": "Late", "text": "the parcel is late"}})
    assert result.error == {"type": "Late", "message": "the parcel is late"}


def test_catch_without_result_path_replaces_the_input_with_the_error() -> None:
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "WorkFunction",
            "Catch": [{"ErrorEquals": ["States.TaskFailed"], "Next": "Report"}],
            "End": True,
        },
        "Report": {"Type": "Pass", "End": True},
    }
    _, result = run(states, {"kept": False}, lambda issue: Fail("Broken", "it broke"))
    assert result.output["Error"] == "Broken" and "kept" not in result.output


def test_catch_with_result_path_null_keeps_the_input_and_drops_the_error() -> None:
    states = {
        "Work": {
            "Type": "Task",
            "Resource": "WorkFunction",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Report"}],
            "End": True,
        },
        "Report": {"Type": "Pass", "End": True},
    }
    _, result = run(states, {"kept": True}, lambda issue: Fail("Broken", "it broke"))
    assert result.output == {"kept": True}


def test_task_failed_does_not_catch_a_timeout_but_states_timeout_does() -> None:
    def machine_with(errors: list[str]) -> dict[str, Any]:
        return {
            "Work": {
                "Type": "Task",
                "Resource": "WorkFunction",
                "TimeoutSeconds": 5,
                "Catch": [{"ErrorEquals": errors, "Next": "Caught"}],
                "End": True,
            },
            "Caught": {"Type": "Pass", "Result": "caught", "End": True},
        }

    timeout = lambda issue: Fail("StepTimedOut", "no result in 5s")  # noqa: E731
    _, result = run(machine_with(["States.TaskFailed"]), {}, timeout)
    assert result.status == "failed" and result.error["type"] == "States.Timeout"
    fake, result = run(machine_with(["States.Timeout"]), {}, timeout)
    assert result.output == "caught"
    assert fake.issues["Work"].spec["timeout"] == "5s"


def test_retry_with_max_attempts_zero_does_not_retry() -> None:
    states = one(
        {
            "Type": "Task",
            "Resource": "WorkFunction",
            "Retry": [{"ErrorEquals": ["States.ALL"], "MaxAttempts": 0}],
        }
    )
    fake = FakeRun(machine(states), {})
    fake.replay()
    assert fake.issues["S"].spec["retry"]["max_attempts"] == 1


def test_retry_jitter_and_max_delay_reach_the_engines_policy() -> None:
    states = one(
        {
            "Type": "Task",
            "Resource": "WorkFunction",
            "Retry": [
                {"ErrorEquals": ["States.Timeout"], "MaxDelaySeconds": 10, "JitterStrategy": "FULL"}
            ],
        }
    )
    fake = FakeRun(machine(states), {})
    fake.replay()
    policy = fake.issues["S"].spec["retry"]
    assert policy["retry_on"] == ["StepTimedOut"] and policy["jitter"] == "full"
    assert policy["max_interval"] == "10s" and policy["max_attempts"] == 4


def test_a_failed_parallel_branch_is_caught_with_its_error() -> None:
    def branch(error: str | None) -> dict[str, Any]:
        state = {"Type": "Fail", "Error": error} if error else {"Type": "Pass", "End": True}
        return {"StartAt": "B", "States": {"B": state}}

    states = {
        "Both": {
            "Type": "Parallel",
            "Branches": [branch(None), branch("BranchBroke")],
            "Catch": [{"ErrorEquals": ["BranchBroke"], "ResultPath": "$.err", "Next": "Done"}],
            "End": True,
        },
        "Done": {"Type": "Succeed"},
    }
    _, result = run(states, {"x": 1})
    assert result.output["err"]["Error"] == "BranchBroke"


def test_map_fails_past_its_tolerated_share_and_bounds_its_concurrency() -> None:
    states = one(
        {
            "Type": "Map",
            "MaxConcurrency": 2,
            "ToleratedFailurePercentage": 25,
            "ItemProcessor": {
                "StartAt": "T",
                "States": {"T": {"Type": "Task", "Resource": "F", "End": True}},
            },
        }
    )
    fake = FakeRun(machine(states), [1, 2, 3, 4])
    first = fake.replay()
    assert len(first.issued) == 2  # MaxConcurrency
    result = fake.drive(lambda issue: Fail("Bad") if issue.input in (1, 2) else issue.input)
    assert result.error is not None
    assert result.error["type"] == "States.ExceedToleratedFailureThreshold"


def test_wait_until_a_timestamp() -> None:
    states = one({"Type": "Wait", "Timestamp": "2030-06-01T12:00:00Z"})
    fake, result = run(states, {"a": 1})
    assert fake.issues["S"].kind == "delay" and result.output == {"a": 1}


def test_uuid_and_random_are_the_same_on_every_replay() -> None:
    states = one(
        {
            "Type": "Pass",
            "Parameters": {"id.$": "States.UUID()", "n.$": "States.MathRandom(1, 999)"},
        }
    )
    first = FakeRun(machine(states), {}).replay().output
    again = FakeRun(machine(states), {}).replay().output
    assert first == again and 1 <= first["n"] < 999 and len(first["id"]) == 36


def test_entered_time_and_start_time_in_the_context_object() -> None:
    states = one(
        {
            "Type": "Pass",
            "Parameters": {"at.$": "$$.State.EnteredTime", "start.$": "$$.Execution.StartTime"},
        }
    )
    fake, result = run(states, {})
    assert result.output["start"] is not None
    assert datetime.fromisoformat(result.output["at"]) >= datetime.fromisoformat(
        result.output["start"]
    )
    assert "$now" in fake.journal  # a recorded time, paid for only by machines that read it
    plain, _ = run(one({"Type": "Pass"}), {})
    assert "$now" not in plain.journal


# -- QueryLanguage JSONata ---------------------------------------------------------------------


def jsonata_machine(states: dict[str, Any]) -> Machine:
    return Machine(
        "test", {"QueryLanguage": "JSONata", "StartAt": next(iter(states)), "States": states}
    )


def test_jsonata_arguments_output_and_assign_carry_variables_between_states() -> None:
    states = {
        "Price": {
            "Type": "Task",
            "Resource": "PriceFunction",
            "Arguments": {"sku": "{% $states.input.sku %}", "qty": "{% $states.input.qty %}"},
            "Assign": {"unit": "{% $states.result.unit %}", "sku": "{% $states.input.sku %}"},
            "Output": "{% $states.result.unit * $states.input.qty %}",
            "Next": "Summary",
        },
        "Summary": {
            "Type": "Pass",
            "Output": {"sku": "{% $sku %}", "unit": "{% $unit %}", "total": "{% $states.input %}"},
            "End": True,
        },
    }
    fake = FakeRun(jsonata_machine(states), {"sku": "KB", "qty": 3})
    result = fake.drive(lambda issue: {"unit": 40})
    assert fake.issues["Price"].input == {"sku": "KB", "qty": 3}
    assert result.output == {"sku": "KB", "unit": 40, "total": 120}


def test_jsonata_choice_conditions_and_catch_output() -> None:
    states = {
        "Big?": {
            "Type": "Choice",
            "Choices": [{"Condition": "{% $states.input.total > 100 %}", "Next": "Charge"}],
            "Default": "Small",
        },
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "Catch": [
                {
                    "ErrorEquals": ["States.ALL"],
                    "Output": {"failed": "{% $states.errorOutput.Error %}"},
                    "Next": "Failed",
                }
            ],
            "End": True,
        },
        "Small": {"Type": "Pass", "Output": "small", "End": True},
        "Failed": {"Type": "Pass", "End": True},
    }
    small = FakeRun(jsonata_machine(states), {"total": 5}).drive(lambda issue: None)
    assert small.output == "small"
    big = FakeRun(jsonata_machine(states), {"total": 500}).drive(lambda issue: Fail("CardDeclined"))
    assert big.output == {"failed": "CardDeclined"}


def test_jsonata_map_items_and_a_bad_expression() -> None:
    states = {
        "Each": {
            "Type": "Map",
            "Items": "{% $states.input.lines %}",
            "ItemSelector": {"n": "{% $states.context.Map.Item.Value * 10 %}"},
            "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            "Output": "{% $sum($states.result.n) %}",
            "End": True,
        }
    }
    result = FakeRun(jsonata_machine(states), {"lines": [1, 2, 3]}).drive(lambda issue: None)
    assert result.output == 60
    broken = {"Bad": {"Type": "Pass", "Output": "{% $states.input.a.b() %}", "End": True}}
    failed = FakeRun(jsonata_machine(broken), {"a": {}}).replay()
    assert failed.error is not None and failed.error["type"] == "States.QueryEvaluationError"


@pytest.mark.parametrize(
    ("state", "given"),
    [
        # The child's Input is a string that is not JSON: json.loads raised ValueError.
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::states:startExecution.sync:2",
                "Parameters": {"StateMachineArn": f"{STATE_MACHINES}:child", "Input.$": "$.text"},
            },
            {"text": "not json"},
        ),
        # An entry's Detail that is not JSON.
        (
            {
                "Type": "Task",
                "Resource": "arn:aws:states:::events:putEvents",
                "Parameters": {"Entries": [{"Detail.$": "$.text", "DetailType": "t"}]},
            },
            {"text": "{"},
        ),
        # A batch size that is no number.
        (
            {
                "Type": "Map",
                "ItemBatcher": {"MaxItemsPerBatchPath": "$.size"},
                "ItemProcessor": {"StartAt": "P", "States": {"P": {"Type": "Pass", "End": True}}},
            },
            [1, 2],
        ),
    ],
)
def test_no_python_exception_name_reaches_the_machine(state: dict[str, Any], given: Any) -> None:
    # Whatever the data makes go wrong inside a state is States.Runtime, as Step Functions
    # names it, with the state named in its Cause.
    states = one({**state, "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Caught"}]})
    states["Caught"] = {"Type": "Succeed"}
    data = {"size": "many", "items": given} if isinstance(given, list) else given
    if isinstance(given, list):
        states["S"]["ItemsPath"] = "$.items"
    _, result = run(states, data)
    assert result.status == "failed" and result.error is not None, result
    assert result.error["type"] == "States.Runtime", result.error
    assert result.error["message"].startswith(
        "An error occurred while executing the state 'S' (entered at the event id #2). "
    ), result.error
