"""Error routing in YAML: a step's ``catch`` rules handle its failure once its retries are
spent (the run goes on, the rule's ``then`` steps run), and trigger rules for what follows a
failure (``all_done``, ``one_failed``)."""

from __future__ import annotations

from typing import Any

import pytest

from helpers import EngineDriver, task, workflow
from stepwell.definition.errors import DefinitionError
from stepwell.definition.loader import load_text


def order(**charge: Any) -> dict[str, Any]:
    """validate -> charge -> ship; charge's failure refunds (card declined) or alerts (any)."""
    return {
        "validate": task(),
        "charge": task(
            "validate",
            catch=[
                {"errors": ["CardDeclined"], "then": "tell_customer"},
                {"errors": "*", "then": ["alert"]},
            ],
            **charge,
        ),
        "ship": task("charge"),
        "tell_customer": task(input={"why": "${steps.charge.error.message}"}),
        "alert": task(input={"error": "${steps.charge.error.type}"}),
    }


def test_a_caught_failure_runs_its_handler_skips_what_followed_and_the_run_goes_on() -> None:
    run = EngineDriver(order())
    run.succeed("validate")
    run.fail("charge", "CardDeclined", message="insufficient funds")
    assert run.status("charge") == "failed" and run.step("charge").handled_by == 0
    assert run.status("ship") == "skipped" and run.status("alert") == "skipped"
    assert run.status("tell_customer") == "running"
    assert run.dispatches("tell_customer")[0].input == {"why": "insufficient funds"}
    run.succeed("tell_customer")
    assert run.run.status == "succeeded" and run.run.error is None
    types = [e.type for e in run.timeline if e.step == "charge"]
    assert types[-2:] == ["step_failed", "failure_handled"]


def test_the_first_rule_that_matches_handles_it() -> None:
    run = EngineDriver(order())
    run.succeed("validate")
    run.fail("charge", "GatewayDown")
    assert run.step("charge").handled_by == 1
    assert run.status("tell_customer") == "skipped" and run.status("alert") == "running"
    assert run.dispatches("alert")[0].input == {"error": "GatewayDown"}


def test_handlers_are_skipped_when_the_step_succeeds() -> None:
    run = EngineDriver(order())
    run.succeed("validate")
    run.succeed("charge")
    assert run.status("tell_customer") == run.status("alert") == "skipped"
    run.succeed("ship")
    assert run.run.status == "succeeded"


def test_retries_are_spent_before_a_rule_handles_the_failure() -> None:
    retry = {"max_attempts": 2, "interval": "1s", "jitter": "none"}
    run = EngineDriver(order(retry=retry))
    run.succeed("validate")
    run.fail("charge", "CardDeclined")
    assert run.status("charge") == "retrying"
    run.fire("charge")
    run.fail("charge", "CardDeclined")
    assert run.step("charge").attempt == 2 and run.step("charge").handled_by == 0


def test_a_failure_no_rule_handles_fails_the_run() -> None:
    steps = order()
    steps["charge"]["catch"] = [{"errors": ["CardDeclined"], "then": "tell_customer"}]
    run = EngineDriver(steps)
    run.succeed("validate")
    run.fail("charge", "GatewayDown")
    assert run.run.status == "failed" and run.run.error["step"] == "charge"
    assert run.step("charge").handled_by is None


def test_all_done_runs_after_a_handled_failure_and_one_failed_only_after_one() -> None:
    steps = {
        "a": task(catch=[{}]),  # catches anything, runs nothing of its own
        "b": task(),
        "cleanup": task("a", "b", trigger_rule="all_done"),
        "report_failure": task("a", "b", trigger_rule="one_failed"),
        "next": task("a", "b"),
    }
    run = EngineDriver(steps)
    run.fail("a", "Boom")
    run.succeed("b")
    assert run.status("cleanup") == "running" and run.status("report_failure") == "running"
    assert run.status("next") == "skipped"
    run.succeed("cleanup")
    run.succeed("report_failure")
    assert run.run.status == "succeeded"

    clean = EngineDriver(steps)
    clean.succeed("a")
    clean.succeed("b")
    assert clean.status("cleanup") == "running" and clean.status("report_failure") == "skipped"
    assert clean.status("next") == "running"


def test_a_for_each_that_fails_is_caught_like_any_step() -> None:
    steps = {
        "fan": task(for_each="${input.items}", catch=[{"errors": "ForEachFailed", "then": "h"}]),
        "h": task(input="${steps.fan.error.type}"),
    }
    run = EngineDriver(steps, {"items": [1, 2]})
    run.fail("fan[0]", "Boom")
    assert run.status("fan") == "failed" and run.status("h") == "running"
    assert run.dispatches("h")[0].input == "ForEachFailed"


def load(steps: dict[str, Any]) -> Any:
    import yaml

    return load_text(yaml.safe_dump({"name": "w", "steps": steps}), "w.yaml")


@pytest.mark.parametrize(
    ("catch", "expected"),
    [
        ([{"then": "nope"}], "unknown step 'nope' in then; did you mean 'note'?"),
        ([{"then": "a"}], "'a' cannot handle its own failure"),
        (
            [{"errors": "*", "then": "note"}, {"errors": "Boom", "then": "note2"}],
            "catch rule 2 of 'a' is never reached: an earlier rule catches every error",
        ),
        (
            [{"errors": ["X", "Y"]}, {"errors": "Y"}],
            "catch rule 2 of 'a' is never reached: an earlier rule catches these errors",
        ),
    ],
)
def test_catch_mistakes_are_located_and_say_the_fix(catch: Any, expected: str) -> None:
    with pytest.raises(DefinitionError) as raised:
        load({"a": {"function": "F", "catch": catch}, "note": task(), "note2": task()})
    assert expected in str(raised.value)
    assert "w.yaml:" in str(raised.value)


def test_a_cycle_through_a_handler_is_refused() -> None:
    with pytest.raises(DefinitionError) as raised:
        load({"a": {"function": "F", "depends_on": "h", "catch": [{"then": "h"}]}, "h": task()})
    assert "cycle: a -> h -> a" in str(raised.value) or "cycle: h -> a -> h" in str(raised.value)


def test_a_handler_depends_on_its_step_without_saying_so() -> None:
    definition = workflow(order())
    assert definition.upstream["tell_customer"] == ("charge",)
    assert "tell_customer" in definition.dependents["charge"]
    assert set(definition.sinks) == {"ship", "tell_customer", "alert"}
