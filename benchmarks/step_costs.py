"""Where a W1 step's CPU time goes on the local stack: its requests, its Invoke, the rest.

    python benchmarks/step_costs.py [--repeat 5]

W1 (``workloads.py``) on a fresh stack: after two warm-up runs, ``repeat`` runs with the
thread CPU time (``time.thread_time``) of a few functions summed over every call, in
milliseconds per step. The step's invocation (the emulator running the step function, whose
result the orchestrator records in the same invocation) is split into its DynamoDB requests as
the store sends them (pynamodb building the request, botocore, moto), the Invoke of the next
step, and everything else: the engine's decisions, the store's encoding and decoding, the
envelope, the emulator. What runs on other threads (the stack's pump, the HTTP API, the
benchmark waiting) is the process's CPU time less the invocations'. Not in ``make bench``: it
explains the overhead row that W1's ceiling (``report.ceiling``) prints.
"""

from __future__ import annotations

import argparse
import functools
import json
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from stepwell.engine import core
from stepwell.local.lambdas import LambdaEmulator
from stepwell.runtime.aws.lambda_invoker import LambdaInvoker
from stepwell.store.dynamodb import DynamoStore
from workloads import W1_STEPS, Bench

TIMED: dict[str, tuple[Any, str]] = {
    "the step's invocation": (LambdaEmulator, "_run"),
    "its writes (2 UpdateItem), sent": (DynamoStore, "_update_once"),
    "its read (BatchGetItem), sent": (DynamoStore, "_batch_get"),
    "the next step's Invoke, sent": (LambdaInvoker, "dispatch"),
    "the writes built (what changed, as pynamodb actions)": (DynamoStore, "_step_update"),
    "the engine's decisions": (core, "decide"),
}
"""What is timed: a name, and the function (on its class or module) each call of which counts."""


@contextmanager
def timed(spent: Counter[str]) -> Iterator[None]:
    """Sum the thread CPU time of every call of each of :data:`TIMED` into ``spent``."""
    lock = threading.Lock()
    originals = [
        (owner, attribute, getattr(owner, attribute)) for owner, attribute in TIMED.values()
    ]

    def wrapped(name: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def call(*args: Any, **kwargs: Any) -> Any:
            started = time.thread_time()
            try:
                return function(*args, **kwargs)
            finally:
                with lock:
                    spent[name] += time.thread_time() - started

        return call

    for (name, (owner, attribute)), (_, _, function) in zip(TIMED.items(), originals, strict=True):
        setattr(owner, attribute, wrapped(name, function))
    try:
        yield
    finally:
        for owner, attribute, function in originals:
            setattr(owner, attribute, function)


def measure(repeat: int) -> dict[str, float]:
    """Milliseconds of CPU per W1 step: the process's, each timed function's, and the rest of
    the invocation beyond its requests and its Invoke."""
    spent: Counter[str] = Counter()
    with tempfile.TemporaryDirectory(prefix="stepwell-bench-") as folder:
        bench = Bench(Path(folder))
        try:
            for _ in range(2):  # warm-up: the functions' containers start
                bench.run("bench-sequential", {"n": 0})
            with timed(spent):
                process = sum(bench.run("bench-sequential", {"n": 0}).cpu for _ in range(repeat))
        finally:
            bench.close()
    steps = W1_STEPS * repeat
    per_step = {name: round(spent[name] / steps * 1000, 3) for name in TIMED}
    sent = sum(per_step[k] for k in TIMED if k.endswith(", sent"))
    invocation = per_step["the step's invocation"]
    return {
        "process": round(process / steps * 1000, 3),
        **per_step,
        "the invocation beyond its requests and its Invoke": round(invocation - sent, 3),
        "other threads": round(process / steps * 1000 - invocation, 3),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    print(json.dumps(measure(args.repeat), indent=1))


if __name__ == "__main__":
    main()
