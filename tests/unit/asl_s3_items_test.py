"""A distributed Map's ItemReader streamed: an object read a ranged chunk at a time (each an aws
step the runner runs), its lines parsed as they arrive, ``MaxItems`` stopping the reads, and an
S3 inventory read through its manifest and gzipped CSV files; against moto's S3."""

from __future__ import annotations

import gzip
import json
from typing import Any

import boto3
import pytest
from aws_step_test import deps  # noqa: F401  (moto, with credentials in the environment)

from stepwell.asl import paths, s3_items, s3_map
from stepwell.asl.errors import MachineFailed
from stepwell.code.errors import StepFailed
from stepwell.runtime.builtins import BuiltinDeps, run_builtin
from stepwell.runtime.builtins.aws import ServiceCallFailed
from stepwell.runtime.step_context import StepContext

BUCKET = "items"
CTX = StepContext("run-1", "Each reader", "Each reader", 1, "run-1:Each reader:1")
GET = "arn:aws:states:::s3:getObject"


class Runner:
    """``ctx.aws`` as a replay gets it: each call an aws step the runner runs (here, at once)."""

    def __init__(self) -> None:
        self.deps = BuiltinDeps()
        self.bodies: list[int] = []
        """The size of each body a call gave."""

    def aws(self, name: str, service: str, action: str, parameters: Any = None) -> Any:
        params = {"service": service, "action": action, "parameters": parameters}
        try:
            output = run_builtin("aws", params, CTX, self.deps).output
        except ServiceCallFailed as failed:
            raise StepFailed(name, failed.error_type, str(failed)) from None
        self.bodies.append(output.get("ContentLength", 0))
        return output


def put(key: str, body: bytes) -> None:
    s3 = boto3.client("s3")
    if BUCKET not in [b["Name"] for b in s3.list_buckets()["Buckets"]]:
        s3.create_bucket(Bucket=BUCKET)
    s3.put_object(Bucket=BUCKET, Key=key, Body=body)


def read(runner: Runner, config: dict[str, Any], key: str = "in") -> list[Any]:
    reader = {"Resource": GET, "ReaderConfig": config, "Parameters": {"Bucket": BUCKET, "Key": key}}
    return s3_map.read(runner, "Each", reader, lambda template: template)  # type: ignore[arg-type]


@pytest.mark.usefixtures("deps")
def test_a_100000_line_object_is_read_a_chunk_at_a_time() -> None:
    lines = [json.dumps({"n": n, "pad": "x" * 20}) for n in range(100_000)]
    body = ("\n".join(lines) + "\n").encode()
    put("in", body)
    runner = Runner()
    items = read(runner, {"InputType": "JSONL"})
    assert len(items) == 100_000 and items[-1] == {"n": 99_999, "pad": "x" * 20}
    assert len(body) > 3 * s3_items.CHUNK
    assert max(runner.bodies) == s3_items.CHUNK  # the runner never holds the whole object
    assert sum(runner.bodies) == len(body)
    assert len(runner.bodies) == -(-len(body) // s3_items.CHUNK)
    first = Runner()
    assert read(first, {"InputType": "JSONL", "MaxItems": 10}) == [
        json.loads(x) for x in lines[:10]
    ]
    assert len(first.bodies) == 1  # MaxItems stops the reads


@pytest.mark.usefixtures("deps")
def test_a_json_array_is_parsed_as_its_chunks_arrive() -> None:
    values = [{"n": n, "price": n / 4, "pad": "x" * 20} for n in range(100_000)]
    body = json.dumps(values).encode()
    put("in", body)
    assert len(body) > 3 * s3_items.CHUNK
    runner = Runner()
    assert read(runner, {"InputType": "JSON"}) == values
    assert len(runner.bodies) == -(-len(body) // s3_items.CHUNK)
    first = Runner()
    assert read(first, {"InputType": "JSON", "MaxItems": 10}) == values[:10]
    assert len(first.bodies) == 1  # MaxItems stops the reads: the array is never read whole


@pytest.mark.usefixtures("deps")
def test_an_array_split_anywhere_between_chunks_is_whole(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(s3_items, "CHUNK", 3)
    values = [{"name": "caf\u00e9 \u20ac", "n": 1.5, "tags": [True, None]}, 'a"b', -7, []]
    put("in", b"  \n" + json.dumps(values, ensure_ascii=False).encode())
    runner = Runner()
    assert read(runner, {"InputType": "JSON"}) == values
    assert max(runner.bodies) == 3


@pytest.mark.usefixtures("deps")
def test_lines_and_characters_split_between_chunks_are_whole(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(s3_items, "CHUNK", 5)
    put("in", 'sku;note\r\nA;"caf\u00e9\nbar"\r\nB;\u20ac\u20ac\r\n'.encode())
    runner = Runner()
    config = {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW", "CSVDelimiter": "SEMICOLON"}
    assert read(runner, config) == [
        {"sku": "A", "note": "caf\u00e9\nbar"},
        {"sku": "B", "note": "\u20ac\u20ac"},
    ]
    assert len(runner.bodies) > 5 and max(runner.bodies) == 5


@pytest.mark.usefixtures("deps")
def test_an_empty_object_has_no_items() -> None:
    put("in", b"")
    assert read(Runner(), {"InputType": "JSONL"}) == []


def _inventory(form: str = "CSV") -> None:
    rows = [[f'"{BUCKET}-source","photos/{f}-{n}.jpg","{n * 10}"' for n in range(3)] for f in "ab"]
    for index, file_rows in enumerate(rows):
        put(f"inv/data/{index}.csv.gz", gzip.compress(("\n".join(file_rows) + "\n").encode()))
    manifest = {
        "sourceBucket": f"{BUCKET}-source",
        "destinationBucket": f"arn:aws:s3:::{BUCKET}",
        "version": "2016-11-30",
        "fileFormat": form,
        "fileSchema": "Bucket, Key, Size",
        "files": [{"key": f"inv/data/{i}.csv.gz", "size": 1, "MD5checksum": "x"} for i in (0, 1)],
    }
    put("inv/manifest.json", json.dumps(manifest).encode())


@pytest.mark.usefixtures("deps")
def test_an_s3_inventory_is_read_through_its_manifest_and_gzipped_files() -> None:
    _inventory()
    runner = Runner()
    items = read(runner, {"InputType": "MANIFEST"}, "inv/manifest.json")
    assert [i["Key"] for i in items] == [f"photos/{f}-{n}.jpg" for f in "ab" for n in range(3)]
    assert items[0] == {"Bucket": f"{BUCKET}-source", "Key": "photos/a-0.jpg", "Size": "0"}
    assert len(runner.bodies) == 3
    few = Runner()
    assert len(read(few, {"InputType": "MANIFEST", "MaxItems": 2}, "inv/manifest.json")) == 2
    assert len(few.bodies) == 2  # the second file is never read


@pytest.mark.usefixtures("deps")
def test_an_inventory_step_functions_cannot_read_fails_the_reader() -> None:
    _inventory("ORC")
    with pytest.raises(MachineFailed) as failed:
        read(Runner(), {"InputType": "MANIFEST"}, "inv/manifest.json")
    assert failed.value.error_name == "States.ItemReaderFailed"
    assert "is in ORC: Step Functions reads CSV inventories only" in str(failed.value)


@pytest.mark.usefixtures("deps")
def test_max_items_may_be_read_from_the_input_and_must_be_a_count() -> None:
    put("in", b"1\n2\n3\n")
    reader = {
        "Resource": GET,
        "ReaderConfig": {"InputType": "JSONL", "MaxItemsPath": "$.most"},
        "Parameters": {"Bucket": BUCKET, "Key": "in"},
    }

    def render(given: dict[str, Any]) -> Any:
        return lambda template: paths.render(template, given, {})

    assert s3_map.read(Runner(), "Each", reader, render({"most": 2})) == [1, 2]  # type: ignore[arg-type]
    with pytest.raises(MachineFailed, match=r"MaxItems must be a whole number >= 0, not 'x'"):
        s3_map.read(Runner(), "Each", reader, render({"most": "x"}))  # type: ignore[arg-type]
    assert s3_map.check_reader(
        {
            "Resource": GET,
            "ReaderConfig": {
                "InputType": "CSV",
                "CSVHeaderLocation": "FIRST_ROW",
                "CSVDelimiter": "COLON",
                "MaxItems": -1,
            },
        }
    ) == [
        (
            ("ReaderConfig", "CSVDelimiter"),
            "CSVDelimiter 'COLON': one of COMMA, PIPE, SEMICOLON, SPACE, TAB",
        ),
        (("ReaderConfig", "MaxItems"), "MaxItems is a whole number >= 0"),
    ]
