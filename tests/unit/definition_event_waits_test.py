"""`type: event` in a definition: what loading and `stepwell validate` say, located."""

from __future__ import annotations

from stepwell.definition.errors import DefinitionError
from stepwell.definition.loader import load_text
from stepwell.definition.models import EventStep

HEAD = """\
name: orders
steps:
  charge:
    function: Charge
  settled:
    type: event
    depends_on: charge
"""


def problems_of(body: str) -> list[str]:
    try:
        load_text(HEAD + body, "wf.yaml")
    except DefinitionError as exc:
        return [str(p) for p in exc.problems]
    return []


def event(correlate: str = "{event: detail.order_id, equals: '${input.order_id}'}", **more: str):
    lines = [
        "    event:",
        "      source: payments",
        "      detail_type: payment.settled",
        f"      correlate: {correlate}",
        *[f"      {name}: {value}" for name, value in more.items()],
    ]
    return "\n".join(lines) + "\n"


def test_the_issue_s_example_loads():
    body = event(
        where="'${event.detail.amount >= steps.charge.output.amount}'",
        schema="{type: object, required: [order_id, amount]}",
    )
    flow = load_text(
        HEAD + body + "    lookback: 10m\n    timeout: 2d\n    on_timeout: fail\n", "wf.yaml"
    )
    step = flow.steps["settled"]
    assert isinstance(step, EventStep)
    assert step.event.schema_ == {"type": "object", "required": ["order_id", "amount"]}
    assert step.lookback.total_seconds() == 600


def test_a_correlation_that_reads_the_event_is_refused_with_the_fix():
    [problem] = problems_of(event("{event: detail.order_id, equals: '${event.detail.x}'}"))
    assert problem.startswith("wf.yaml:")
    assert "step 'settled': field 'event.correlate.equals'" in problem
    assert "known when the step starts" in problem


def test_a_correlation_that_reads_a_step_it_does_not_depend_on_is_refused():
    body = event("{event: detail.order_id, equals: '${steps.ship.output.id}'}")
    [problem] = problems_of(body + "  ship:\n    function: Ship\n")
    assert "does not depend on 'ship'" in problem


def test_where_sees_the_event_but_not_unknown_names():
    assert problems_of(event(where="'${event.detail.amount > 0}'")) == []
    [problem] = problems_of(event(where="'${evnt.detail.amount > 0}'"))
    assert "field 'event.where'" in problem and "did you mean 'event'" in problem


def test_a_schema_that_is_not_json_schema_is_located():
    [problem] = problems_of(event(schema="{type: objekt}"))
    assert "field 'event.schema.type'" in problem
    assert "not a valid JSON Schema" in problem


def test_durations_and_the_path_are_checked():
    [problem] = problems_of(event() + "    lookback: 30d\n")
    assert "lookback" in problem and "shorten it" in problem
    [problem] = problems_of(event() + "    timeout: soon\n")
    assert "timeout" in problem
    [problem] = problems_of(event("{event: 'order id', equals: x}"))
    assert "detail.order_id" in problem


def test_one_of_event_or_events():
    both = (
        event() + "    events: [{source: a, detail_type: b, correlate: {event: id, equals: x}}]\n"
    )
    [problem] = problems_of(both)
    assert "exactly one of 'event'" in problem


def test_the_first_of_several_is_checked_per_kind_of_event():
    body = """\
    events:
      - source: payments
        detail_type: payment.settled
        correlate: {event: detail.order_id, equals: '${input.order_id}'}
      - source: orders
        detail_type: order.cancelled
        correlate: {event: detail.id, equals: '${input.order_id}'}
        where: '${evnt.x}'
"""
    [problem] = problems_of(body)
    assert "field 'events[1].where'" in problem or "events.1.where" in problem


def cancel_on(correlate: str = "{event: detail.order_id, equals: '${input.order_id}'}", **more):
    lines = [
        "cancel_on:",
        "  - source: orders",
        "    detail_type: order.cancelled",
        f"    correlate: {correlate}",
        *[f"    {name}: {value}" for name, value in more.items()],
    ]
    return event() + "\n".join(lines) + "\n"


def test_the_issue_s_cancel_on_loads():
    flow = load_text(HEAD + cancel_on(where="'${event.detail.reason != \"test\"}'"), "wf.yaml")
    [pattern] = flow.cancel_on
    assert (pattern.source, pattern.detail_type) == ("orders", "order.cancelled")
    assert pattern.correlate.event == "detail.order_id"


def test_a_workflow_without_cancel_on_keeps_its_version():
    assert "cancel_on" not in load_text(HEAD + event(), "wf.yaml").model_dump(mode="json")


def test_cancel_on_correlates_on_the_run_s_input_and_context_alone():
    [problem] = problems_of(cancel_on("{event: detail.order_id, equals: '${steps.charge.output}'}"))
    assert problem.startswith("wf.yaml:")
    assert "field 'cancel_on[0].correlate.equals'" in problem
    assert "steps" in problem
    [problem] = problems_of(cancel_on("{event: detail.order_id, equals: '${event.detail.id}'}"))
    assert "known when the run starts" in problem


def test_cancel_on_s_where_and_schema_are_located():
    [problem] = problems_of(cancel_on(where="'${evnt.detail.x}'"))
    assert "field 'cancel_on[0].where'" in problem and "did you mean 'event'" in problem
    [problem] = problems_of(cancel_on(schema="{type: objekt}"))
    assert "field 'cancel_on[0].schema.type'" in problem
    [problem] = problems_of(cancel_on("{event: 'order id', equals: x}"))
    assert "cancel_on" in problem and "detail.order_id" in problem
