"""``${...}`` templates: values, interpolation, parsing, $now(), errors and step references."""

from __future__ import annotations

from datetime import UTC, datetime

import jsonata
import pytest

from helpers import T0, EngineDriver, task
from stepwell import expressions
from stepwell.expressions import (
    ExpressionError,
    check,
    compile_expression,
    evaluate,
    referenced_steps,
    render,
    split_template,
    truthy,
)

DATA = {
    "input": {"a": 1, "b": "x", "l": [1, 2], "o": {"k": "v"}, "f": 2.5},
    "steps": {"s": {"output": {"n": 5}, "status": "succeeded"}},
    "context": {"env": "prod"},
}
NOW = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)


@pytest.mark.parametrize(
    ("template", "value"),
    [
        ("${input.a}", 1),
        ("${input.l}", [1, 2]),
        ("${input.o}", {"k": "v"}),
        ("${input.missing}", None),
        ("${true}", True),
        ("${steps.s.output.n * 2}", 10),
        ("${  input.b  }", "x"),
        ("${context.env}", "prod"),
    ],
)
def test_a_lone_expression_yields_its_value(template, value):
    assert render(template, DATA) == value


@pytest.mark.parametrize(
    ("template", "text"),
    [
        ("a=${input.a}", "a=1"),
        ("l=${input.l}", "l=[1,2]"),
        ("o=${input.o}", 'o={"k":"v"}'),
        ("m=${input.missing}.", "m=."),
        ("b=${false}", "b=false"),
        ("f=${input.f} g=${2.0}", "f=2.5 g=2"),
        ("${input.a}${input.b}", "1x"),
        (" ${input.a} ", " 1 "),
        ("no expressions at all {}", "no expressions at all {}"),
        ("$ {input.a} and $input", "$ {input.a} and $input"),
    ],
)
def test_expressions_among_text_are_interpolated(template, text):
    assert render(template, DATA) == text


def test_nested_braces_and_quotes_do_not_end_an_expression():
    assert render('${ {"k": input.a} }', DATA) == {"k": 1}
    assert render('${"}" & input.b}', DATA) == "}x"
    assert render("${'{' & \"}\"}", DATA) == "{}"
    assert render('${"a\\"}" & "b"}', DATA) == 'a"}b'
    assert render('x${ {"y": {"z": input.a}}.y.z }y', DATA) == "x1y"
    assert split_template('a${b}c${ {"x": "}"} }d') == ["a", ("b",), "c", ('{"x": "}"}',), "d"]


def test_render_goes_through_dicts_and_lists():
    template = {
        "${input.b}": ["${input.a}", {"z": "${input.l}"}, 3, None, True],
        "t": ("${input.a}", "lit"),
        "n": 3,
    }
    assert render(template, DATA) == {
        "x": [1, {"z": [1, 2]}, 3, None, True],
        "t": [1, "lit"],
        "n": 3,
    }
    assert render(7, DATA) == 7


def test_now_and_millis_are_the_given_time_not_the_clock():
    assert render("${$now()}", DATA, NOW) == "2026-03-04T05:06:07Z"
    assert render("${$millis()}", DATA, NOW) == int(NOW.timestamp() * 1000)
    assert render("at ${$now()}", DATA, NOW) == "at 2026-03-04T05:06:07Z"
    assert evaluate("$now()", DATA, T0) == "2026-01-01T00:00:00Z"


def test_the_engine_binds_now_to_the_decision_time():
    run = EngineDriver({"a": task(input={"at": "${$now()}"}), "b": task("a", input="${$now()}")})
    assert run.dispatches("a")[0].input == {"at": "2026-01-01T00:00:00Z"}
    run.advance(NOW - T0)
    run.succeed("a")
    assert run.dispatches("b")[0].input == "2026-03-04T05:06:07Z"


@pytest.mark.parametrize(
    ("template", "reason"),
    [
        ("${(}", "Expected )"),
        ("${}", "the expression is empty"),
        ("${   }", "the expression is empty"),
        ("${input.a", "no closing '}'"),
        ('${"unterminated}', "no closing '}'"),
    ],
)
def test_compile_errors_name_the_expression(template, reason):
    with pytest.raises(ExpressionError) as raised:
        render(template, DATA)
    assert reason in raised.value.reason
    assert str(raised.value).startswith("expression ${")
    assert isinstance(raised.value, ValueError)


def test_evaluation_errors_are_expression_errors():
    with pytest.raises(ExpressionError) as raised:
        render("${$nosuch()}", DATA)
    assert raised.value.expression == "$nosuch()"


def test_check_reports_every_broken_expression():
    errors = check({"a": "${(}", "b": ["${input.a}", "${$count(}"], "c": "fine"})
    assert [e.expression for e in errors] == ["(", "$count("]
    assert check({"a": "${input.a}"}) == []
    [unclosed] = check("${x")
    assert "no closing" in unclosed.reason


def test_compiled_expressions_are_cached():
    assert compile_expression("input.a + 1") is compile_expression("input.a + 1")
    assert "input.a + 1" in expressions._CACHE


@pytest.mark.parametrize(
    ("template", "steps"),
    [
        ("${steps.a.output}", {"a"}),
        ("${steps . a . output} and ${steps.b}", {"a", "b"}),
        ("${steps.`odd name`.output}", {"odd name"}),
        ("${$count(steps.c.output) + steps.d.output.n}", {"c", "d"}),
        ({"k": ["${steps.z.output}"], "${steps.y.status}": 1}, {"y", "z"}),
        ("${input.steps.a}", set()),
        ("${$steps.a}", set()),
        ("${mysteps.a}", set()),
        ("no expressions", set()),
        (42, set()),
    ],
)
def test_referenced_steps(template, steps):
    assert referenced_steps(template) == steps


@pytest.mark.parametrize(
    "template",
    ["${steps}", '${$lookup(steps, "a")}', '${steps["a"]}', "${$keys(steps)} ${steps.a}"],
)
def test_referenced_steps_is_none_when_steps_is_read_as_a_whole(template):
    assert referenced_steps(template) is None


@pytest.mark.parametrize(
    ("value", "truth"),
    [
        (None, False),
        (0, False),
        (1, True),
        ("", False),
        ("0", True),
        ([], False),
        ([0, ""], False),
        ([[], [1]], True),
        ({}, False),
        ({"a": 1}, True),
    ],
)
def test_truthy_follows_jsonata(value, truth):
    assert truthy(value) is truth


# -- bounds: no expression runs away, none evaluates text as an expression ---------------------
@pytest.mark.parametrize(
    "expression",
    [
        "$eval(input.code)",
        "$eval('1 + 1')",
        "($run := $eval; $run(input.code))",  # the function as a value is refused too
        "$map(input.l, function($v) { $eval($v) })",
    ],
)
def test_eval_is_refused_when_the_expression_compiles(expression):
    with pytest.raises(ExpressionError, match=r"\$eval is not available"):
        compile_expression(expression)
    [refused] = check({"field": "${" + expression + "}"})
    assert refused.expression == expression


def test_a_runaway_recursion_stops_at_the_depth_limit():
    with pytest.raises(ExpressionError) as raised:
        evaluate("($f := function($n) { 1 + $f($n + 1) }; $f(0))", DATA)
    assert raised.value.reason.startswith("Stack overflow")
    # A recursion that ends within the limit is fine.
    assert evaluate("($f := function($n) { $n = 0 ? 0 : 1 + $f($n - 1) }; $f(100))", DATA) == 100


def test_a_long_evaluation_stops_at_the_time_limit(monkeypatch):
    monkeypatch.setattr(expressions, "TIME_LIMIT_MS", 0)
    # A tail call runs in constant depth: only the clock stops it.
    with pytest.raises(ExpressionError) as raised:
        evaluate("($f := function($n) { $f($n + 1) }; $f(0))", DATA)
    assert raised.value.reason.startswith("Evaluation timeout after 0 milliseconds")


def test_each_evaluation_gets_its_own_clock(monkeypatch):
    # jsonata's own timebox starts its clock when the expression is compiled: a cached
    # expression would fail every evaluation once the process is older than the limit.
    now = [0]
    monkeypatch.setattr(jsonata.Timebox, "current_milli_time", staticmethod(lambda: now[0]))
    expression = "($add := function($v) { $v + 41 }; $add(input.a))"
    assert compile_expression(expression).may_run_away
    now[0] += 10 * expressions.TIME_LIMIT_MS
    assert evaluate(expression, DATA) == 42
    # An expression without functions or ranges cannot run away: no timebox to pay for.
    assert not compile_expression("steps.s.output.n * 2 + $count(input.l)").may_run_away
