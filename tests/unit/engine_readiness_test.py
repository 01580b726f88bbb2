"""DAG readiness: dependencies, joins, ``when``, trigger rules and condition steps."""

from __future__ import annotations

from helpers import EngineDriver, task, workflow


def test_roots_start_together_and_nothing_else():
    run = EngineDriver({"a": task(), "b": task(), "c": task("a", "b")})
    assert [d.key for d in run.dispatches()] == ["a", "b"]
    assert run.run.status == "running"
    assert run.status("c") is None


def test_a_step_waits_for_every_dependency_of_a_diamond():
    run = EngineDriver(
        {
            "a": task(),
            "b": task("a"),
            "c": task("a"),
            "d": task("b", "c", input={"b": "${steps.b.output}", "c": "${steps.c.output}"}),
        }
    )
    run.succeed("a", 1)
    assert {d.key for d in run.dispatches()} == {"a", "b", "c"}
    run.succeed("c", "from c")
    assert run.status("d") == "pending"
    assert run.step("d").pending_deps == 1
    assert not run.dispatches("d")
    run.succeed("b", "from b")
    [dispatch] = run.dispatches("d")
    assert dispatch.input == {"b": "from b", "c": "from c"}
    run.succeed("d", "done")
    assert run.run.status == "succeeded"
    assert run.run.output == {"d": "done"}


def test_dependencies_ending_in_either_order_start_the_join_once():
    for order in (("b", "c"), ("c", "b")):
        run = EngineDriver({"a": task(), "b": task("a"), "c": task("a"), "d": task("b", "c")})
        run.succeed("a")
        for key in order:
            run.succeed(key)
        assert len(run.dispatches("d")) == 1


def test_steps_input_defaults_to_the_run_input():
    run = EngineDriver({"a": task()}, {"order": 7})
    assert run.dispatches("a")[0].input == {"order": 7}


def test_when_false_skips_the_step_and_its_all_success_dependents():
    run = EngineDriver(
        {
            "a": task(),
            "b": task("a", when="${steps.a.output.go}"),
            "c": task("b"),
            "d": task("c"),
        }
    )
    run.succeed("a", {"go": False})
    assert [run.status(k) for k in "bcd"] == ["skipped", "skipped", "skipped"]
    assert run.dispatches() == run.dispatches("a")
    assert run.run.status == "succeeded"
    messages = {e.step: e.message for e in run.entries("step_skipped")}
    assert "'when' was false" in messages["b"]
    assert "trigger_rule all_success" in messages["c"]


def test_when_true_runs_the_step():
    run = EngineDriver({"a": task(), "b": task("a", when="${steps.a.output.go}")})
    run.succeed("a", {"go": True})
    assert run.status("b") == "running"


def test_when_as_a_literal_boolean():
    run = EngineDriver({"a": task(when=False), "b": task(when=True)})
    assert run.status("a") == "skipped"
    assert run.status("b") == "running"


def test_none_failed_runs_after_a_skipped_dependency():
    run = EngineDriver(
        {
            "a": task(),
            "b": task("a", when=False),
            "c": task("a", "b", trigger_rule="none_failed", input="${steps.b.status}"),
        }
    )
    assert run.status("b") is None  # not reached yet
    run.succeed("a")
    assert run.status("b") == "skipped"
    [dispatch] = run.dispatches("c")
    assert dispatch.input == "skipped"


def test_none_failed_after_a_chain_of_skips():
    run = EngineDriver(
        {"a": task(when=False), "b": task("a"), "c": task("b", trigger_rule="none_failed")}
    )
    assert run.status("b") == "skipped"
    assert run.status("c") == "running"


def test_all_success_is_the_default_trigger_rule():
    run = EngineDriver({"a": task(when=False), "b": task("a")})
    assert run.status("b") == "skipped"
    assert run.run.status == "succeeded"


def test_a_failed_step_fails_the_run_and_its_dependents_never_start():
    run = EngineDriver({"a": task(), "b": task("a"), "c": task(), "d": task("c")})
    run.fail("a", "Boom", message="no")
    assert run.run.status == "failed"
    assert run.run.error == {"type": "Boom", "message": "no", "step": "a"}
    assert run.status("b") is None
    assert run.status("c") == "cancelled"  # started, so cancelled with the run
    run.succeed("c")
    assert run.status("d") is None
    assert not run.dispatches("d")


def test_condition_steps_record_a_boolean_and_dependents_branch_on_it():
    steps = {
        "a": task(),
        "big": {
            "type": "condition",
            "depends_on": "a",
            "condition": "${steps.a.output.total >= 1000}",
        },
        "yes": task("big", when="${steps.big.output}"),
        "no": task("big", when="${$not(steps.big.output)}"),
    }
    for total, taken, skipped in ((5000, "yes", "no"), (10, "no", "yes")):
        run = EngineDriver(steps)
        run.succeed("a", {"total": total})
        assert run.step("big").output is (total >= 1000)
        assert run.status("big") == "succeeded"
        assert run.status(taken) == "running"
        assert run.status(skipped) == "skipped"
        [entry] = run.entries("condition_evaluated")
        assert entry.data == {"value": total >= 1000}


def test_condition_truthiness_follows_jsonata():
    for value, truth in (([], False), ([0, 1], True), ("", False), ("x", True), ({}, False)):
        run = EngineDriver({"c": {"type": "condition", "condition": "${input}"}}, value)
        assert run.step("c").output is truth, value


def test_default_run_output_is_the_sinks_outputs():
    run = EngineDriver({"a": task(), "b": task("a"), "c": task("a")})
    run.succeed("a", 1)
    run.succeed("b", 2)
    run.succeed("c", 3)
    assert run.run.output == {"b": 2, "c": 3}


def test_declared_run_output_is_rendered():
    definition = workflow(
        {"a": task(), "b": task()}, output={"sum": "${steps.a.output + steps.b.output}"}
    )
    run = EngineDriver(definition)
    run.succeed("a", 2)
    run.succeed("b", 3)
    assert run.run.output == {"sum": 5}


def test_an_expression_error_in_when_fails_the_step():
    run = EngineDriver({"a": task(when="${$undefinedFunction()}")})
    assert run.status("a") == "failed"
    assert run.step("a").error["type"] == "ExpressionError"
    assert run.run.status == "failed"


def test_input_schema_violation_fails_the_step_before_dispatch():
    run = EngineDriver({"a": task(input_schema={"type": "object", "required": ["id"]})}, {})
    assert run.status("a") == "failed"
    assert run.step("a").error["type"] == "InputSchemaError"
    assert not run.dispatches()


def test_output_path_shapes_and_output_schema_checks_the_output():
    run = EngineDriver(
        {
            "a": task(output_path="${body.items}"),
            "b": task(output_schema={"type": "string"}),
        }
    )
    run.succeed("a", {"body": {"items": [1, 2]}})
    assert run.step("a").output == [1, 2]
    run.succeed("b", 42)
    assert run.status("b") == "failed"
    assert run.step("b").error["type"] == "OutputSchemaError"
