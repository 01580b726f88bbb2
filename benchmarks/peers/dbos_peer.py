"""W1-W3 on DBOS Transact with its SQLite system database (one process, a fresh database).

Runs in a virtual environment of its own (see benchmarks/peers.py); prints JSON. The fan-out
goes through a DBOS queue (worker concurrency 100) polled every 10 ms instead of every second,
so the queue's polling does not dominate W2.

    python dbos_peer.py W1 [--repeat 5]
"""

from __future__ import annotations

import argparse
import json
import resource
import statistics
import tempfile
import time
from typing import Any

from dbos import DBOS, DBOSConfig

SEQUENTIAL_STEPS = 100
FANOUT = 100
queue: Any = None


@DBOS.step()
def count(value: dict[str, int]) -> dict[str, int]:
    """The benchmarks' no-op step: ``{"n": k}`` -> ``{"n": k + 1}``."""
    return {"n": value["n"] + 1}


@DBOS.workflow()
def sequential() -> Any:
    value = {"n": 0}
    for _ in range(SEQUENTIAL_STEPS):
        value = count(value)
    return value


@DBOS.workflow()
def fanout() -> Any:
    handles = [queue.enqueue(count, {"n": i}) for i in range(FANOUT)]
    outputs = [handle.get_result() for handle in handles]
    return count({"n": len(outputs)})


@DBOS.workflow()
def delay() -> Any:
    count({"n": 0})
    DBOS.sleep(1)
    return count({"n": 1})


WORKLOADS = {"W1": (sequential, SEQUENTIAL_STEPS), "W2": (fanout, FANOUT + 1), "W3": (delay, 3)}


def main() -> None:
    global queue
    parser = argparse.ArgumentParser()
    parser.add_argument("workload", choices=sorted(WORKLOADS))
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    workflow, steps = WORKLOADS[args.workload]
    with tempfile.TemporaryDirectory(prefix="dbos-bench-") as folder:
        config: DBOSConfig = {
            "name": "stepwell-bench",
            "system_database_url": f"sqlite:///{folder}/dbos.sqlite",
            "log_level": "WARNING",
        }
        DBOS(config=config)
        DBOS.launch()
        queue = DBOS.register_queue("each", worker_concurrency=FANOUT, polling_interval_sec=0.01)
        walls: list[float] = []
        try:
            for i in range(args.repeat + 1):  # the first is a warm-up
                t0 = time.perf_counter()
                workflow()
                if i:
                    walls.append(time.perf_counter() - t0)
        finally:
            DBOS.destroy()
    median = statistics.median(walls)
    print(
        json.dumps(
            {
                "workload": args.workload,
                "steps_per_sample": steps,
                "wall_s": [round(w, 4) for w in walls],
                "wall_median_s": round(median, 4),
                "steps_per_s": round(steps / median, 2),
                "peak_rss_mb": round(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024, 1),
            }
        )
    )


if __name__ == "__main__":
    main()
