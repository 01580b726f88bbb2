"""A distributed Map's ItemReader (a JSON, JSON Lines or CSV object; a prefix's listing) and
ResultWriter checked and parsed as Step Functions reads them (the S3 calls themselves run in
the conformance suite, on moto's S3)."""

from __future__ import annotations

from typing import Any

import pytest

from stepwell.asl.errors import MachineFailed
from stepwell.asl.s3_items import parse
from stepwell.asl.s3_map import check_reader, check_writer

GET = "arn:aws:states:::s3:getObject"


@pytest.mark.parametrize(
    ("text", "config", "items"),
    [
        ('[{"n": 1}, {"n": 2}, 3]', {"InputType": "JSON"}, [{"n": 1}, {"n": 2}, 3]),
        ('{"n": 1}\n\n{"n": 2}\n', {"InputType": "JSONL"}, [{"n": 1}, {"n": 2}]),
        (
            'sku,qty\nA,1\n"B,2",5\n',
            {"InputType": "CSV", "CSVHeaderLocation": "FIRST_ROW"},
            [{"sku": "A", "qty": "1"}, {"sku": "B,2", "qty": "5"}],
        ),
        (
            "A;1\nB;5\n",
            {
                "InputType": "CSV",
                "CSVHeaderLocation": "GIVEN",
                "CSVHeaders": ["sku", "qty"],
                "CSVDelimiter": "SEMICOLON",
            },
            [{"sku": "A", "qty": "1"}, {"sku": "B", "qty": "5"}],
        ),
    ],
)
def test_an_object_s_items(text: str, config: dict[str, Any], items: list[Any]) -> None:
    assert parse([text.encode()], config) == items
    assert parse([text.encode()], config, 1) == items[:1]


def test_lines_past_max_items_are_not_parsed() -> None:
    # MaxItems stops the reading: a broken line after them is never read.
    assert parse([b'{"n": 1}\n{"n": 2}\nnot json\n'], {"InputType": "JSONL"}, 2) == [
        {"n": 1},
        {"n": 2},
    ]


@pytest.mark.parametrize(
    ("text", "kind"),
    [('{"n": 1}', "JSON"), ("[1,", "JSON"), ("", "JSON"), ("[1 2]", "JSON"), ("{bad}\n", "JSONL")],
)
def test_an_object_that_is_not_its_input_type_fails_the_reader(text: str, kind: str) -> None:
    with pytest.raises(MachineFailed) as failed:
        parse([text.encode()], {"InputType": kind})
    assert failed.value.error_name == "States.ItemReaderFailed"


def test_a_reader_is_checked_as_step_functions_checks_it() -> None:
    assert check_reader({"Resource": GET, "ReaderConfig": {"InputType": "JSON"}}) == []
    assert check_reader({"Resource": "arn:aws:states:::s3:listObjectsV2"}) == []
    found = dict(
        check_reader(
            {
                "Resource": GET,
                "ReaderConfig": {"InputType": "ORC", "Extra": 1},
                "Other": 2,
            }
        )
    )
    assert found[("Other",)] == "unknown field 'Other' of ItemReader"
    assert found[("ReaderConfig", "Extra")] == "unknown field 'Extra' of ReaderConfig"
    assert "one of JSON, JSONL, CSV, MANIFEST" in found[("ReaderConfig", "InputType")]
    assert check_reader(
        {"Resource": GET, "ReaderConfig": {"InputType": "CSV", "CSVHeaderLocation": "X"}}
    ) == [
        (("ReaderConfig", "CSVHeaderLocation"), "a CSV's CSVHeaderLocation is FIRST_ROW or GIVEN")
    ]
    [(where, why)] = check_reader({"Resource": "arn:aws:states:::s3:getObjectAcl"})
    assert where == ("Resource",) and "Stepwell reads items with" in why


def test_a_writer_is_checked() -> None:
    put = "arn:aws:states:::s3:putObject"
    assert check_writer({"Resource": put, "Parameters": {"Bucket": "b"}}) == []
    assert check_writer({"Resource": "arn:aws:states:::s3:getObject"}) == [
        (("Resource",), f"a ResultWriter's Resource is {put}")
    ]
