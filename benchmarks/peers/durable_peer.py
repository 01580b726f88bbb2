"""W1-W3 on the AWS durable execution SDK's local test runner (in-memory, one process).

Runs in a virtual environment of its own (see benchmarks/peers.py); prints JSON. W3 uses the
runner's real clock (``skip_time=False``), so its wait takes the full second.

    python durable_peer.py W1 [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import time
from typing import Any

from aws_durable_execution_sdk_python import DurableContext, durable_execution
from aws_durable_execution_sdk_python.config import Duration, MapConfig
from aws_durable_execution_sdk_python_testing import DurableFunctionTestRunner

SEQUENTIAL_STEPS = 100
FANOUT = 100


def count(value: Any) -> dict[str, int]:
    """The benchmarks' no-op step: ``{"n": k}`` -> ``{"n": k + 1}``."""
    return {"n": value["n"] + 1}


@durable_execution
def sequential(event: Any, context: DurableContext) -> Any:
    value = {"n": 0}
    for i in range(SEQUENTIAL_STEPS):
        value = context.step(lambda _, v=value: count(v), name=f"s{i:03d}")
    return value


@durable_execution
def fanout(event: Any, context: DurableContext) -> Any:
    def each(child: DurableContext, item: int, _index: int, _items: Any) -> Any:
        return child.step(lambda _: count({"n": item}), name="each")

    done = context.map(
        list(range(FANOUT)), each, name="each", config=MapConfig(max_concurrency=FANOUT)
    )
    outputs = done.get_results()
    return context.step(lambda _: count({"n": len(outputs)}), name="join")


@durable_execution
def delay(event: Any, context: DurableContext) -> Any:
    context.step(lambda _: count({"n": 0}), name="before")
    context.wait(Duration.from_seconds(1), name="pause")
    return context.step(lambda _: count({"n": 1}), name="after")


WORKLOADS = {"W1": (sequential, SEQUENTIAL_STEPS, True), "W2": (fanout, FANOUT + 1, True)}
WORKLOADS["W3"] = (delay, 3, False)


def operations(found: list[Any]) -> int:
    """Operations of an execution, nested ones included (what the service bills)."""
    return sum(1 + operations(getattr(op, "child_operations", []) or []) for op in found)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    handler, steps, skip_time = WORKLOADS[args.workload]
    walls: list[float] = []
    ops = 0
    for i in range(args.repeat + 1):  # the first is a warm-up
        with DurableFunctionTestRunner(handler=handler, skip_time=skip_time) as runner:
            t0 = time.perf_counter()
            result = runner.run(input="{}", execution_timeout=120)
            wall = time.perf_counter() - t0
        assert str(result.status).endswith("SUCCEEDED"), result.status
        ops = operations(result.operations)
        if i:
            walls.append(wall)
    median = statistics.median(walls)
    print(
        json.dumps(
            {
                "workload": args.workload,
                "steps_per_sample": steps,
                "wall_s": [round(w, 4) for w in walls],
                "wall_median_s": round(median, 4),
                "steps_per_s": round(steps / median, 2),
                "operations_per_step": round(ops / steps, 3),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
