"""ctx.for_each: one issued step (a YAML for_each task), its results and its failure."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import pytest
from code_fake_engine import FakeRun

from stepwell.code.context import Context, MapFailed, StepFailed
from stepwell.code.protocol import FOR_EACH, FOR_EACH_ITEMS

IMAGES = [{"key": f"img-{i}.png", "width": 100 + i} for i in range(5)]


def resize(ctx: Context, input: Any) -> Any:
    return ctx.for_each("resize", function="ResizeFunction", items=input)


def fail_fan_out(run: FakeRun, key: str, outputs: list[Any], errors: dict[int, str]) -> None:
    """End a for_each step as the engine does past its tolerance: the outputs of the children
    that succeeded, and the failed children's errors by index."""
    run.journal[key] = replace(
        run.journal[key],
        status="failed",
        output=outputs,
        error={
            "type": "ForEachFailed",
            "message": f"item {max(errors)} failed",
            "errors": [
                {"index": i, "type": kind, "message": f"{kind} at {i}"}
                for i, kind in sorted(errors.items())
            ],
        },
    )


def test_for_each_issues_one_step_with_the_items_as_its_input() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.for_each(
            "resize",
            function="ResizeFunction",
            items=input,
            max_concurrency=100,
            tolerated_failures="10%",
            retry={"max_attempts": 3, "interval": "2s"},
            timeout="30s",
            heartbeat="10s",
        )

    run = FakeRun(flow, IMAGES)
    result = run.replay()
    assert result.status == "suspended"
    (issue,) = result.issued
    assert (issue.key, issue.name, issue.kind, issue.position) == ("resize", "resize", FOR_EACH, 0)
    assert issue.input == IMAGES
    assert issue.spec == {
        "function": "ResizeFunction",
        "for_each": FOR_EACH_ITEMS,
        "max_parallel": 100,
        "tolerated_failures": "10%",
        "retry": {"max_attempts": 3, "interval": "2s"},
        "timeout": "30s",
        "heartbeat": "10s",
    }


def test_the_defaults_are_the_yaml_for_each_defaults() -> None:
    run = FakeRun(resize, IMAGES)
    (issue,) = run.replay().issued
    assert issue.spec == {
        "function": "ResizeFunction",
        "for_each": FOR_EACH_ITEMS,
        "max_parallel": 10,
        "tolerated_failures": 0,
    }


def test_the_outputs_come_back_in_item_order_and_the_code_goes_on() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        sizes = ctx.for_each("resize", function="ResizeFunction", items=input)
        ctx.task("publish", function="PublishFunction", input=sizes)
        return sizes

    run = FakeRun(flow, IMAGES)
    run.replay()
    outputs = [{"thumb": image["key"]} for image in IMAGES]
    run.succeed("resize", outputs)
    assert run.replay().issued[0].input == outputs
    assert run.issues["publish"].after == ["resize"]
    run.succeed("publish")
    assert run.replay().output == outputs
    assert len(run.yields) == 3  # the fan-out cost the code one replay, however many items


def test_a_tolerated_failure_is_none_at_its_place() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.for_each("resize", function="F", items=input, tolerated_failures=1)

    run = FakeRun(flow, ["a", "b", "c"])
    run.replay()
    run.succeed("resize", ["A", None, "C"])
    assert run.replay().output == ["A", None, "C"]


def test_a_batch_gives_each_tolerated_failure_with_its_error() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        batch = ctx.for_each("resize", function="F", items=input, tolerated_failures=1, batch=True)
        return [[o.status, o.value, o.error and o.error.error_type] for o in batch.items]

    run = FakeRun(flow, ["a", "b", "c"])
    run.replay()
    run.succeed("resize", ["A", None, "C"])
    failed = [{"index": 1, "type": "TooBig", "message": "b is too big", "requestId": "r-1"}]
    run.journal["resize"] = replace(run.journal["resize"], failed_items=failed)
    assert run.replay().output == [
        ["succeeded", "A", None],
        ["failed", None, "TooBig"],
        ["succeeded", "C", None],
    ]


def test_a_failure_past_the_tolerance_raises_map_failed_which_the_code_can_catch() -> None:
    caught: dict[str, Any] = {}

    def flow(ctx: Context, input: Any) -> Any:
        try:
            return ctx.for_each("resize", function="F", items=input, tolerated_failures="20%")
        except MapFailed as failed:
            caught.update(
                map=failed.map,
                results=failed.results,
                errors={i: (e.step, e.error_type) for i, e in failed.errors.items()},
                tolerated=failed.tolerated,
            )
            return "handled"

    run = FakeRun(flow, list(range(10)))  # 20% of 10: 2 tolerated
    run.replay()
    outputs = [0, None, 2, None, None, 5, None, None, None, None]
    fail_fan_out(run, "resize", outputs, {1: "Corrupt", 3: "Corrupt", 4: "TooLarge"})
    assert run.replay().output == "handled"
    assert caught == {
        "map": "resize",
        "results": outputs,
        "errors": {
            1: ("resize[1]", "Corrupt"),
            3: ("resize[3]", "Corrupt"),
            4: ("resize[4]", "TooLarge"),
        },
        "tolerated": 2,
    }


def test_an_uncaught_map_failed_fails_the_run_with_its_type() -> None:
    run = FakeRun(resize, ["a", "b"])
    run.replay()
    fail_fan_out(run, "resize", [None, "B"], {0: "Corrupt"})
    result = run.replay()
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "MapFailed"
    assert "map 'resize' failed: 1 items failed, 0 tolerated" in result.error["message"]


def test_any_other_failure_of_the_step_raises_step_failed() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        try:
            return ctx.for_each("resize", function="F", items=input)
        except StepFailed as failed:
            return [failed.step, failed.error_type]

    run = FakeRun(flow, ["a"])
    run.replay()
    run.fail("resize", "InvalidStep", "no such function")
    assert run.replay().output == ["resize", "InvalidStep"]


def test_for_each_keys_follow_the_scope_rules_inside_a_parallel_and_a_loop() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.parallel(
            "batches",
            [
                lambda c: [
                    c.for_each("resize", function="F", items=[1]),
                    c.for_each("resize", function="F", items=[2]),
                ],
            ],
        )

    run = FakeRun(flow)
    result = run.drive(lambda issue: [issue.key])
    assert result.output == [[["batches.0.resize"], ["batches.0.resize~2"]]]


def test_a_task_recorded_under_the_key_is_a_replay_mismatch() -> None:
    def as_task(ctx: Context, input: Any) -> Any:
        return ctx.task("resize", function="F", input=input)

    run = FakeRun(as_task, ["a"])
    run.replay()
    run.succeed("resize", "done")
    result = run.replay(resize)
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == "ReplayMismatch"
    assert (
        "was a task when this run started and the code now makes it a for_each"
        in (result.error["message"])
    )


@pytest.mark.parametrize(
    ("arguments", "error", "words"),
    [
        ({"function": ""}, ValueError, "function must name a Lambda function"),
        ({"function": None}, ValueError, "function must name a Lambda function"),
        ({"items": {"a": 1}}, TypeError, "items must be a list (one child per item), not dict"),
        ({"items": "abc"}, TypeError, "items must be a list (one child per item), not str"),
        ({"items": (i for i in range(2))}, TypeError, "not generator: pass list(...)"),
        ({"max_concurrency": 0}, ValueError, "max_concurrency must be an int from 1 to 1000"),
        ({"max_concurrency": 1001}, ValueError, "not 1001"),
        ({"max_concurrency": True}, ValueError, "max_concurrency must be an int"),
        ({"max_concurrency": "5"}, ValueError, "max_concurrency must be an int"),
        ({"tolerated_failures": -1}, ValueError, "tolerated_failures: -1 is negative"),
        ({"tolerated_failures": "lots"}, ValueError, "tolerated_failures: 'lots' is not a count"),
        ({"tolerated_failures": "150%"}, ValueError, "tolerated_failures: '150%'"),
        ({"timeout": "soon"}, ValueError, "step 'resize': timeout"),
        ({"heartbeat": -5}, ValueError, "step 'resize': heartbeat: -5 is negative"),
        ({"retry": {"max_attempts": 0}}, ValueError, "retry.max_attempts"),
        ({"items": [object()]}, TypeError, "the input of step 'resize' is not JSON"),
    ],
)
def test_bad_arguments_raise_at_the_call_naming_the_step(
    arguments: dict[str, Any], error: type[Exception], words: str
) -> None:
    given = {"function": "F", "items": [1, 2], **arguments}

    def flow(ctx: Context, input: Any) -> Any:
        return ctx.for_each("resize", **given)

    result = FakeRun(flow).replay()
    assert result.status == "failed" and result.error is not None
    assert result.error["type"] == error.__name__
    assert "'resize'" in result.error["message"] and words in result.error["message"]


def test_a_bad_step_name_is_refused_like_the_other_methods() -> None:
    def flow(ctx: Context, input: Any) -> Any:
        return ctx.for_each("re.size", function="F", items=[1])

    result = FakeRun(flow).replay()
    assert (
        result.error is not None
        and "ctx.for_each: the step name 're.size'" in (result.error["message"])
    )
