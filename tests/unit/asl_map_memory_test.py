"""What the replay of a distributed Map holds: its items and their events or results, not a
copy per view of them (no context object per item kept, no list of ResultWriter entries),
measured with tracemalloc on each replay of a Map that reads its items from S3 and writes its
results there."""

from __future__ import annotations

import json
import tracemalloc
from typing import Any

from code_fake_engine import FakeRun

from stepwell.asl.machine import Machine
from stepwell.code.protocol import Issue, Yield

ITEMS = 5_000
BODY = ("\n".join(json.dumps({"n": n, "pad": "x" * 20}) for n in range(ITEMS)) + "\n").encode()
FILES: list[int] = []
"""The sizes of the result files the writer put."""
MAP = {
    "Type": "Map",
    "ItemReader": {
        "Resource": "arn:aws:states:::s3:getObject",
        "ReaderConfig": {"InputType": "JSONL"},
        "Parameters": {"Bucket": "in", "Key": "items.jsonl"},
    },
    "ItemProcessor": {
        "ProcessorConfig": {"Mode": "DISTRIBUTED", "ExecutionType": "STANDARD"},
        "StartAt": "Work",
        "States": {"Work": {"Type": "Task", "Resource": "WorkFunction", "End": True}},
    },
    "ResultWriter": {
        "Resource": "arn:aws:states:::s3:putObject",
        "Parameters": {"Bucket": "out", "Prefix": "results"},
    },
    "End": True,
}


def answer(issue: Issue) -> Any:
    """The object's ranged reads, the fan-out's outputs, the writer's puts."""
    if issue.kind == "aws" and issue.input["action"] == "getObject":
        first, last = issue.input["parameters"]["Range"].removeprefix("bytes=").split("-")
        part = BODY[int(first) : int(last) + 1]
        stop = int(first) + len(part) - 1
        return {
            "Body": part.decode(),
            "ContentLength": len(part),
            "ContentRange": f"bytes {first}-{stop}/{len(BODY)}",
        }
    if issue.kind == "aws":
        body = issue.input["parameters"].get("Body")
        if isinstance(body, str):
            FILES.append(len(body))
        return {}
    return [{"done": index} for index in range(len(issue.input))]


def items_size() -> int:
    """What the items take as Python values: the unit the replay's peak is measured in."""
    tracemalloc.start()
    items = [json.loads(line) for line in BODY.splitlines()]
    size = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    assert len(items) == ITEMS
    return size


def test_a_distributed_map_s_replay_holds_no_copy_per_view_of_its_items() -> None:
    fake = FakeRun(Machine("each", {"StartAt": "Each", "States": {"Each": MAP}}), {})
    peaks: list[int] = []
    replay = fake.replay

    def measured() -> Yield:
        tracemalloc.start()
        try:
            return replay()
        finally:
            peaks.append(tracemalloc.get_traced_memory()[1])
            tracemalloc.stop()

    fake.replay = measured  # type: ignore[method-assign]
    result = fake.drive(answer)
    assert result.status == "completed", result
    fan_out = next(
        i for i, y in enumerate(fake.yields) if any(s.kind == "for_each" for s in y.issued)
    )
    unit = items_size()
    # From the replay that issues the fan-out on, a replay holds the items, their events (the
    # fan-out's input) or their results, and a result file's text (as it is written and as the
    # put holds it): beside that text, under 3.5 times what the items take (it held 4.4 to 5
    # times, with a context object per item and a list of ResultWriter entries).
    text = 2 * max(FILES)
    ratios = [round(peaks[fan_out] / unit, 2)]
    ratios += [round((peak - text) / unit, 2) for peak in peaks[fan_out + 1 :]]
    assert max(ratios) < 3.5, (ratios, FILES)
