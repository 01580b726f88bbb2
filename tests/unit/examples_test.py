"""The example inputs: one per example workflow, each one its workflow's input_schema accepts."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from stepwell.catalog import EXAMPLES, Catalog

ROOT = Path(__file__).resolve().parents[2]
FOLDER = ROOT / "statemachines"
CATALOG = Catalog(FOLDER)


def test_every_example_input_is_of_an_example_workflow() -> None:
    named = {path.stem for path in (FOLDER / EXAMPLES).glob("*.json")}
    assert named == set(CATALOG.all())


@pytest.mark.parametrize("name", sorted(CATALOG.all()))
def test_each_workflow_accepts_its_example_input(name: str) -> None:
    example = CATALOG.example_input(name)
    assert example is not None
    schema = CATALOG.all()[name].input_schema
    if schema is not None:
        validator = Draft202012Validator(schema, format_checker=Draft202012Validator.FORMAT_CHECKER)
        assert [e.message for e in validator.iter_errors(example)] == []


def test_a_workflow_without_an_example_or_with_a_broken_one_has_none(tmp_path: Path) -> None:
    (tmp_path / "w.yaml").write_text("name: w\nsteps:\n  a: {function: F}\n")
    (tmp_path / EXAMPLES).mkdir()
    catalog = Catalog(tmp_path)
    assert catalog.example_input("w") is None
    (tmp_path / EXAMPLES / "w.json").write_text("{not json")
    assert catalog.example_input("w") is None
    (tmp_path / EXAMPLES / "w.json").write_text(json.dumps({"n": 1}))
    assert catalog.example_input("w") == {"n": 1}
    assert Catalog.of(catalog.all()).example_input("w") is None  # workflows given in code
