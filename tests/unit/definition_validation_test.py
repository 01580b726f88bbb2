"""Semantic checks: the step graph, what expressions read, JSON Schemas."""

from __future__ import annotations

from typing import Any

from stepwell.definition.errors import DefinitionError, SourceMap
from stepwell.definition.loader import load_text
from stepwell.definition.models import Workflow
from stepwell.definition.validation import ancestors, validate


def problems_of(text: str) -> list[str]:
    """The problems loading ``text`` reports (none when it loads)."""
    try:
        load_text(text, "wf.yaml")
    except DefinitionError as exc:
        return [str(p) for p in exc.problems]
    return []


def workflow(steps: dict[str, Any], **fields: Any) -> Workflow:
    """A workflow built in code (the models accept it; validate() has not run)."""
    return Workflow.model_validate({"name": "wf", "steps": steps, **fields})


def messages(flow: Workflow) -> list[str]:
    return [p.message for p in validate(flow, SourceMap("wf.yaml"))]


def test_every_problem_is_collected_not_only_the_first() -> None:
    text = """\
name: orders
steps:
  a:
    function: F
    depends_on: [b, nope]
  b:
    function: F
    depends_on: a
    input: ${input.x +}
  c:
    function: F
    input: ${steps.a.output}
"""
    assert problems_of(text) == [
        "wf.yaml:5:18: step 'a': field 'depends_on': cycle: a -> b -> a (each step depends on "
        "the next): remove one of these dependencies",
        "wf.yaml:5:21: step 'a': field 'depends_on': unknown step 'nope' in depends_on; the steps "
        "are: b, c",
        "wf.yaml:9:5: step 'b': field 'input': expression ${input.x +}: Unexpected end of "
        "expression",
        "wf.yaml:12:5: step 'c': field 'input': ${steps.a.output} reads steps.a, but 'c' does not "
        "depend on 'a' (directly or through other steps): add 'a' to depends_on",
    ]


def test_a_longer_cycle_is_printed_whole_from_the_step_defined_first() -> None:
    flow = workflow(
        {
            "a": {"function": "F", "depends_on": "c"},
            "b": {"function": "F", "depends_on": "a"},
            "c": {"function": "F", "depends_on": "b"},
            "d": {"function": "F", "depends_on": ["c"]},
        }
    )
    assert messages(flow) == [
        "cycle: a -> c -> b -> a (each step depends on the next): remove one of these dependencies"
    ]


def test_two_separate_cycles_are_both_reported() -> None:
    flow = workflow(
        {
            "a": {"function": "F", "depends_on": "b"},
            "b": {"function": "F", "depends_on": "a"},
            "c": {"function": "F", "depends_on": "d"},
            "d": {"function": "F", "depends_on": "c"},
        }
    )
    assert [m.split(" (")[0] for m in messages(flow)] == [
        "cycle: a -> b -> a",
        "cycle: c -> d -> c",
    ]


def test_a_dependency_named_twice() -> None:
    flow = workflow({"a": {"function": "F"}, "b": {"function": "F", "depends_on": ["a", "a"]}})
    assert messages(flow) == ["'a' is listed twice: remove one"]


def test_ancestors_are_transitive() -> None:
    flow = workflow(
        {
            "a": {"function": "F"},
            "b": {"function": "F", "depends_on": "a"},
            "c": {"function": "F", "depends_on": "b"},
        }
    )
    assert ancestors(flow) == {"a": frozenset(), "b": {"a"}, "c": {"a", "b"}}


def test_a_step_may_read_any_step_it_depends_on_through_others() -> None:
    flow = workflow(
        {
            "a": {"function": "F"},
            "b": {"function": "F", "depends_on": "a"},
            "c": {"function": "F", "depends_on": "b", "input": "${steps.a.output.x}"},
        },
        output={"x": "${steps.b.output}", "y": "${steps.c.output}"},
    )
    assert messages(flow) == []


def test_reading_the_steps_own_output() -> None:
    flow = workflow({"a": {"function": "F", "input": "${steps.a.output}"}})
    assert messages(flow) == [
        "${steps.a.output} reads steps.a, the step's own output, which does not exist yet"
    ]


def test_reading_steps_as_a_whole_cannot_be_checked_and_is_allowed() -> None:
    flow = workflow({"a": {"function": "F", "input": "${$keys(steps)}"}})
    assert messages(flow) == []


def test_names_inside_predicates_strings_and_groups_are_not_top_level_names() -> None:
    flow = workflow(
        {
            "a": {
                "function": "F",
                "input": {
                    "big": "${input.items[price > 10].sku}",
                    "sum": "${$sum(input.items.(price * qty))}",
                    "text": "${'item ' & input.name & \" index\"}",
                    "test": "${input.a and context.b or run.id in input.ids}",
                    "lambda": "${$map(input.xs, function($v) { $v * 2 })}",
                    "regex": "${$match(input.code, /ab+c/i)}",
                    "ratio": "${input.a / context.b}",
                    "sorted": "${input.items^(price)}",
                },
            }
        }
    )
    assert messages(flow) == []


def test_a_misspelt_top_level_name() -> None:
    flow = workflow({"a": {"function": "F", "input": "${inptu.order_id}"}})
    assert messages(flow) == [
        "${inptu.order_id} reads 'inptu', which is not defined (expressions see input, steps, "
        "context, run); did you mean 'input'?"
    ]


def test_item_and_index_in_a_for_each_step() -> None:
    flow = workflow(
        {
            "fan": {
                "function": "F",
                "for_each": "${input.items}",
                "input": {"sku": "${item.sku}", "line": "${index}"},
            }
        }
    )
    assert messages(flow) == []


def test_for_each_cannot_read_its_own_items() -> None:
    flow = workflow({"fan": {"function": "F", "for_each": "${item.children}"}})
    assert messages(flow) == [
        "${item.children} reads item: for_each gives the items, so it cannot read one"
    ]


def test_for_each_with_text_around_the_expression() -> None:
    flow = workflow({"fan": {"function": "F", "for_each": "items: ${input.items}"}})
    assert messages(flow) == [
        "for_each must be one ${...} expression giving a list, not 'items: ${input.items}': "
        "e.g. for_each: ${input.items}"
    ]


def test_when_and_condition_may_be_booleans() -> None:
    flow = workflow(
        {"a": {"function": "F", "when": False}, "b": {"type": "condition", "condition": True}}
    )
    assert messages(flow) == []


def test_output_path_is_an_expression_over_the_result_alone() -> None:
    ok = workflow({"a": {"function": "F", "output_path": "${charge_id}"}})
    bare = workflow({"a": {"function": "F", "output_path": "body.items[0]"}})
    bad = workflow({"a": {"function": "F", "output_path": "${charge_id +}"}})
    assert messages(ok) == []
    assert messages(bare) == []
    assert messages(bad) == ["expression ${charge_id +}: Unexpected end of expression"]


def test_trigger_inputs_only_need_to_compile() -> None:
    flow = workflow(
        {"a": {"function": "F"}},
        triggers={
            "events": [{"pattern": {"source": ["shop"]}, "input": "${detail}"}],
            "schedules": [{"expression": "rate(5 minutes)", "input": {"day": "${$now( }"}}],
        },
    )
    assert messages(flow) == ["expression ${$now(}: Expected ) before end of expression"]


def test_http_secrets_must_be_declared() -> None:
    step = {
        "type": "http",
        "url": "https://api.example.com/${secrets.TENANT}",
        "headers": {"authorization": "Bearer ${secrets.TOKEN}"},
        "secrets": {"TOKEN": "shop/token"},
    }
    assert messages(workflow({"call": step})) == [
        "${secrets.TENANT} reads secrets.TENANT, but the step declares no secret 'TENANT': add "
        "it, e.g. secrets: {TENANT: my-app/tenant}"
    ]


def test_secrets_are_only_for_http_requests() -> None:
    flow = workflow({"a": {"function": "F", "input": "${secrets.TOKEN}"}})
    assert messages(flow) == [
        "${secrets.TOKEN} reads 'secrets', which is not defined (expressions see input, steps, "
        "context, run)"
    ]


def test_invalid_step_schema_is_located_inside_the_schema() -> None:
    text = """\
name: orders
steps:
  a:
    function: F
    output_schema:
      type: object
      required: total
"""
    assert problems_of(text) == [
        "wf.yaml:7:7: step 'a': field 'output_schema.required': not a valid JSON Schema: "
        "'total' is not of type 'array'"
    ]


def test_validate_without_a_source_places_problems_at_the_top() -> None:
    flow = workflow({"a": {"function": "F", "depends_on": "b"}})
    (problem,) = validate(flow)
    assert (problem.file, problem.line, problem.col, problem.step) == ("<workflow>", 1, 1, "a")


def test_a_child_workflow_of_another_name_is_fine() -> None:
    flow = workflow({"child": {"type": "workflow", "workflow": "publish-report"}})
    assert messages(flow) == []
