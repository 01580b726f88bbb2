"""The targets and the printed tables, from the figures ``run.py`` gathered."""

from __future__ import annotations

from typing import Any

import critical_path

CODE_FIRST = {"W1c": "W1", "W1a": "W1", "W2c": "W2", "W2a": "W2", "W2s": "W4", "W2c90": "W2"}
"""The code-first workloads (W1a: a Step Functions machine, run as a code-first interpretation)
and the YAML workload each one is the twin of."""
STEP_FUNCTIONS_PER_MILLION = 25.0
"""Step Functions Standard: $25 per million state transitions (one per task step)."""
MAX_ITEM_BYTES = 350 * 1024
W1_TARGET = 0.35
"""W1's steps/s over the storage floor's (issue 32)."""


def later_timer_cost(results: dict[str, Any]) -> float:
    """Dollars per lease timer that fires after its run ended (measured by ``deferred``)."""
    later = results.get("later_timers") or {}
    per_million = (later.get("cost_per_million_timers") or {}).get("total")
    return float(per_million) / 1e6 if per_million is not None else 0.0


def all_in(results: dict[str, Any], name: str) -> float | None:
    """A workload's dollars per million steps, its lease timers' later firing included."""
    figures = results["workloads"].get(name) or {}
    cost = (figures.get("cost_per_million_steps") or {}).get("total")
    if cost is None:
        return None
    return float(cost) + figures.get("timers_per_step", 0.0) * later_timer_cost(results) * 1e6


def ceiling(w1: dict[str, Any]) -> dict[str, float] | None:
    """W1's CPU per step beside its three requests sent bare on the same moto (``request_costs``,
    measured in the W1 process) and the floor's step: what the rest of a step costs (the Lambda
    emulator and the Invoke, the handlers, the engine, the store), the best W1/floor by CPU time
    could be if that rest cost nothing, and what the target leaves for it. None when W1 has no
    such figures."""
    alone = (w1.get("requests_alone") or {}).get("W1 step (3 requests)")
    floor_cpu = (w1.get("floor") or {}).get("steps_per_cpu_s")
    mine_cpu = w1.get("steps_per_cpu_s")
    if not (alone and floor_cpu and mine_cpu):
        return None
    step_ms, floor_ms = 1000 / mine_cpu, 1000 / floor_cpu
    return {
        "step_ms": round(step_ms, 3),
        "requests_ms": alone,
        "floor_ms": round(floor_ms, 3),
        "overhead_ms": round(step_ms - alone, 3),
        "ceiling_ratio": round(floor_ms / alone, 3),
        "allowed_overhead_ms": round(floor_ms / W1_TARGET - alone, 3),
    }


def targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """Each target of the hot-path issue with the figure it is judged on and whether it is
    met."""
    w = results["workloads"]
    w1, w2, w4, w6 = (w.get(n) or {} for n in ("W1", "W2", "W4", "W6"))
    found: list[dict[str, Any]] = []

    def judge(target: str, measured: Any, met: bool | None, note: str = "") -> None:
        found.append({"target": target, "measured": measured, "met": met, "note": note})

    def dollars(name: str, limit: float) -> None:
        cost = all_in(results, name)
        if cost is not None:
            judge(
                f"{name}: orchestration <= ${limit:.2f} per million steps",
                round(cost, 2),
                cost <= limit,
                f"{cost / STEP_FUNCTIONS_PER_MILLION:.2f}x Step Functions Standard",
            )

    dollars("W1", 2.0)
    if "dynamodb_writes_per_step" in w1:
        writes, reads = w1["dynamodb_writes_per_step"], w1["dynamodb_reads_per_step"]
        judge(
            "W1: <= 2 DynamoDB writes and <= 1.2 reads per step",
            f"{writes} / {reads}",
            writes <= 2 and reads <= 1.2,
            "requests, the run's start and end included",
        )
    floor = (w1.get("floor") or {}).get("steps_per_s")
    if floor and "steps_per_s" in w1:
        ratio = w1["steps_per_s"] / floor
        floor_cpu = (w1.get("floor") or {}).get("steps_per_cpu_s")
        by_cpu = (
            f"; by CPU time {w1['steps_per_cpu_s'] / floor_cpu:.3f}"
            if floor_cpu and w1.get("steps_per_cpu_s")
            else ""
        )
        judge(
            f"W1: steps/s >= {W1_TARGET}x the storage floor's (same process)",
            round(ratio, 3),
            ratio >= W1_TARGET,
            f"{w1['steps_per_s']} vs {floor} steps/s{by_cpu}",
        )
    bare = ceiling(w1)
    if bare is not None:
        judge(
            "W1: overhead beyond its three requests, ms CPU per step "
            f"(<= what {W1_TARGET}x the floor by CPU leaves)",
            bare["overhead_ms"],
            bare["overhead_ms"] <= bare["allowed_overhead_ms"],
            f"a step {bare['step_ms']} ms, its requests sent bare {bare['requests_ms']} ms, "
            f"the floor's step {bare['floor_ms']} ms: "
            + (
                f"{W1_TARGET}x leaves {bare['allowed_overhead_ms']} ms"
                if bare["allowed_overhead_ms"] >= 0
                else f"{W1_TARGET}x is out of reach whatever the rest costs (the requests alone "
                f"are {-bare['allowed_overhead_ms']} ms over it)"
            )
            + f"; with no overhead at all W1/floor by CPU would be {bare['ceiling_ratio']}",
        )
    dollars("W2", 3.0)
    if "conflicts_per_step" in w2:
        judge(
            "W2: <= 0.02 failed commits per step",
            w2["conflicts_per_step"],
            w2["conflicts_per_step"] <= 0.02,
        )
    if "requests_per_step" in w4 and "requests_per_step" in w2:
        ratio = w4["requests_per_step"] / w2["requests_per_step"]
        judge(
            "W4 (10,000 items): finishes; requests per item <= 1.2x W2's",
            round(ratio, 3),
            bool(w4.get("finished")) and ratio <= 1.2,
            f"{w4['requests_per_step']} vs {w2['requests_per_step']}; "
            + (
                f"finished in {w4['wall_median_s']} s"
                if w4.get("finished")
                else f"unfinished ({w4['steps_measured']} items)"
            ),
        )
    if w4.get("finished"):
        judge(
            "W4 (10,000 items, max_parallel 100): finishes in < 240 s",
            w4["wall_median_s"],
            w4["wall_median_s"] < 240,
            "seconds, wall",
        )
    dollars("W4", 3.0)
    if "conflicts_per_step" in w6:
        judge(
            "W6 (1,000 items at once): finishes; <= 0.02 failed commits per item",
            w6["conflicts_per_step"],
            bool(w6.get("finished")) and w6["conflicts_per_step"] <= 0.02,
            f"wall {w6.get('wall_median_s')} s",
        )
    executions = [f.get("max_executions_per_attempt") for f in w.values() if isinstance(f, dict)]
    seen = [e for e in executions if e is not None]
    if seen:
        judge(
            "step-function executions per attempt: exactly 1",
            max(seen),
            max(seen) <= 1,
            "the most any attempt's envelope was run, over every workload",
        )
    found += code_first_targets(results)
    cli = results.get("cli") or {}
    if "wall_s" in cli:
        judge(
            "`stepwell run` of a 1,000-item for_each: < 20 s, peak RSS < 400 MB",
            f"{cli['wall_s']} s / {cli['peak_rss_mb']} MB",
            cli.get("status") == "succeeded" and cli["wall_s"] < 20 and cli["peak_rss_mb"] < 400,
            f"run {cli.get('status')}",
        )
    sizes = [f.get("largest_item_bytes", 0) for f in w.values() if isinstance(f, dict)]
    if sizes:
        largest = max(sizes)
        judge(
            "no item over 350 KB",
            largest,
            largest <= MAX_ITEM_BYTES,
            "largest item written, bytes"
            + ("" if w4.get("finished", True) else " (W4 did not reach its gather)"),
        )
    return found


def code_first_targets(results: dict[str, Any]) -> list[dict[str, Any]]:
    """W1c and W2c judged on the code-first targets, with the YAML twin's figure beside."""
    w = results["workloads"]
    found: list[dict[str, Any]] = []
    for name, yaml in (("W1c", "W1"), ("W2c", "W2")):
        figures = w.get(name) or {}
        if "error" in figures or "cost_per_million_steps" not in figures:
            continue
        cost, yaml_cost = all_in(results, name), all_in(results, yaml)
        assert cost is not None
        found.append(
            {
                "target": f"{name} (code-first): orchestration <= $3.00 per million steps",
                "measured": round(cost, 2),
                "met": cost <= 3.0,
                "note": f"YAML {yaml}: {_cell(round(yaml_cost, 2) if yaml_cost else None)}",
            }
        )
    sweep = (w.get("W1c") or {}).get("items_read_by_length") or {}
    if sweep:
        reads = {int(n): v for n, v in sweep.items()}
        ratio = max(reads.values()) / max(min(reads.values()), 1e-9)
        found.append(
            {
                "target": "W1c: items read per step flat in N (largest <= 1.2x smallest)",
                "measured": " / ".join(f"{reads[n]}" for n in sorted(reads)),
                "met": ratio <= 1.2,
                "note": "N = " + " / ".join(str(n) for n in sorted(reads)),
            }
        )
    return found


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, float):
        return f"{value:,.3g}" if abs(value) < 100 else f"{value:,.0f}"
    return str(value)


def markdown(results: dict[str, Any]) -> str:
    """The tables ``make bench`` prints (and docs/performance.md shows)."""
    lines = [
        f"Measured {results['date']}, commit {results['commit']}, "
        f"{results['machine']['cpus']} CPUs, Python {results['machine']['python']}.",
        "",
        "| workload | wall (median) s | steps/s | requests/step | DDB writes/step "
        "| DDB reads/step | conflicts/step | WCU+RCU/step | $/M steps | x SFN | peak RSS MB |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    titles = {
        "W1": "W1 100 sequential steps",
        "W2": "W2 for_each 100 + join",
        "W3": "W3 step, 1 s delay, step",
        "W4": "W4 for_each 10,000 (100 at once)",
        "W5": "W5 50 x W1 at once",
        "W6": "W6 for_each 1,000 (all at once)",
        "W7": "W7 1,000 one-step runs, 10 concurrency keys, limit 2 (per run)",
        "W1c": "W1c code-first W1: 100 ctx.task in a line",
        "W1a": "W1a W1 as a Step Functions machine: 100 Task states in a chain",
        "W2a": "W2a W2 as a Step Functions machine: a distributed Map of 100 + join",
        "W2s": "W2s W2a over S3: a distributed Map of 10,000 items read by ItemReader, "
        "results by ResultWriter (100 at once) + join",
        "W2c": "W2c code-first W2: ctx.map 100 (100 at once) + join",
        "W2c90": "W2c90 as W2c, 90 at once",
    }
    for name in ("W1", "W2", "W3", "W4", "W5", "W6", "W7", *CODE_FIRST):
        f = results["workloads"].get(name)
        if f is None and name in CODE_FIRST:
            continue
        f = f or {}
        if "error" in f or not f:
            lines.append(f"| {titles[name]} | failed: {f.get('error', 'not run')} |")
            continue
        cost = all_in(results, name)
        units = f["write_units_per_step"] + f["read_units_per_step"]
        title = titles[name]
        if not f.get("finished", True):
            title += f" (unfinished: {f['steps_measured']} items in {f['wall_s'][0]:.0f} s)"
        lines.append(
            "| "
            + " | ".join(
                [
                    title,
                    _cell(f["wall_median_s"]),
                    _cell(f["steps_per_s"]),
                    _cell(f["requests_per_step"]),
                    _cell(f["dynamodb_writes_per_step"]),
                    _cell(f["dynamodb_reads_per_step"]),
                    _cell(f["conflicts_per_step"]),
                    _cell(units),
                    f"{cost:.2f}" if cost is not None else "-",
                    f"{cost / STEP_FUNCTIONS_PER_MILLION:.2f}" if cost is not None else "-",
                    _cell(f["peak_rss_mb"]),
                ]
            )
            + " |"
        )
    lines += [
        "",
        "| workload | Stepwell steps/s | storage floor steps/s | Stepwell/floor "
        "| Stepwell/floor by CPU time | DBOS (SQLite) steps/s | durable SDK test runner steps/s |",
        "|---|---|---|---|---|---|---|",
    ]
    peers = results.get("peers") or {}
    for name in ("W1", "W2", "W3"):
        f = results["workloads"].get(name) or {}
        floor = (f.get("floor") or {}).get("steps_per_s")
        mine = f.get("steps_per_s")
        floor_cpu = (f.get("floor") or {}).get("steps_per_cpu_s")
        mine_cpu = f.get("steps_per_cpu_s")
        cells = [
            name,
            _cell(mine),
            _cell(floor),
            f"{mine / floor:.2f}" if mine and floor else "-",
            f"{mine_cpu / floor_cpu:.2f}" if mine_cpu and floor_cpu else "-",
        ]
        for peer in ("dbos", "durable"):
            found = peers.get(peer) or {}
            figure = found.get(name) or {}
            cells.append("skipped" if "skipped" in found else _cell(figure.get("steps_per_s")))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ceiling_lines(results["workloads"].get("W1") or {})
    w3 = results["workloads"].get("W3") or {}
    extra = [f"W3 overhead beyond the 1 s delay: Stepwell {w3.get('overhead_beyond_delay_s')} s"]
    for peer in ("dbos", "durable"):
        figure = (peers.get(peer) or {}).get("W3") or {}
        if "wall_median_s" in figure:
            extra.append(f"{peer} {figure['wall_median_s'] - 1:.3f} s")
    lines += ["", "; ".join(extra) + "."]
    later = results.get("later_timers") or {}
    if "cost_per_million_timers" in later:
        lines.append(
            "Lease timers firing after their run ended: "
            f"${later['cost_per_million_timers']['total']:.2f} per million timers "
            "(included in $/M steps above)."
        )
    cli = results.get("cli") or {}
    if "wall_s" in cli:
        lines.append(
            f"`stepwell run` of a for_each of {cli['items']} no-op items: {cli['wall_s']} s "
            f"({cli.get('cpu_s')} s of CPU), peak RSS {cli['peak_rss_mb']} MB, "
            f"run {cli.get('status')}."
        )
    lines += critical_path.lines(results)
    lines += code_first_table(results)
    lines += ["", "| target | measured | met | note |", "|---|---|---|---|"]
    for t in results.get("targets") or []:
        met = "pass" if t["met"] else "FAIL"
        lines.append(f"| {t['target']} | {_cell(t['measured'])} | {met} | {t['note']} |")
    lines += ["", f"make bench took {results.get('bench_s')} s."]
    return "\n".join(lines)


def ceiling_lines(w1: dict[str, Any]) -> list[str]:
    """What the floor table leaves out: W1's ceiling and what the rest of its step costs."""
    bare = ceiling(w1)
    if bare is None:
        return []
    return [
        "",
        f"W1's ceiling: its three requests sent bare on the same moto cost "
        f"{bare['requests_ms']} ms of CPU per step against the floor's {bare['floor_ms']} ms, "
        f"so W1/floor by CPU time is at most {bare['ceiling_ratio']} even if nothing else cost "
        f"anything; the rest of a W1 step (the Lambda emulator and the Invoke, the handlers, the "
        f"engine, the store) costs {bare['overhead_ms']} ms of its {bare['step_ms']} ms.",
    ]


def code_first_table(results: dict[str, Any]) -> list[str]:
    """The code-first workloads beside their YAML twins: Lambda invocations per step (the step
    function's, the runner's replays, the rest), requests and reads per step, and how much one
    W1c step reads at the start of the run and at its end."""
    w = results["workloads"]
    present = [n for n in CODE_FIRST if n in w]
    if not present:
        return []
    lines = [
        "",
        "| workload | YAML twin | steps/s (YAML) | Lambda invocations/step: step function "
        "+ replays + other (YAML) | requests/step (YAML) | DDB reads/step (YAML) "
        "| items read/step (YAML) | RCU/step (YAML) | $/M steps (YAML) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for name in present:
        f, twin = w.get(name) or {}, CODE_FIRST[name]
        y = w.get(twin) or {}
        if "error" in f or not f:
            lines.append(f"| {name} | {twin} | failed: {f.get('error', 'not run')} |")
            continue

        def pair(key: str, f: dict[str, Any] = f, y: dict[str, Any] = y) -> str:
            return f"{_cell(f.get(key))} ({_cell(y.get(key))})"

        def calls(x: dict[str, Any]) -> str:
            if "step_invocations_per_step" not in x:
                return "-"
            step = x["step_invocations_per_step"]
            replays = x.get("replay_invocations_per_step", 0.0)
            other = x["orchestrator_invocations_per_step"] - replays
            return f"{step:.2f} + {replays:.2f} + {other:.2f}"

        cost, yaml_cost = all_in(results, name), all_in(results, twin)
        lines.append(
            "| "
            + " | ".join(
                [
                    name,
                    twin,
                    pair("steps_per_s"),
                    f"{calls(f)} ({calls(y)})",
                    pair("requests_per_step"),
                    pair("dynamodb_reads_per_step"),
                    pair("items_read_per_step"),
                    pair("read_units_per_step"),
                    f"{_cell(cost)} ({_cell(yaml_cost)})",
                ]
            )
            + " |"
        )
    growth = (w.get("W1c") or {}).get("replay_growth") or {}
    first, last = growth.get("first"), growth.get("last")
    if first and last:
        span = growth["span"]
        lines += [
            "",
            f"One W1c step (its step function and the replay after it), first {span} steps -> "
            f"last {span} before the run's end: DynamoDB reads {first['dynamodb_reads']} -> "
            f"{last['dynamodb_reads']}, items read {first['items_read']} -> "
            f"{last['items_read']}, read units {first['read_units']} -> {last['read_units']}, "
            f"KB read {first['kb_read']} -> {last['kb_read']}.",
        ]
    return lines
