"""Stepwell's workloads through the local stack (template.yaml on moto, real clock), metered.

One workload per process, so each gets a fresh stack and its own peak RSS::

    python benchmarks/workloads.py W1 [--repeat 5]

prints one JSON object: wall times of the measured runs (after one warm-up run, which starts
the functions' containers), the requests and their cost per step, and for W1 and W2 the storage
floor on the same moto. Workloads:

* W1: 100 sequential task steps, each reading the previous step's output;
* W2: a for_each of 100 items (max_parallel 100), then a join;
* W3: a task step, a 1 s delay (the stack's real clock), a task step;
* W4: a for_each of 10,000 items (max_parallel 100), then a join;
* W5: 50 runs of W1 at once;
* W6: a for_each of 1,000 items, all at once (max_parallel 1,000), then a join;
* W1c, W2c: W1 and W2 written as code-first workflows (``code_first.py``): 100 ``ctx.task``
  steps in a line; a ``ctx.map`` of 100 items (``max_concurrency`` 100), then a join task;
  W2c90 is W2c with ``max_concurrency`` 90. Each of their steps is a step-function invocation
  plus a replay of the workflow function (a runner invocation); W1c also records what each
  replay read, step by step.
* W1a, W2a: W1 and W2 as Step Functions machines, run as they are: 100 Task states in a chain;
  a distributed Map of 100 items (100 at once, one engine fan-out), then a join Task.
* W2s: a Step Functions machine whose distributed Map reads its 10,000 items from S3 (an
  ``ItemReader`` of a 10,000-line JSON Lines object, read in ranged chunks) and writes its
  results there (a ``ResultWriter``: the manifest and ``SUCCEEDED_0.json``), 100 at once,
  then a join Task.

Every step runs the no-op step function of ``benchmarks/functions/``, which the benchmark adds to
a copy of template.yaml in a temporary folder (the project's template is not changed).
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import os
import platform
import resource
import shutil
import statistics
import sys
import tempfile
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import boto3

import code_first
import critical_path
import request_costs
from meter import Reading, RequestMeter, TableShape, cost
from request_costs import floor_step
from stepwell.local.client import Client
from stepwell.local.lambdas import Invocation
from stepwell.local.stack import LocalStack
from stepwell.local.template import with_functions

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
NOOP = "BenchNoopFunction"
NOOP_NAME = "BenchNoop"
RUNNER = "RunnerFunction"
"""The function that replays code-first workflows (its logical id in template.yaml)."""

SEQUENTIAL_STEPS = 100
SMALL_FANOUT = 100
LARGE_FANOUT = 10_000
MAX_PARALLEL = 100
WIDE_FANOUT = 1_000
"""W6: this many items, all at once."""
CONCURRENT_RUNS = 50
LIMITED_RUNS, LIMITED_KEYS, LIMIT = 1_000, 10, 2
"""W7: this many one-step runs over this many concurrency keys, at most LIMIT per key at once."""
PLAIN_RUNS = 200
"""W7's comparison: this many of the same one-step runs without flow control."""


# -- the workflows --------------------------------------------------------------------------


def sequential(steps: int = SEQUENTIAL_STEPS) -> dict[str, Any]:
    """``steps`` task steps in a line, each given the previous one's output."""
    body: dict[str, Any] = {"s000": {"function": NOOP, "input": "${input}"}}
    for i in range(1, steps):
        body[f"s{i:03d}"] = {
            "function": NOOP,
            "depends_on": f"s{i - 1:03d}",
            "input": f"${{steps.s{i - 1:03d}.output}}",
        }
    return {"name": "bench-sequential", "steps": body}


def fanout() -> dict[str, Any]:
    """A for_each over ``input.items``, then a join that counts the outputs."""
    return {
        "name": "bench-fanout",
        "steps": {
            "each": {
                "function": NOOP,
                "for_each": "${input.items}",
                "max_parallel": MAX_PARALLEL,
                "input": {"n": "${item}"},
            },
            "join": {
                "function": NOOP,
                "depends_on": "each",
                "input": {"n": "${$count(steps.each.output)}"},
            },
        },
    }


def wide_fanout() -> dict[str, Any]:
    """W6: a for_each whose every item runs at once, then a join."""
    workflow = fanout()
    workflow["name"] = "bench-wide"
    workflow["steps"]["each"]["max_parallel"] = WIDE_FANOUT
    return workflow


def delay() -> dict[str, Any]:
    """A task step, a one-second delay, a task step."""
    return {
        "name": "bench-delay",
        "steps": {
            "before": {"function": NOOP, "input": {"n": 0}},
            "pause": {"type": "delay", "depends_on": "before", "duration": "1s"},
            "after": {"function": NOOP, "depends_on": "pause", "input": {"n": 1}},
        },
    }


def asl_sequential(steps: int = SEQUENTIAL_STEPS) -> dict[str, Any]:
    """W1 as a Step Functions machine: ``steps`` Task states in a chain."""
    states: dict[str, Any] = {}
    for i in range(steps):
        state: dict[str, Any] = {"Type": "Task", "Resource": NOOP}
        if i == steps - 1:
            state["End"] = True
        else:
            state["Next"] = f"s{i + 1:03d}"
        states[f"s{i:03d}"] = state
    return {"Comment": "W1 as ASL", "StartAt": "s000", "States": states}


ASL_SEQUENTIAL = "bench-sequential-asl"


def asl_fanout() -> dict[str, Any]:
    """W2 as a Step Functions machine: a distributed Map of one Task over ``$.items`` (100 at
    once), then a join Task given the number of outputs."""
    item = {"Type": "Task", "Resource": NOOP, "End": True}
    return {
        "Comment": "W2 as ASL",
        "StartAt": "each",
        "States": {
            "each": {
                "Type": "Map",
                "ItemsPath": "$.items",
                "MaxConcurrency": MAX_PARALLEL,
                "ItemSelector": {"n.$": "$$.Map.Item.Value"},
                "ItemProcessor": {
                    "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
                    "StartAt": "item",
                    "States": {"item": item},
                },
                "ResultSelector": {"n.$": "States.ArrayLength($)"},
                "Next": "join",
            },
            "join": {"Type": "Task", "Resource": NOOP, "End": True},
        },
    }


ASL_FANOUT = "bench-fanout-asl"


def asl_s3_fanout() -> dict[str, Any]:
    """W2s: W2a's Map with its items read from S3 and its results written there."""
    machine = asl_fanout()
    machine["Comment"] = "W2 as ASL, items from S3 and results to S3"
    each = machine["States"]["each"]
    del each["ItemsPath"]
    each["ItemReader"] = {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket": S3_BUCKET, "Key.$": "$.key"},
    }
    each["ItemSelector"] = {"n.$": "$$.Map.Item.Value.n"}
    each["ResultWriter"] = {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": S3_BUCKET, "Prefix": "results"},
    }
    each["ResultSelector"] = {"manifest.$": "$.ResultWriterDetails.Key"}
    return machine


ASL_S3_FANOUT = "bench-s3-fanout-asl"
S3_BUCKET = "bench-items"


def one_step(name: str, **flow: Any) -> dict[str, Any]:
    """W7: one task step, with the flow control given (none: the plain comparison)."""
    return {"name": name, **flow, "steps": {"only": {"function": NOOP, "input": "${input}"}}}


WORKFLOWS = (
    sequential(),
    fanout(),
    wide_fanout(),
    delay(),
    one_step("bench-one"),
    one_step("bench-limited", concurrency={"key": "${input.customer}", "limit": LIMIT}),
)

# The code-first twins of W1 and W2 must do the same work.
assert code_first.NOOP == NOOP
assert code_first.SEQUENTIAL_STEPS == SEQUENTIAL_STEPS
assert code_first.MAX_CONCURRENCY == MAX_PARALLEL


def workflows_folder(folder: Path) -> Path:
    """The benchmark's workflows in ``folder``: the YAML ones as files (JSON is YAML) and the
    code-first ones as a copy of ``code_first.py``."""
    folder.mkdir(parents=True, exist_ok=True)
    for workflow in WORKFLOWS:
        (folder / f"{workflow['name']}.yaml").write_text(json.dumps(workflow, indent=1))
    shutil.copy(HERE / "code_first.py", folder / "code_first.py")
    (folder / f"{ASL_SEQUENTIAL}.asl.json").write_text(json.dumps(asl_sequential(), indent=1))
    (folder / f"{ASL_FANOUT}.asl.json").write_text(json.dumps(asl_fanout(), indent=1))
    (folder / f"{ASL_S3_FANOUT}.asl.json").write_text(json.dumps(asl_s3_fanout(), indent=1))
    return folder


def derived_template(folder: Path) -> Path:
    """template.yaml plus the no-op step function, written to ``folder``."""
    return with_functions(ROOT, {NOOP: (HERE / "functions", "noop.handler")}, folder)


# -- the bench: a stack, a meter, an API client -----------------------------------------------


@dataclass
class Outcome:
    """One measured sample: ``runs`` runs started together."""

    wall: float
    """Seconds from the first start request until the last run completed (or the deadline)."""
    cpu: float
    """CPU seconds this process (the stack and moto, every thread) spent over ``wall``: unlike
    the wall time, it does not grow when other jobs share the machine."""
    spent: Reading
    """Requests made from the first start until the stack was idle again."""
    finished: bool = True
    start_errors: list[str] = field(default_factory=list)
    """Start requests the API answered with an error (the runs are found by their events)."""
    replay_errors: list[str] = field(default_factory=list)
    """Runner invocations that ended in an error (with ``stop_on_replay_error``, the sample
    stops at the first: a code-first run waits for its replay's lease to run out)."""


class Bench:
    """A local stack with every client metered and every invocation counted."""

    def __init__(self, folder: Path, *, virtual_time: bool = False) -> None:
        self.meter = RequestMeter().install()
        self.stack = LocalStack(
            ROOT,
            template=derived_template(folder),
            virtual_time=virtual_time,
            schedules=False,
            workflows=workflows_folder(folder / "workflows"),
            environment={
                # One log line per step on stdout is no part of orchestration.
                "POWERTOOLS_LOG_LEVEL": "WARNING",
                "POWERTOOLS_METRICS_DISABLED": "true",
            },
            on_invocation=self._invoked,
        )
        self.stack.start()
        self.table = os.environ["STEPWELL_TABLE"]
        self.dynamodb = boto3.client("dynamodb")
        described = self.dynamodb.describe_table(TableName=self.table)["Table"]
        self.meter.describe(self.table, TableShape.from_description(described))
        self.api = Client(self.stack.url, timeout=120)
        self.step_functions = {f.name for f in self.stack.functions if f.logical_id == NOOP}
        self.runners = {f.name for f in self.stack.functions if f.logical_id == RUNNER}
        self.timer_messages = 0
        """Messages the Scheduler delivered to the timer queue (no client request shows them)."""
        self.replay_marks: list[Reading] | None = None
        """While a list: the meter's totals as each runner invocation (a code-first replay)
        ended, in order."""
        self.replay_errors: list[str] = []
        """``function: error type`` of every runner invocation that ended in an error."""
        self.trails: list[list[str]] | None = None
        """While a list: the requests each step-function invocation made, in order (its
        result's path: the step function itself is a no-op)."""

    def close(self) -> None:
        self.stack.stop()
        self.meter.detach()

    def _invoked(self, record: Invocation) -> None:
        self.meter.invoked(record.function, record.duration_ms)
        if self.meter.tracing:
            # Called on the thread that ran the invocation, as it ends.
            made = self.meter.trail()
            if self.trails is not None and record.function in self.step_functions:
                self.trails.append(made)
        if record.function in self.runners:
            if self.replay_marks is not None:
                self.replay_marks.append(self.meter.reading())
            if record.error_type:
                self.replay_errors.append(f"{record.function}: {record.error_type}")
        if record.source == "sqs":
            # The event source mapping's requests to SQS, invisible here: the receive that got
            # the batch and the delete of its messages.
            self.meter.add("sqs:ReceiveMessage")
            self.meter.add("sqs:DeleteMessageBatch")

    def steps_done(self, spent: Reading) -> int:
        """Step attempts the step function ran."""
        return sum(spent.invocations[f] for f in self.step_functions)

    def replays(self, spent: Reading) -> int:
        """Runner invocations (in W1c and W2c, every one is a replay of the workflow)."""
        return sum(spent.invocations[f] for f in self.runners)

    def run(
        self,
        workflow: str,
        run_input: Any,
        runs: int = 1,
        deadline_s: float = 900.0,
        stop_on_replay_error: bool = False,
        inputs: Callable[[int], Any] | None = None,
    ) -> Outcome:
        """Start ``runs`` runs over HTTP and wait until every one completed (or the deadline,
        or with ``stop_on_replay_error`` a runner invocation that failed)."""
        before = self.meter.reading()
        replay_errors = len(self.replay_errors)
        started_before = {e["detail"]["run_id"] for e in self.stack.events("run.started")}
        # Runs' ends as they are put on the bus: reading the whole event log again on every
        # change of the stack would make waiting for N runs cost O(N²).
        ended: deque[dict[str, Any]] = deque()
        unsubscribe = self.stack.listen(
            lambda event: (
                ended.append(event["detail"])
                if event.get("detail-type") == "run.completed"
                else None
            )
        )
        t0, c0 = time.perf_counter(), time.process_time()
        pending: set[str] = set()
        errors: list[str] = []
        for n in range(runs):
            reply = self.api.start_run(workflow, run_input if inputs is None else inputs(n))
            if reply.ok:
                pending.add(reply.body["run_id"])
            else:
                errors.append(f"{reply.status} {reply.text[:200]}")
        if errors:
            # The run may well have started: its run.started event names it.
            fresh = {
                e["detail"]["run_id"]
                for e in self.stack.events("run.started")
                if e["detail"].get("workflow") == workflow
            }
            pending |= fresh - started_before
        statuses: dict[str, Any] = {}

        def done() -> bool:
            if stop_on_replay_error and len(self.replay_errors) > replay_errors:
                return True
            while ended:
                detail = ended.popleft()
                if detail["run_id"] in pending:
                    pending.discard(detail["run_id"])
                    statuses[detail["run_id"]] = detail.get("status")
            return not pending

        left = deadline_s - (time.perf_counter() - t0)
        try:
            finished = self.stack.run_until(done, timeout=max(left, 0.0)) and not pending
        finally:
            unsubscribe()
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        bad = {k: v for k, v in statuses.items() if v != "succeeded"}
        assert not bad, f"runs that did not succeed: {bad}"
        if finished:
            assert self.stack.wait_idle(timeout=120), "the stack did not settle"
        return Outcome(
            wall,
            cpu,
            self.meter.reading() - before,
            finished,
            errors,
            self.replay_errors[replay_errors:],
        )

    def settle_timers(self) -> Reading:
        """Virtual time only: let every pending one-time schedule fire (the stack's clock jumps
        to each) and return what their handling cost."""
        assert self.stack.clock.virtual and self.stack.schedules is not None
        schedules = self.stack.schedules
        before = self.meter.reading()
        fired = sum(1 for s in schedules.all() if s.one_time and s.next_at is not None)

        def all_fired() -> bool:
            return schedules.next_due(one_time_only=True) is None and self.stack.idle()

        assert self.stack.run_until(all_fired, timeout=120), "timers did not fire"
        assert self.stack.wait_idle(timeout=60)
        spent = self.meter.reading() - before
        # Each one-time schedule sent its message to the timer queue: an SQS request.
        spent.calls["sqs:SendMessage"] += fired
        spent.sqs_messages += fired
        spent.sqs_chunks += fired
        return spent

    def traced(self, workflow: str, run_input: Any) -> list[list[str]]:
        """One more run of ``workflow``, untimed, keeping what each step-function invocation
        requested, in order."""
        self.trails, self.meter.tracing = [], True
        try:
            self.run(workflow, run_input)
            return self.trails
        finally:
            self.trails, self.meter.tracing = None, False

    def floor(self, steps: int, run: str) -> tuple[float, float, Reading]:
        """The storage floor: per step, the two conditional writes any durable engine needs
        (the step started, the step's result), in a bare loop on the same table and moto."""
        before = self.meter.reading()
        t0, c0 = time.perf_counter(), time.process_time()
        for i in range(steps):
            floor_step(self.dynamodb, self.table, run, i)
        wall, cpu = time.perf_counter() - t0, time.process_time() - c0
        return wall, cpu, self.meter.reading() - before


# -- measuring ------------------------------------------------------------------------------


def measure(action: Callable[[], Outcome], repeat: int) -> list[Outcome]:
    """``repeat`` samples, stopping early after one that did not finish."""
    outcomes: list[Outcome] = []
    for _ in range(repeat):
        outcomes.append(action())
        if not outcomes[-1].finished:
            break
    return outcomes


def figures(bench: Bench, outcomes: list[Outcome], steps_per_sample: int) -> dict[str, Any]:
    """What the table shows for one workload. A sample that did not finish counts the steps
    its step function ran."""
    spent = Reading()
    for outcome in outcomes:
        spent = spent + outcome.spent
    walls = [o.wall for o in outcomes]
    finished = all(o.finished for o in outcomes)
    steps = steps_per_sample * len(outcomes) if finished else bench.steps_done(spent)
    median = statistics.median(walls)
    cpu = statistics.median(o.cpu for o in outcomes)
    priced = cost(spent, excluded_functions=bench.step_functions)
    orchestrator = sum(n for f, n in spent.invocations.items() if f not in bench.step_functions)
    replays = bench.replays(spent)
    per_step = max(steps, 1)
    return {
        "samples": len(outcomes),
        "steps_per_sample": steps_per_sample,
        "finished": finished,
        "steps_measured": steps,
        "start_errors": [e for o in outcomes for e in o.start_errors],
        "replay_errors": [e for o in outcomes for e in o.replay_errors],
        "wall_s": [round(w, 3) for w in walls],
        "wall_median_s": round(median, 3),
        "steps_per_s": round((steps / len(outcomes)) / median, 2),
        "cpu_median_s": round(cpu, 3),
        "steps_per_cpu_s": round((steps / len(outcomes)) / cpu, 2) if cpu else None,
        "requests_per_step": round(sum(spent.calls.values()) / per_step, 3),
        "dynamodb_writes_per_step": round(spent.writes / per_step, 3),
        "dynamodb_reads_per_step": round(spent.reads / per_step, 3),
        "conflicts_per_step": round(spent.errors["dynamodb:TransactWriteItems"] / per_step, 3),
        "write_units_per_step": round((spent.write_units + spent.index_write_units) / per_step, 3),
        "index_write_units_per_step": round(spent.index_write_units / per_step, 3),
        "failed_write_units_per_step": round(spent.failed_write_units / per_step, 3),
        "read_units_per_step": round(spent.billed_read_units / per_step, 3),
        "bytes_written_per_step": round(spent.bytes_written / per_step, 1),
        "timers_per_step": round(spent.schedules_created / per_step, 3),
        "orchestrator_invocations_per_step": round(orchestrator / per_step, 4),
        "step_invocations_per_step": round(bench.steps_done(spent) / per_step, 4),
        "replay_invocations_per_step": round(replays / per_step, 4),
        "lambda_invocations_per_step": round(sum(spent.invocations.values()) / per_step, 4),
        "items_read_per_step": round(spent.items_read / per_step, 2),
        "cost_per_million_steps": {k: round(v, 4) for k, v in priced.per_million(per_step).items()},
        "largest_item_bytes": spent.largest_item,
        "requests_per_sample": {
            k: round(v / len(outcomes), 1) for k, v in sorted(spent.calls.items())
        },
        "errors_per_sample": {
            k: round(v / len(outcomes), 1) for k, v in sorted(spent.errors.items())
        },
        "invocations_per_sample": {
            k: round(v / len(outcomes), 1) for k, v in sorted(spent.invocations.items())
        },
        "invocation_ms_mean": {
            k: round(v / max(spent.invocations[k], 1), 1)
            for k, v in sorted(spent.invocation_ms.items())
        },
    }


def floor_figures(samples: list[tuple[float, float, Reading]], steps: int) -> dict[str, Any]:
    """The storage floor's figures (same shape as the workloads' where they compare)."""
    spent = Reading()
    for _, _, reading in samples:
        spent = spent + reading
    median = statistics.median(w for w, _, _ in samples)
    cpu = statistics.median(c for _, c, _ in samples)
    total = steps * len(samples)
    return {
        "samples": len(samples),
        "steps_per_sample": steps,
        "wall_median_s": round(median, 4),
        "steps_per_s": round(steps / median, 2),
        "cpu_median_s": round(cpu, 4),
        "steps_per_cpu_s": round(steps / cpu, 2) if cpu else None,
        "requests_per_step": round(sum(spent.calls.values()) / total, 3),
        "write_units_per_step": round((spent.write_units + spent.index_write_units) / total, 3),
        "cost_per_million_steps": {
            k: round(v, 4) for k, v in cost(spent).per_million(total).items()
        },
    }


def peak_rss_mb() -> float:
    """This process's peak resident set size (getrusage; kilobytes on Linux)."""
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    return round(peak / (1024 * 1024 if sys.platform == "darwin" else 1024), 1)


# -- the workloads --------------------------------------------------------------------------

W1_STEPS = SEQUENTIAL_STEPS
REQUESTS_ALONE_SENDS = 300
"""Sends of each of a W1 step's requests for its ceiling (``request_costs.measure``)."""
W2_STEPS = SMALL_FANOUT + 1  # the children and the join
W3_STEPS = 3  # a task, the delay, a task


def w1(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    def one() -> Outcome:
        return bench.run("bench-sequential", {"n": 0})

    one()  # warm-up: the functions' containers start
    result = figures(bench, measure(one, args.repeat), W1_STEPS)
    floors = [bench.floor(W1_STEPS, f"w1-{i}") for i in range(args.repeat + 1)][1:]
    result["floor"] = floor_figures(floors, W1_STEPS)
    # The ceiling: a W1 step's three requests sent bare on this stack's table and moto.
    result["requests_alone"] = request_costs.measure(
        bench.dynamodb, bench.table, "w1", REQUESTS_ALONE_SENDS
    )
    result["critical_path"] = critical_path.of_chain(bench.traced("bench-sequential", {"n": 0}))
    return result


def w2(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    def one() -> Outcome:
        return bench.run("bench-fanout", {"items": list(range(SMALL_FANOUT))})

    bench.run("bench-fanout", {"items": list(range(10))})  # warm-up
    result = figures(bench, measure(one, args.repeat), W2_STEPS)
    floors = [bench.floor(W2_STEPS, f"w2-{i}") for i in range(args.repeat + 1)][1:]
    result["floor"] = floor_figures(floors, W2_STEPS)
    traced = bench.traced("bench-fanout", {"items": list(range(SMALL_FANOUT))})
    result["critical_path"] = critical_path.of_fan_in(traced)
    return result


def w3(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    def one() -> Outcome:
        return bench.run("bench-delay", None)

    one()
    result = figures(bench, measure(one, args.repeat), W3_STEPS)
    result["overhead_beyond_delay_s"] = round(result["wall_median_s"] - 1.0, 3)
    return result


def large_fanout(
    bench: Bench, args: argparse.Namespace, workflow: str, items: int
) -> dict[str, Any]:
    """One run of ``workflow`` over ``items`` items (after a warm-up of 10), within the
    deadline; its steps are the children and the join."""

    def one() -> Outcome:
        return bench.run(workflow, {"items": list(range(items))}, deadline_s=args.deadline)

    bench.run(workflow, {"items": list(range(10))})  # warm-up
    return figures(bench, measure(one, args.repeat), items + 1)


def w4(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    return large_fanout(bench, args, "bench-fanout", LARGE_FANOUT)


def w6(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    return large_fanout(bench, args, "bench-wide", WIDE_FANOUT)


def w5(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    def one() -> Outcome:
        return bench.run(
            "bench-sequential", {"n": 0}, runs=CONCURRENT_RUNS, deadline_s=args.deadline
        )

    bench.run("bench-sequential", {"n": 0})  # warm-up
    return figures(bench, measure(one, args.repeat), W1_STEPS * CONCURRENT_RUNS)


def w1a(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """W1 as a Step Functions machine (100 Task states in a chain), run as it is."""

    def one() -> Outcome:
        return bench.run(ASL_SEQUENTIAL, {"n": 0})

    one()  # warm-up
    return figures(bench, measure(one, args.repeat), W1_STEPS)


def w2a(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """W2 as a Step Functions machine (a distributed Map of 100 items, then a join)."""

    def one() -> Outcome:
        return bench.run(ASL_FANOUT, {"items": list(range(SMALL_FANOUT))}, deadline_s=args.deadline)

    bench.run(ASL_FANOUT, {"items": list(range(10))})  # warm-up
    return figures(bench, measure(one, args.repeat), W2_STEPS)


def w2s(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """W2a's Map over the 10,000 lines of an S3 object, its results written to S3 (the object
    is put before the samples, unmetered)."""
    s3 = boto3.client("s3")
    s3.create_bucket(Bucket=S3_BUCKET)
    for key, lines in (("warm.jsonl", 10), ("items.jsonl", LARGE_FANOUT)):
        body = "".join(json.dumps({"n": n}) + "\n" for n in range(lines))
        s3.put_object(Bucket=S3_BUCKET, Key=key, Body=body.encode())

    def one() -> Outcome:
        return bench.run(ASL_S3_FANOUT, {"key": "items.jsonl"}, deadline_s=args.deadline)

    bench.run(ASL_S3_FANOUT, {"key": "warm.jsonl"})  # warm-up
    return figures(bench, measure(one, args.repeat), LARGE_FANOUT + 1)


def w1c(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """W1 as a code-first workflow; each sample also records the meter at every replay's end,
    so what one step spent can be told apart for its first and last steps."""
    windows: list[list[Reading]] = []

    def one() -> Outcome:
        bench.replay_marks = []
        try:
            outcome = bench.run("bench-sequential-code", {"n": 0})
        finally:
            marks, bench.replay_marks = bench.replay_marks, None
        windows.append([later - earlier for earlier, later in itertools.pairwise(marks)])
        return outcome

    bench.run("bench-sequential-code", {"n": 0, "steps": 5})  # warm-up
    result = figures(bench, measure(one, args.repeat), W1_STEPS)
    result["replay_growth"] = replay_growth(windows, GROWTH_STEPS)
    # The same chain at other lengths: what a step reads must not grow with the run.
    by_length: dict[str, float] = {}
    for steps in CODE_CHAIN_LENGTHS:
        bench.replay_marks = None
        outcome = bench.run("bench-sequential-code", {"n": 0, "steps": steps})
        by_length[str(steps)] = figures(bench, [outcome], steps)["items_read_per_step"]
    result["items_read_by_length"] = by_length
    return result


CODE_CHAIN_LENGTHS = (50, 100, 200)
"""W1c's lengths for its sweep of items read per step."""


def code_fanout(bench: Bench, args: argparse.Namespace, at_once: int) -> dict[str, Any]:
    """W2 as a code-first workflow, ``at_once`` items at a time. A replay that fails ends the
    measurement (the run would wait for the replay's lease, 15.5 minutes)."""

    def one() -> Outcome:
        items = {"items": list(range(SMALL_FANOUT)), "max_concurrency": at_once}
        return bench.run(
            "bench-fanout-code", items, deadline_s=args.deadline, stop_on_replay_error=True
        )

    bench.run("bench-fanout-code", {"items": list(range(10))})  # warm-up
    result = figures(bench, measure(one, args.repeat), W2_STEPS)
    result["max_concurrency"] = at_once
    if not result["finished"]:
        why = ", ".join(sorted(set(result["replay_errors"]))) or "the deadline passed"
        result["error"] = f"run did not finish ({why}; {result['steps_measured']} steps ran)"
    return result


def w2c(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    return code_fanout(bench, args, MAX_PARALLEL)


def w2c90(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    return code_fanout(bench, args, W2C_LOWER_CONCURRENCY)


W2C_LOWER_CONCURRENCY = 90
"""W2c's concurrency in the variant ``W2c90``: fewer steps issued by one replay than W2c."""


GROWTH_STEPS = 10


def replay_growth(samples: list[list[Reading]], span: int) -> dict[str, Any]:
    """What one sequential step spent (from one replay's end to the next: the step function's
    invocation and the replay that follows it), over the first and the last ``span`` steps of
    every sample (the last before the final replay, which ends the run and runs its retention
    pass). The end of an invocation is seen a moment after the next one has begun, so a
    window can hold a request or two of its neighbour; over ``span`` steps that averages out."""

    def per_step(windows: list[Reading]) -> dict[str, float]:
        spent = Reading()
        for window in windows:
            spent = spent + window
        n = max(len(windows), 1)
        return {
            "dynamodb_reads": round(spent.reads / n, 2),
            "items_read": round(spent.items_read / n, 1),
            "read_units": round(spent.billed_read_units / n, 2),
            "kb_read": round(spent.bytes_read / n / 1024, 1),
            "requests": round(sum(spent.calls.values()) / n, 2),
        }

    complete = [w for w in samples if len(w) > 2 * span]
    return {
        "span": span,
        "samples": len(complete),
        "first": per_step([x for w in complete for x in w[:span]]),
        "last": per_step([x for w in complete for x in w[-span - 1 : -1]]),
    }


def cli_run(folder: Path) -> dict[str, Any]:
    """``stepwell run`` of a for_each of 1,000 no-op items, as a user runs it: wall time and
    the peak RSS of that process (a child of this one)."""
    import subprocess

    template = derived_template(folder)
    workflows = workflows_folder(folder / "workflows")
    items = folder / "items.json"
    items.write_text(json.dumps({"items": list(range(WIDE_FANOUT))}))
    command = [
        str(Path(sys.executable).with_name("stepwell")),
        "run",
        "bench-wide",
        "--input",
        f"@{items}",
        "--json",
        "--timeout",
        "300",
        "--project",
        str(ROOT),
        "--template",
        str(template),
        "--workflows",
        str(workflows),
    ]
    environment = {**os.environ, "POWERTOOLS_LOG_LEVEL": "WARNING"}
    t0 = time.perf_counter()
    done = subprocess.run(command, env=environment, capture_output=True, text=True, check=False)
    wall = time.perf_counter() - t0
    status = None
    with contextlib.suppress(ValueError):
        status = json.loads(done.stdout).get("status")
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    peak = children.ru_maxrss / 1024
    return {
        "items": WIDE_FANOUT,
        "status": status,
        "exit": done.returncode,
        "wall_s": round(wall, 2),
        "cpu_s": round(children.ru_utime + children.ru_stime, 2),
        "peak_rss_mb": round(peak, 1),
        **({"stderr": done.stderr[-2000:]} if done.returncode else {}),
    }


def deferred(folder: Path) -> dict[str, Any]:
    """What a run's timers cost when they fire after it ended (each dispatched attempt's lease
    timer, due 15.5 minutes later): W1 once on a virtual-time stack, then every timer fired."""
    bench = Bench(folder, virtual_time=True)
    try:
        with bench.stack.hold():
            outcome = bench.run("bench-sequential", {"n": 0})
        timers = outcome.spent.schedules_created
        later = bench.settle_timers()
    finally:
        bench.close()
    priced = cost(later, excluded_functions=bench.step_functions)
    return {
        "timers": timers,
        "requests_per_timer": {
            k: round(v / max(timers, 1), 3) for k, v in sorted(later.calls.items())
        },
        "invocations_per_timer": {
            k: round(v / max(timers, 1), 3) for k, v in sorted(later.invocations.items())
        },
        "cost_per_million_timers": {
            k: round(v, 4) for k, v in priced.per_million(max(timers, 1)).items()
        },
    }


def w7(bench: Bench, args: argparse.Namespace) -> dict[str, Any]:
    """1,000 one-step runs over 10 concurrency keys with a limit of 2, started at once (most
    wait queued), beside the same runs without flow control: per run, and what a key adds."""

    def customer(n: int) -> dict[str, Any]:
        return {"customer": f"c{n % LIMITED_KEYS}", "n": n}

    bench.run("bench-limited", None, runs=LIMITED_KEYS, inputs=customer)  # warm-up
    plain = figures(
        bench,
        [bench.run("bench-one", None, runs=PLAIN_RUNS, inputs=customer)],
        PLAIN_RUNS,
    )
    result = figures(
        bench,
        measure(
            lambda: bench.run(
                "bench-limited",
                None,
                runs=LIMITED_RUNS,
                deadline_s=args.deadline,
                inputs=customer,
            ),
            args.repeat,
        ),
        LIMITED_RUNS,
    )
    result["plain"] = plain
    result["extra_requests_per_run"] = round(
        result["requests_per_step"] - plain["requests_per_step"], 3
    )
    return result


WORKLOADS: dict[str, Callable[[Bench, argparse.Namespace], dict[str, Any]]] = {
    "W1": w1,
    "W2": w2,
    "W3": w3,
    "W4": w4,
    "W5": w5,
    "W6": w6,
    "W1c": w1c,
    "W1a": w1a,
    "W2a": w2a,
    "W2s": w2s,
    "W2c": w2c,
    "W2c90": w2c90,
    "W7": w7,
}


def main() -> None:
    """Run one workload and print its figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("workload", choices=[*sorted(WORKLOADS), "deferred", "cli"])
    parser.add_argument("--repeat", type=int, default=5, help="measured samples")
    parser.add_argument(
        "--deadline", type=float, default=900.0, help="seconds a sample may take (W4, W5)"
    )
    parser.add_argument("--out", type=Path, help="write the JSON here (default: stdout)")
    args = parser.parse_args()
    t0 = time.perf_counter()
    bench_executions: list[int] = []
    with tempfile.TemporaryDirectory(prefix="stepwell-bench-") as tmp:
        if args.workload == "deferred":
            result = deferred(Path(tmp))
        elif args.workload == "cli":
            result = cli_run(Path(tmp))
        else:
            bench = Bench(Path(tmp))
            try:
                result = WORKLOADS[args.workload](bench, args)
                assert bench.stack.emulator is not None
                bench_executions = list(bench.stack.emulator.executions.values())
            finally:
                bench.close()
    result["workload"] = args.workload
    if args.workload in WORKLOADS:
        # Step-function executions per attempt, over every sample: more than 1 is a defect.
        result["max_executions_per_attempt"] = max(bench_executions or [0])
    result["process_s"] = round(time.perf_counter() - t0, 2)
    result.setdefault("peak_rss_mb", peak_rss_mb())
    result["python"] = platform.python_version()
    text = json.dumps(result)
    if args.out:
        args.out.write_text(text)
    else:
        print(text)


if __name__ == "__main__":
    main()
