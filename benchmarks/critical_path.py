"""The critical path of one step on AWS: the requests a step's end waits on before the next
step's code starts, as the local stack made them, and what they take at the latencies AWS
publishes or that are widely measured (each with its source; none is assumed).

Every step function of the benchmark is a no-op, so everything its invocation requested is the
path of its result: the reads, the step's own write, the next step's start and the invocation
of the next step's function, one after the other in that Lambda. What follows the last request
(Lambda's asynchronous queue handing the event to a function) happens inside Lambda.
"""

from __future__ import annotations

import statistics
from collections import Counter
from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class Latency:
    """A published or widely measured latency of one request."""

    what: str
    low_ms: float | None
    high_ms: float | None
    source: str


DYNAMODB_SERVICE = Latency(
    "DynamoDB, service side, per request: 'single-digit millisecond' (AWS publishes no p50)",
    None,
    10.0,
    "https://aws.amazon.com/blogs/database/understanding-amazon-dynamodb-latency/",
)
DYNAMODB_OBSERVED = Latency(
    "DynamoDB, as a client sees it, per request: 10 to 20 ms under typical conditions",
    10.0,
    20.0,
    "https://dynobase.dev/dynamodb-performance-latency",
)
NOT_PUBLISHED = (
    "lambda:Invoke (InvocationType Event): the round trip of the request that queues the next "
    "step's event; and the time from that queue to the next handler starting (Lambda's "
    "AsyncEventAge metric measures it in an account). No published or widely measured p50 was "
    "found for either"
)

LOST = {
    "chain": (
        "before the dependent's write (the step ended, the next step not counted): the run's "
        "watch, every 5 minutes while a step is active; after the next step's write, before its "
        "invoke (or an invoke Lambda lost): the attempt's lease, 15.5 minutes, then a new fenced "
        "attempt (docs/architecture.md, Crash safety)"
    ),
    "fan_in": (
        "after a child's write, before its count: the fan-out's watch recounts once no count "
        "came for 2 minutes; after the last count, before the join's write or invoke: the "
        "fan-out's watch settles it, and a lost invoke is the join attempt's lease, 15.5 "
        "minutes (docs/architecture.md, Crash safety)"
    ),
}


def _middle(trails: list[list[str]]) -> list[str]:
    """The most common trail of the steps between a run's first and last."""
    inner = trails[1:-1] or trails
    counted = Counter(tuple(t) for t in inner)
    return list(counted.most_common(1)[0][0]) if counted else []


def path(requests: list[str], kind: str, invocations: int) -> dict[str, Any]:
    """A path's requests in order and what they take at the published latencies."""
    dynamodb = sum(1 for r in requests if r.startswith("dynamodb:"))
    service, observed = DYNAMODB_SERVICE, DYNAMODB_OBSERVED
    assert service.high_ms is not None and observed.low_ms is not None
    assert observed.high_ms is not None
    return {
        "requests": requests,
        "invocations_traced": invocations,
        "dynamodb_requests": dynamodb,
        "invokes": sum(1 for r in requests if r == "lambda:Invoke"),
        "other_requests": [
            r for r in requests if not r.startswith("dynamodb:") and r != "lambda:Invoke"
        ],
        "dynamodb_ms_service_side_under": dynamodb * service.high_ms,
        "dynamodb_ms_observed": [dynamodb * observed.low_ms, dynamodb * observed.high_ms],
        "sources": [
            {"what": f.what, "source": f.source} for f in (DYNAMODB_SERVICE, DYNAMODB_OBSERVED)
        ],
        "not_published": NOT_PUBLISHED,
        "could_lose": LOST[kind],
    }


def of_chain(trails: list[list[str]]) -> dict[str, Any]:
    """W1: a step's end to the next step's start (the typical step of a chain)."""
    return path(_middle(trails), "chain", len(trails))


def of_fan_in(trails: list[list[str]]) -> dict[str, Any]:
    """W2: the last child's end to the join's start: the child whose invocation invoked a
    function (the join's); the other children only count their end."""
    invoking = [t for t in trails if "lambda:Invoke" in t]
    last = max(invoking, key=len) if invoking else []
    found = path(last, "fan_in", len(trails))
    others = [t for t in trails if "lambda:Invoke" not in t]
    found["other_children_requests_median"] = (
        statistics.median(len(t) for t in others) if others else 0
    )
    return found


def lines(results: dict[str, Any]) -> list[str]:
    """What ``make bench`` prints: one line per workload traced, then the sources."""
    out = [
        "",
        "Critical path of one step on AWS (the requests a step's end waits on before the next "
        "step's code starts):",
        "",
        "| workload | requests, in order | DynamoDB requests | at AWS's 'single-digit ms' "
        "| at 10-20 ms observed | invokes |",
        "|---|---|---|---|---|---|",
    ]
    lost: list[str] = []
    for name, edge in (("W1", "a step to the next"), ("W2", "the last child to the join")):
        found = ((results.get("workloads") or {}).get(name) or {}).get("critical_path")
        if not found:
            continue
        lost.append(f"{name}: a request could be lost {found['could_lose']}.")
        low, high = found["dynamodb_ms_observed"]
        out.append(
            f"| {name} ({edge}) | {' -> '.join(found['requests'])} "
            f"| {found['dynamodb_requests']} | < {found['dynamodb_ms_service_side_under']:.0f} ms "
            f"| {low:.0f}-{high:.0f} ms | {found['invokes']} |"
        )
    if not lost:
        return []
    out += ["", *lost, f"Not published: {NOT_PUBLISHED}."]
    out += [f"Source: {f.what}: {f.source}" for f in (DYNAMODB_SERVICE, DYNAMODB_OBSERVED)]
    return out
