"""`stepwell validate` on a workflow's flow control: where each problem is, and the fix."""

from __future__ import annotations

from datetime import timedelta
from typing import get_args

from definition_validation_test import problems_of

from stepwell.definition.models import Debounce, FlowControl, Throttle, Windowed, Workflow
from stepwell.definition.validation import FLOW_CONTROLS


def flow(concurrency: str, priority: str = '"${input.priority}"') -> str:
    return f"""\
name: charge
concurrency: {concurrency}
priority: {priority}
steps:
  charge:
    function: ChargeCardFunction
"""


def test_a_key_and_a_priority_over_the_input_are_fine() -> None:
    assert problems_of(flow('{key: "${input.customer}", limit: 2}')) == []
    assert problems_of(flow("{limit: 1}", "3")) == []


def test_a_key_that_reads_more_than_the_input_is_located_and_named() -> None:
    [problem] = problems_of(flow('{key: "${steps.charge.output.id}", limit: 2}'))
    assert problem.startswith("wf.yaml:2:")
    assert "concurrency.key" in problem and "'steps'" in problem and "input" in problem


def test_a_priority_that_reads_the_context_is_refused() -> None:
    [problem] = problems_of(flow('{key: "", limit: 2}', '"${context.level}"'))
    assert problem.startswith("wf.yaml:3:") and "priority" in problem and "'context'" in problem


def test_a_limit_below_1_says_so() -> None:
    [problem] = problems_of(flow("{key: x, limit: 0}"))
    assert "concurrency.limit" in problem and "must be at least 1, got 0" in problem


def singleton(spec: str, more: str = "") -> str:
    return f"""\
name: sync
singleton: {spec}
{more}steps:
  sync:
    function: SyncFunction
"""


def test_a_singleton_s_key_reads_the_input_and_its_mode_is_named() -> None:
    assert problems_of(singleton('{key: "${input.account}", mode: skip}')) == []
    [key] = problems_of(singleton('{key: "${context.run_id}", mode: cancel_previous}'))
    assert key.startswith("wf.yaml:2:") and "singleton.key" in key and "'context'" in key
    [mode] = problems_of(singleton("{mode: newest}"))
    assert "singleton.mode" in mode and "'skip' or 'cancel_previous'" in mode


def test_a_singleton_with_concurrency_or_a_throttle_too_says_to_keep_one() -> None:
    [problem] = problems_of(singleton("{mode: skip}", "concurrency: {limit: 2}\n"))
    assert problem.startswith("wf.yaml:2:")
    assert "not concurrency and singleton: keep one of them" in problem
    [problem] = problems_of(singleton("{mode: skip}", "throttle: {limit: 2, period: 1m}\n"))
    assert problem.startswith("wf.yaml:3:") and "not singleton and throttle" in problem


def test_a_throttle_s_key_reads_the_input_and_its_period_is_a_positive_duration() -> None:
    spec = "name: t\nthrottle: {key: %s, limit: %s, period: %s}\nsteps:\n  s:\n    function: F\n"
    assert problems_of(spec % ('"${input.customer}"', 5, "1m")) == []
    [key] = problems_of(spec % ('"${context.x}"', 5, "1m"))
    assert key.startswith("wf.yaml:2:") and "throttle.key" in key and "'context'" in key
    [zero] = problems_of(spec % ("x", 5, "0s"))
    assert "throttle.period" in zero and "longer than 0s" in zero
    [limit] = problems_of(spec % ("x", 0, "1m"))
    assert "throttle.limit" in limit


def test_a_debounce_s_key_reads_the_input_and_its_period_is_a_positive_duration() -> None:
    spec = "name: sync\ndebounce: {key: %s, period: %s}\nsteps:\n  s:\n    function: F\n"
    assert problems_of(spec % ('"${input.document}"', "30s")) == []
    [key] = problems_of(spec % ('"${steps.s.output}"', "30s"))
    assert key.startswith("wf.yaml:2:") and "debounce.key" in key and "'steps'" in key
    [zero] = problems_of(spec % ("x", "0s"))
    assert "debounce.period" in zero and "longer than 0s" in zero
    [bad] = problems_of(spec % ("x", "soon"))
    assert "debounce.period" in bad


def step_limit(concurrency: str, step_type: str = "function: ChargeCardFunction") -> str:
    return f"""\
name: charge
steps:
  charge:
    {step_type}
    concurrency: {concurrency}
"""


def test_a_step_s_concurrency_over_the_input_is_fine() -> None:
    assert problems_of(step_limit('{key: "${input.merchant}", limit: 3}')) == []
    assert problems_of(step_limit("{limit: 1}")) == []


def test_a_step_s_key_that_reads_more_than_the_input_is_located_at_the_step() -> None:
    [problem] = problems_of(step_limit('{key: "${context.merchant}", limit: 3}'))
    assert problem.startswith("wf.yaml:5:")
    assert "step 'charge'" in problem and "concurrency.key" in problem
    assert "'context'" in problem and "read input.<field>" in problem


def test_a_step_s_limit_below_1_and_a_step_that_runs_no_attempts_say_so() -> None:
    [problem] = problems_of(step_limit("{limit: 0}"))
    assert "step 'charge'" in problem and "concurrency.limit" in problem and "at least 1" in problem
    [problem] = problems_of(step_limit("{limit: 2}", "type: delay\n    duration: 1m"))
    assert problem.startswith("wf.yaml:6:") and "a delay step runs no attempts" in problem


def test_each_flow_control_is_one_keyed_model_that_checks_its_own_period() -> None:
    fields = Workflow.model_fields
    for name in FLOW_CONTROLS:
        (control,) = [t for t in get_args(fields[name].annotation) if t is not type(None)]
        assert issubclass(control, FlowControl)
    assert issubclass(Throttle, Windowed) and issubclass(Debounce, Windowed)
    quick = Debounce(key="x", period=timedelta(0))
    assert list(quick.problems()) == [("period", "period must be longer than 0s, e.g. period: 30s")]
    assert list(Throttle(limit=2, period=timedelta(minutes=1)).problems()) == []
