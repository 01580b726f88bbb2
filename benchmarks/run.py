"""``make bench``: every benchmark, one table, ``benchmarks/results.json``.

* the engine alone (``engine.py``: time per event, in-process);
* Stepwell's workloads W1-W5 through the local stack on moto, metered and priced
  (``workloads.py``, one process each), the storage floor beside W1 and W2, and what the lease
  timers of a run cost when they fire after it ended;
* W1 and W2 as code-first workflows (W1c, W2c, and W2c90: W2c 90 at once) and as Step
  Functions machines (W1a, W2a), 3 samples each, and W2a over S3 (W2s: 10,000 items read by
  ItemReader and written by ResultWriter), 1 sample
  (a replay reads the whole run, so a code-first sample takes longer);
* the peers on W1-W3 (``peers.py``), each in a virtual environment of its own;
* the targets, each with the figure it is judged on.

    python benchmarks/run.py [--w4-deadline 90] [--skip-peers]
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import peers
from meter import PRICES
from report import markdown, targets

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
RESULTS = HERE / "results.json"


def workload(name: str, *options: str, timeout: float = 900) -> dict[str, Any]:
    """One workload in a process of its own (its JSON, or the error it ended with)."""
    with tempfile.TemporaryDirectory(prefix="stepwell-bench-") as folder:
        out = Path(folder) / "result.json"
        log = Path(folder) / "log.txt"
        command = [sys.executable, str(HERE / "workloads.py"), name, *options, "--out", str(out)]
        started = time.perf_counter()
        with log.open("w") as sink:
            try:
                done = subprocess.run(
                    command, stdout=sink, stderr=subprocess.STDOUT, timeout=timeout, check=False
                )
                code: int | str = done.returncode
            except subprocess.TimeoutExpired:
                code = f"timed out after {timeout:.0f} s"
        spent = time.perf_counter() - started
        if out.exists():
            print(f"  {name}: {spent:.0f} s", file=sys.stderr)
            result: dict[str, Any] = json.loads(out.read_text())
            return result
        tail = log.read_text().strip().splitlines()[-5:]
        print(f"  {name}: failed ({code}): {' / '.join(tail)}", file=sys.stderr)
        return {"error": f"exit {code}", "log": tail}


def engine() -> dict[str, Any]:
    """engine.py's JSON."""
    done = subprocess.run(
        [sys.executable, str(HERE / "engine.py"), "--repeat", "3"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1:]}
    result: dict[str, Any] = json.loads(done.stdout)
    return result


def commit() -> str:
    """The commit measured (``+changes`` when the work tree differs from it)."""

    def git(*args: str) -> str:
        done = subprocess.run(["git", *args], cwd=ROOT, capture_output=True, text=True, check=False)
        return done.stdout.strip()

    head = git("rev-parse", "--short", "HEAD") or "unknown"
    changed = git("status", "--porcelain", "--untracked-files=no")
    return head + ("+changes" if changed else "")


def main() -> None:
    """Run everything, write results.json, print the tables."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--w4-deadline",
        type=float,
        default=600.0,
        help="seconds W4 may run before it is reported as unfinished",
    )
    parser.add_argument("--skip-peers", action="store_true")
    parser.add_argument("--out", type=Path, default=RESULTS)
    args = parser.parse_args()
    started = time.perf_counter()
    print("benchmarks (figures go to benchmarks/results.json):", file=sys.stderr)
    results: dict[str, Any] = {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "commit": commit(),
        "machine": {
            "cpus": os.cpu_count(),
            "python": platform.python_version(),
            "platform": f"{platform.system()} {platform.machine()}",
        },
        "prices": {
            "source": "list prices, us-east-1 on-demand (benchmarks/meter.py: Prices)",
            "step_functions_standard_per_million": PRICES.step_functions_transition * 1e6,
        },
    }
    results["engine"] = engine()
    print("  engine: done", file=sys.stderr)
    results["workloads"] = {
        "W1": workload("W1", "--repeat", "5"),
        "W3": workload("W3", "--repeat", "5"),
        "W2": workload("W2", "--repeat", "3"),
        "W5": workload("W5", "--repeat", "1", "--deadline", "300"),
        "W4": workload(
            "W4",
            "--repeat",
            "1",
            "--deadline",
            str(args.w4_deadline),
            timeout=args.w4_deadline + 300,
        ),
        "W6": workload("W6", "--repeat", "1", "--deadline", "300"),
        "W7": workload("W7", "--repeat", "1", "--deadline", "600"),
        "W1c": workload("W1c", "--repeat", "3"),
        "W1a": workload("W1a", "--repeat", "3"),
        "W2a": workload("W2a", "--repeat", "3", "--deadline", "120"),
        "W2s": workload("W2s", "--repeat", "1", "--deadline", "900", timeout=1200),
        "W2c": workload("W2c", "--repeat", "3", "--deadline", "120"),
        "W2c90": workload("W2c90", "--repeat", "3", "--deadline", "120"),
    }
    results["later_timers"] = workload("deferred")
    results["cli"] = workload("cli")
    results["peers"] = (
        {}
        if args.skip_peers
        else {p.name: peers.run(p, ["W1", "W2", "W3"], repeat=5) for p in peers.PEERS}
    )
    results["targets"] = targets(results)
    results["bench_s"] = round(time.perf_counter() - started, 1)
    args.out.write_text(json.dumps(results, indent=1) + "\n")
    print(markdown(results))


if __name__ == "__main__":
    main()
