"""W1 and W2 written as code-first workflows (W1c, W2c), on the same no-op step function.

``workloads.py`` copies this file beside the YAML workflows it generates, so the stack finds
both kinds in the same folder. The functions are what a user would write:

* ``bench-sequential-code`` (W1c): 100 ``ctx.task`` steps in a line, each given the previous
  step's output, as W1's ``depends_on`` chain;
* ``bench-fanout-code`` (W2c): ``ctx.map`` over ``input["items"]``, 100 at once (W2's
  ``max_parallel``), then one join task given the number of outputs.

The input may set ``steps`` (W1c) and ``max_concurrency`` (W2c): the benchmark's warm-up runs
a short chain, and measures W2c at a lower concurrency too.
"""

from __future__ import annotations

from typing import Any

from stepwell import Context, workflow

NOOP = "BenchNoopFunction"
"""The benchmarks' no-op step function (its logical id in the benchmark's template)."""
SEQUENTIAL_STEPS = 100
MAX_CONCURRENCY = 100


@workflow(name="bench-sequential-code")
def sequential(ctx: Context, input: dict[str, Any]) -> Any:
    """100 task steps in a line, each given the previous one's output."""
    value = input
    for i in range(input.get("steps", SEQUENTIAL_STEPS)):
        value = ctx.task(f"s{i:03d}", function=NOOP, input=value)
    return value


@workflow(name="bench-fanout-code")
def fanout(ctx: Context, input: dict[str, Any]) -> Any:
    """A map over ``input["items"]``, then a join that counts the outputs."""

    def each(item_ctx: Context, item: Any) -> Any:
        return item_ctx.task("item", function=NOOP, input={"n": item})

    at_once = input.get("max_concurrency", MAX_CONCURRENCY)
    outputs = ctx.map("each", input["items"], each, max_concurrency=at_once)
    return ctx.task("join", function=NOOP, input={"n": len(outputs)})
