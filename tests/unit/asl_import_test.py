"""``stepwell.asl.importer``: a Step Functions machine as Stepwell YAML where the YAML says the
same thing, and per state, located, why it stays ASL otherwise."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from code_fake_engine import Fail, FakeRun
from ruamel.yaml import YAML

from helpers import EngineDriver
from stepwell.asl.importer import Conversion, convert, to_yaml
from stepwell.asl.machine import Machine
from stepwell.code.protocol import Issue
from stepwell.definition.errors import SourceMap
from stepwell.definition.loader import load_text
from stepwell.definition.models import Workflow

FILE = "statemachines/shop.asl.json"


def machine(states: dict[str, Any], **top: Any) -> dict[str, Any]:
    return {"StartAt": next(iter(states)), "States": states, **top}


def converted(document: dict[str, Any]) -> Conversion:
    """The conversion of a machine, read from its JSON text (so problems have lines)."""
    text = json.dumps(document, indent=2)
    loaded = YAML(typ="rt").load(text)
    return convert(loaded, SourceMap(FILE, loaded), "shop")


def steps_of(document: dict[str, Any]) -> dict[str, Any]:
    conversion = converted(document)
    assert conversion.problems == []
    assert conversion.workflow is not None
    workflow = load_text(to_yaml(conversion.workflow, "shop.asl.json"), "shop.yaml")
    assert workflow.name == "shop"  # and it loads and validates as Stepwell YAML
    steps: dict[str, Any] = conversion.workflow["steps"]
    return steps


def refusals(document: dict[str, Any]) -> list[tuple[int, str, str]]:
    """(line, state, message) of each state that stays ASL."""
    conversion = converted(document)
    assert conversion.workflow is None
    return [(p.line, str(p.step), p.message) for p in conversion.problems]


def line_of(document: dict[str, Any], text: str) -> int:
    """The line of the JSON text of ``document`` that holds ``text`` first."""
    lines = json.dumps(document, indent=2).splitlines()
    return next(n for n, line in enumerate(lines, 1) if text in line)


def task(resource: str, **fields: Any) -> dict[str, Any]:
    return {"Type": "Task", "Resource": resource, **fields}


# -- what converts --------------------------------------------------------------------------


def test_a_chain_of_tasks_reads_earlier_outputs_by_name() -> None:
    document = machine(
        {
            "Validate": task("ValidateOrderFunction", ResultPath="$.summary", Next="Charge"),
            "Charge": task(
                "ChargeCardFunction",
                Comment="Charge the card.",
                Parameters={"order_id.$": "$.order_id", "amount.$": "$.summary.total"},
                TimeoutSeconds=30,
                ResultPath="$.charge",
                Next="Ship",
            ),
            "Ship": task("ShipOrderFunction", OutputPath="$.charge", End=True),
        },
        Comment="An order.",
        TimeoutSeconds=86400,
    )
    conversion = converted(document)
    assert conversion.workflow is not None
    assert conversion.workflow["description"] == "An order."
    assert conversion.workflow["timeout"] == "1d"
    assert steps_of(document) == {
        "validate": {"function": "ValidateOrderFunction", "input": "${input}"},
        "charge": {
            "description": "Charge the card.",
            "depends_on": "validate",
            "function": "ChargeCardFunction",
            "input": {"order_id": "${input.order_id}", "amount": "${steps.validate.output.total}"},
            "timeout": "30s",
        },
        "ship": {
            "depends_on": "charge",
            "function": "ShipOrderFunction",
            "input": '${$merge([input, {"summary": steps.validate.output, '
            '"charge": steps.charge.output}])}',
        },
    }
    # Ship's OutputPath is $.charge of its data: the run's output is the charge.
    assert conversion.workflow["output"] == "${steps.ship.output.charge}"


def test_one_retrier_is_the_steps_retry_policy() -> None:
    retrier = {
        "ErrorEquals": ["PaymentDeclinedTemporarily", "States.Timeout"],
        "IntervalSeconds": 2,
        "MaxAttempts": 3,
        "BackoffRate": 1.5,
        "MaxDelaySeconds": 90,
        "JitterStrategy": "FULL",
    }
    steps = steps_of(machine({"Charge": task("ChargeCardFunction", Retry=[retrier], End=True)}))
    assert steps["charge"]["retry"] == {
        "max_attempts": 4,  # the first attempt and three retries
        "interval": "2s",
        "backoff_rate": 1.5,
        "max_interval": "1m30s",
        "jitter": "full",
        "retry_on": ["PaymentDeclinedTemporarily", "StepTimedOut"],
    }
    any_error = {"ErrorEquals": ["States.ALL"], "IntervalSeconds": 1}
    steps = steps_of(machine({"Charge": task("ChargeCardFunction", Retry=[any_error], End=True)}))
    assert steps["charge"]["retry"]["retry_on"] == ["*"]
    assert steps["charge"]["retry"]["jitter"] == "none"


def test_an_inline_map_of_one_task_is_a_for_each() -> None:
    reserve = task(
        "ReserveItemFunction",
        Parameters={"order_id.$": "$.order_id", "sku.$": "$.sku", "line.$": "$$.Map.Item.Index"},
        Retry=[{"ErrorEquals": ["States.ALL"], "MaxAttempts": 2}],
        TimeoutSeconds=5400,
        End=True,
    )
    document = machine(
        {
            "Reserve": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"order_id.$": "$.order_id", "sku.$": "$$.Map.Item.Value.sku"},
                "MaxConcurrency": 5,
                "ToleratedFailurePercentage": 10,
                "ItemProcessor": {"StartAt": "ReserveItem", "States": {"ReserveItem": reserve}},
                "ResultPath": "$.reservations",
                "Next": "Charge",
            },
            "Charge": task(
                "ChargeCardFunction", Parameters={"lines.$": "$.reservations"}, End=True
            ),
        }
    )
    steps = steps_of(document)
    assert steps["reserve"] == {
        "for_each": "${input.items}",
        "max_parallel": 5,
        "tolerated_failures": "10%",
        "function": "ReserveItemFunction",
        "input": {"order_id": "${input.order_id}", "sku": "${item.sku}", "line": "${index}"},
        "retry": {
            "max_attempts": 3,
            "interval": "1s",
            "backoff_rate": 2.0,
            "jitter": "none",
            "retry_on": ["*"],
        },
        "timeout": "1h30m",
    }
    assert steps["charge"]["input"] == {"lines": "${steps.reserve.output}"}
    # No MaxConcurrency (no limit in Step Functions): the most YAML allows.
    del document["States"]["Reserve"]["MaxConcurrency"]
    assert steps_of(document)["reserve"]["max_parallel"] == 1000


def test_a_parallels_branches_start_together_and_the_next_state_waits_for_both() -> None:
    def branch(name: str, resource: str) -> dict[str, Any]:
        return {"StartAt": name, "States": {name: task(resource, End=True)}}

    document = machine(
        {
            "Prepare": task("PrepareFunction", Next="Both"),
            "Both": {
                "Type": "Parallel",
                "Branches": [branch("Pack", "PackFunction"), branch("Invoice", "InvoiceFunction")],
                "Next": "Ship",
            },
            "Ship": task(
                "ShipFunction", Parameters={"box.$": "$[0].box", "invoice.$": "$[1]"}, End=True
            ),
        }
    )
    steps = steps_of(document)
    assert steps["pack"] == {
        "depends_on": "prepare",
        "function": "PackFunction",
        "input": "${steps.prepare.output}",
    }
    assert steps["invoice"]["depends_on"] == "prepare"
    assert steps["ship"]["depends_on"] == ["pack", "invoice"]
    assert steps["ship"]["input"] == {
        "box": "${steps.pack.output.box}",
        "invoice": "${steps.invoice.output}",
    }


def test_a_wait_is_a_delay_and_the_data_goes_through_it() -> None:
    document = machine(
        {
            "Cool off": {"Type": "Wait", "Seconds": 3600, "Next": "Until"},
            "Until": {"Type": "Wait", "Timestamp": "2030-01-01T09:00:00Z", "Next": "Slot"},
            "Slot": {"Type": "Wait", "TimestampPath": "$.slot", "Next": "Charge"},
            "Charge": task("ChargeCardFunction", End=True),
        }
    )
    steps = steps_of(document)
    assert steps["cool_off"] == {"type": "delay", "duration": "1h"}
    assert steps["until"] == {
        "type": "delay",
        "depends_on": "cool_off",
        "until": "2030-01-01T09:00:00Z",
    }
    assert steps["slot"]["until"] == "${input.slot}"
    assert steps["charge"] == {
        "depends_on": "slot",
        "function": "ChargeCardFunction",
        "input": "${input}",
    }


def test_a_pass_is_no_step_its_result_a_constant_in_the_next_input() -> None:
    document = machine(
        {
            "Defaults": {
                "Type": "Pass",
                "Result": {"currency": "EUR", "note": "costs ${price}"},
                "ResultPath": "$.settings",
                "Next": "Charge",
            },
            "Charge": task(
                "ChargeCardFunction",
                Parameters={
                    "currency.$": "$.settings.currency",
                    "note.$": "$.settings.note",
                    "who.$": "$$.Execution.Input.customer",
                    "run.$": "$$.Execution.Id",
                    "state.$": "$$.State.Name",
                },
                End=True,
            ),
        }
    )
    assert steps_of(document)["charge"]["input"] == {
        "currency": "EUR",
        "note": '${"costs ${price}"}',  # a constant YAML would read as an expression
        "who": "${input.customer}",
        "run": "${run.id}",
        "state": "Charge",
    }


def test_lambda_invoke_events_and_child_machines_are_task_notify_and_workflow_steps() -> None:
    document = machine(
        {
            "Charge": task(
                "arn:aws:states:::lambda:invoke",
                Parameters={"FunctionName": "ChargeCardFunction", "Payload.$": "$"},
                ResultSelector={"charge.$": "$.Payload"},
                ResultPath="$.paid",
                Next="Tell",
            ),
            "Tell": task(
                "arn:aws:states:::events:putEvents",
                Parameters={
                    "Entries": [
                        {
                            "Source": "shop",
                            "DetailType": "order.charged",
                            "Detail": {"id.$": "$.paid.charge.id"},
                        }
                    ]
                },
                ResultPath=None,
                Next="Report",
            ),
            "Report": task(
                "arn:aws:states:::states:startExecution.sync:2",
                Parameters={
                    "StateMachineArn": "arn:aws:states:us-east-1:1:stateMachine:publish-report",
                    "Input": {"rows.$": "$.rows"},
                },
                OutputPath="$.Output",
                End=True,
            ),
        }
    )
    steps = steps_of(document)
    assert steps["charge"] == {"function": "ChargeCardFunction", "input": "${input}"}
    assert steps["tell"] == {
        "type": "notify",
        "depends_on": "charge",
        "detail_type": "order.charged",
        "source": "shop",
        "detail": {"id": "${steps.charge.output.id}"},
    }
    assert steps["report"] == {
        "type": "workflow",
        "depends_on": "tell",
        "workflow": "publish-report",
        "input": {"rows": "${input.rows}"},
    }


def test_a_catch_whose_handler_does_not_read_the_error_is_a_catch_rule() -> None:
    document = machine(
        {
            "Charge": task(
                "ChargeCardFunction",
                ResultPath="$.charge",
                Catch=[
                    {"ErrorEquals": ["CardDeclined"], "ResultPath": None, "Next": "Tell"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Release"},
                ],
                Next="Ship",
            ),
            "Ship": task("ShipFunction", Parameters={"id.$": "$.charge.id"}, End=True),
            "Tell": task("EmailFunction", Parameters={"to.$": "$.customer"}, End=True),
            "Release": task("ReleaseFunction", ResultPath=None, End=True),
        }
    )
    conversion = converted(document)
    steps = steps_of(document)
    assert steps["charge"]["catch"] == [
        {"errors": ["CardDeclined"], "then": "tell"},
        {"errors": ["*"], "then": "release"},
    ]
    assert "depends_on" not in steps["tell"]  # naming it in `then` makes it wait for charge
    assert conversion.workflow is not None
    assert conversion.workflow["output"] == (
        '${steps.release.status = "succeeded" ? input : '
        '(steps.tell.status = "succeeded" ? steps.tell.output : steps.ship.output)}'
    )


# -- the YAML does what the machine does ----------------------------------------------------

FUNCTIONS: dict[str, Callable[[Any], Any]] = {
    "ValidateOrderFunction": lambda given: {"total": sum(i["price"] for i in given["items"])},
    "ReserveItemFunction": lambda given: {"reserved": given["sku"], "line": given["line"]},
    "PackFunction": lambda given: {"box": len(given["reservations"])},
    "InvoiceFunction": lambda given: {"invoice": f"inv-{given['order_id']}"},
    "ChargeCardFunction": lambda given: {"charged": given["amount"], "to": given["who"]},
}


def test_the_yaml_gives_the_output_the_machine_gives_for_the_same_answers() -> None:
    def branch(name: str, resource: str) -> dict[str, Any]:
        return {"StartAt": name, "States": {name: task(resource, End=True)}}

    document = machine(
        {
            "Validate": task("ValidateOrderFunction", ResultPath="$.summary", Next="Reserve"),
            "Reserve": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "ItemSelector": {"sku.$": "$$.Map.Item.Value.sku", "line.$": "$$.Map.Item.Index"},
                "ItemProcessor": {
                    "StartAt": "ReserveItem",
                    "States": {"ReserveItem": task("ReserveItemFunction", End=True)},
                },
                "ResultPath": "$.reservations",
                "Next": "Cool off",
            },
            "Cool off": {"Type": "Wait", "Seconds": 60, "Next": "Defaults"},
            "Defaults": {
                "Type": "Pass",
                "Result": "EUR",
                "ResultPath": "$.currency",
                "Next": "Both",
            },
            "Both": {
                "Type": "Parallel",
                "Branches": [branch("Pack", "PackFunction"), branch("Invoice", "InvoiceFunction")],
                "ResultSelector": {"box.$": "$[0].box", "invoice.$": "$[1].invoice"},
                "ResultPath": "$.paperwork",
                "Next": "Charge",
            },
            "Charge": task(
                "arn:aws:states:::lambda:invoke",
                Parameters={
                    "FunctionName": "ChargeCardFunction",
                    "Payload": {"amount.$": "$.summary.total", "who.$": "$.customer"},
                },
                ResultSelector={"charge.$": "$.Payload", "currency.$": "$.Payload.to"},
                ResultPath="$.payment",
                Next="Done",
            ),
            "Done": {"Type": "Succeed", "InputPath": "$.payment", "OutputPath": "$.charge"},
        }
    )
    order = {
        "order_id": "o-1",
        "customer": "ada@example.com",
        "items": [{"sku": "A", "price": 700.0}, {"sku": "B", "price": 55.5}],
    }
    conversion = converted(document)
    assert conversion.workflow is not None
    workflow = load_text(to_yaml(conversion.workflow, "shop.asl.json"), "shop.yaml")
    as_machine = run_machine(document, order)
    assert as_machine == {"charged": 755.5, "to": "ada@example.com"}
    assert run_yaml(workflow, order) == as_machine


def run_machine(document: dict[str, Any], given: Any, failing: str = "") -> Any:
    """The machine's output, its functions answering from FUNCTIONS (``failing`` raises
    CardDeclined)."""

    def answer(issue: Issue) -> Any:
        if issue.kind != "task":
            return None
        function = issue.spec["function"]
        return Fail("CardDeclined") if function == failing else FUNCTIONS[function](issue.input)

    return FakeRun(Machine("shop", document), given).drive(answer).output


def run_yaml(workflow: Workflow, given: Any, failing: str = "") -> Any:
    """The YAML run's output, its functions answering as in :func:`run_machine`."""
    run = EngineDriver(workflow, given)
    for _ in range(50):
        if run.run.terminal:
            break
        for key in sorted(run.running()):
            sent = run.dispatches(key)
            if not sent or sent[-1].function is None:  # a for_each waiting on its items
                continue
            if sent[-1].function == failing:
                run.fail(key, "CardDeclined")
            else:
                run.succeed(key, FUNCTIONS[sent[-1].function](sent[-1].input))
        for key, step in list(run.steps.items()):
            if step.status == "waiting" and step.due_at is not None:
                run.fire(key)
    assert run.run.status == "succeeded", run.run
    return run.run.output


def test_a_caught_failure_ends_the_yaml_run_as_it_ends_the_machine() -> None:
    document = machine(
        {
            "Validate": task("ValidateOrderFunction", ResultPath="$.summary", Next="Charge"),
            "Charge": task(
                "arn:aws:states:::lambda:invoke",
                Parameters={
                    "FunctionName": "ChargeCardFunction",
                    "Payload": {"amount.$": "$.summary.total", "who.$": "$.customer"},
                },
                Catch=[{"ErrorEquals": ["CardDeclined"], "ResultPath": None, "Next": "Invoice"}],
                OutputPath="$.Payload",
                End=True,
            ),
            "Invoice": task("InvoiceFunction", End=True),
        }
    )
    order = {"order_id": "o-2", "customer": "bo@example.com", "items": [{"price": 3.0}]}
    conversion = converted(document)
    assert conversion.workflow is not None
    workflow = load_text(to_yaml(conversion.workflow, "shop.asl.json"), "shop.yaml")
    for failing, expected in [
        ("", {"charged": 3.0, "to": "bo@example.com"}),
        ("ChargeCardFunction", {"invoice": "inv-o-2"}),
    ]:
        assert run_machine(document, order, failing) == expected
        assert run_yaml(workflow, order, failing) == expected


# -- what stays ASL, and where --------------------------------------------------------------


def test_a_choice_loop_stays_asl_located_at_the_choice() -> None:
    document = machine(
        {
            "Poll": task("PollFunction", Next="Ready?"),
            "Ready?": {
                "Type": "Choice",
                "Choices": [{"Variable": "$.ready", "BooleanEquals": True, "Next": "Done"}],
                "Default": "Later",
            },
            "Later": {"Type": "Wait", "Seconds": 60, "Next": "Poll"},
            "Done": {"Type": "Succeed"},
        }
    )
    assert refusals(document) == [
        (
            line_of(document, '"Ready?": {'),
            "Ready?",
            "a Choice loop: Stepwell YAML is a DAG (each step runs once per run)",
        )
    ]


def test_jsonata_stays_asl_on_the_machine_or_on_a_state() -> None:
    whole = machine({"Go": task("F", Arguments="{% $states.input %}", End=True)})
    whole["QueryLanguage"] = "JSONata"
    conversion = converted(whole)
    assert conversion.workflow is None
    (problem,) = conversion.problems
    assert (problem.line, problem.step) == (line_of(whole, "QueryLanguage"), None)
    assert problem.message.startswith("JSONata: its expressions read $states")
    one = machine(
        {
            "Go": task("F", Next="Then"),
            "Then": task("G", QueryLanguage="JSONata", Arguments="{% $states.input %}", End=True),
        }
    )
    ((line, state, message),) = refusals(one)
    assert (line, state) == (line_of(one, '"QueryLanguage"'), "Then")
    assert message.startswith("JSONata")


def test_constructs_without_a_yaml_equivalent_are_each_named_at_their_field() -> None:
    document = machine(
        {
            "Sum": task(
                "SumFunction",
                ResultSelector={"count.$": "States.ArrayLength($.rows)"},
                Next="Ask",
            ),
            "Ask": task(
                "arn:aws:states:::lambda:invoke.waitForTaskToken",
                Parameters={"FunctionName": "AskFunction", "Payload": {"t.$": "$$.Task.Token"}},
                Next="Charge",
            ),
            "Charge": task(
                "ChargeCardFunction",
                Retry=[{"ErrorEquals": ["A"]}, {"ErrorEquals": ["B"], "IntervalSeconds": 5}],
                Catch=[{"ErrorEquals": ["States.ALL"], "Next": "Failed"}],
                End=True,
            ),
            "Failed": {"Type": "Fail", "Error": "PaymentFailed"},
        }
    )
    assert refusals(document) == [
        (
            line_of(document, '"ResultSelector"'),
            "Sum",
            "ResultSelector with intrinsic functions (States.ArrayLength): YAML expressions are "
            "JSONata; not converted",
        ),
        (
            line_of(document, "waitForTaskToken"),
            "Ask",
            "a task token (.waitForTaskToken): a YAML callback step announces its own "
            "callback.requested event, not this Task's call with $$.Task.Token",
        ),
        (
            line_of(document, '"Retry"'),
            "Charge",
            "2 retriers: a YAML step has one retry policy (one backoff); not converted",
        ),
        (
            line_of(document, '"Failed": {'),
            "Failed",
            "a Fail state: a YAML run fails with the error of the step that failed, and has no "
            "step that ends it with an error of its own",
        ),
    ]


def test_data_yaml_cannot_name_stays_asl_where_it_is_read() -> None:
    document = machine(
        {
            "Tell": task(
                "arn:aws:states:::events:putEvents",
                Parameters={"Entries": [{"DetailType": "x", "Detail": {"a": 1}}]},
                ResultPath="$.sent",
                Next="Keep",
            ),
            "Keep": task(
                "KeepFunction", Parameters={"id.$": "$.sent.Entries[0].EventId"}, End=True
            ),
        }
    )
    assert refusals(document) == [
        (
            line_of(document, '"Keep": {'),
            "Keep",
            "reads the answer of events:putEvents, which a YAML notify step does not give; "
            "not converted",
        )
    ]
    wildcard = machine({"Go": task("F", InputPath="$.items[*].sku", End=True)})
    ((_, state, message),) = refusals(wildcard)
    assert state == "Go"
    assert message.startswith("InputPath '$.items[*].sku' selects with wildcards")


def test_two_catches_to_one_state_are_paths_that_meet() -> None:
    document = machine(
        {
            "A": task(
                "AFunction",
                Catch=[
                    {"ErrorEquals": ["X"], "ResultPath": None, "Next": "Tidy"},
                    {"ErrorEquals": ["States.ALL"], "ResultPath": None, "Next": "Tidy"},
                ],
                End=True,
            ),
            "Tidy": task("TidyFunction", End=True),
        }
    )
    ((line, state, message),) = refusals(document)
    assert (line, state) == (line_of(document, '"Tidy": {'), "Tidy")
    assert message.startswith("reached from two states (paths meet here)")


def test_a_map_of_more_than_one_state_stays_asl() -> None:
    document = machine(
        {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {
                    "StartAt": "Shape",
                    "States": {
                        "Shape": {"Type": "Pass", "Next": "Run"},
                        "Run": task("RunFunction", End=True),
                    },
                },
                "End": True,
            }
        }
    )
    ((line, state, message),) = refusals(document)
    assert (line, state) == (line_of(document, '"ItemProcessor"'), "Each")
    assert message.startswith("an ItemProcessor that is not one Task")


def test_what_a_maps_item_task_does_that_for_each_cannot_is_located_at_that_task() -> None:
    item = task("ReserveItemFunction", ResultSelector={"id.$": "$.id"}, End=True)
    document = machine(
        {
            "Each": {
                "Type": "Map",
                "ItemProcessor": {"StartAt": "ReserveItem", "States": {"ReserveItem": item}},
                "End": True,
            }
        }
    )
    ((line, state, message),) = refusals(document)
    assert (line, state) == (line_of(document, '"ResultSelector"'), "ReserveItem")
    assert message.startswith("ResultSelector in a Map's item Task")


def test_a_handler_that_reads_the_error_stays_asl() -> None:
    document = machine(
        {
            "Charge": task(
                "ChargeCardFunction",
                Catch=[{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Tell"}],
                End=True,
            ),
            "Tell": task("EmailFunction", Parameters={"why.$": "$.error.Cause"}, End=True),
        }
    )
    assert refusals(document) == [
        (
            line_of(document, '"Tell": {'),
            "Tell",
            "reads the error of state 'Charge' ({Error, Cause}), which YAML gives as "
            "steps.charge.error ({type, message}); not converted",
        )
    ]
