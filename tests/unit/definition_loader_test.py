"""Loading definitions: the examples load; each broken definition gives exactly its problem.

Every file in ``tests/definitions/broken/`` starts with one or more ``# expect: PROBLEM`` lines,
each the exact text of a problem, with the file named relative to ``tests/definitions/``.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stepwell.definition.errors import DefinitionError, Problem
from stepwell.definition.loader import discover, load_text, load_workflow
from stepwell.definition.models import Workflow

ROOT = Path(__file__).resolve().parents[2]
DEFINITIONS = ROOT / "tests" / "definitions"
BROKEN = sorted((DEFINITIONS / "broken").glob("*.yaml"))
EXAMPLES = sorted((ROOT / "statemachines").glob("*.yaml"))
EXPECT = "# expect: "


def expected_problems(path: Path) -> list[str]:
    """The ``# expect:`` lines heading a broken definition."""
    found = []
    for line in path.read_text(encoding="utf-8").splitlines():
        if not line.startswith(EXPECT):
            break
        found.append(line.removeprefix(EXPECT))
    return found


def problems_of(text: str, filename: str = "wf.yaml") -> list[str]:
    """The problems loading ``text`` reports (none when it loads)."""
    try:
        load_text(text, filename)
    except DefinitionError as exc:
        return [str(p) for p in exc.problems]
    return []


def test_the_broken_folder_covers_at_least_fifteen_cases() -> None:
    assert len(BROKEN) >= 15
    for path in BROKEN:
        assert expected_problems(path), f"{path.name} needs an '# expect:' line"
    # Problems of every stage in one file are reported together (YAML, models, semantics).
    assert max(len(expected_problems(path)) for path in BROKEN) >= 5


@pytest.mark.parametrize("path", BROKEN, ids=lambda p: p.stem)
def test_broken_definition_reports_exactly_its_expected_problem(path: Path) -> None:
    name = path.relative_to(DEFINITIONS).as_posix()
    with pytest.raises(DefinitionError) as caught:
        load_text(path.read_text(encoding="utf-8"), name)
    assert [str(p) for p in caught.value.problems] == expected_problems(path)


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_every_example_loads(path: Path) -> None:
    workflow = load_workflow(path)
    assert isinstance(workflow, Workflow)
    assert workflow.name == path.stem
    assert workflow.steps


def test_there_are_examples() -> None:
    assert len(EXAMPLES) >= 3


# -- problems ------------------------------------------------------------------------------


def test_problem_text_names_file_line_col_step_and_field() -> None:
    full = Problem("a.yaml", 7, 5, "charge", "retry.interval", "bad")
    assert str(full) == "a.yaml:7:5: step 'charge': field 'retry.interval': bad"
    assert str(Problem("a.yaml", 1, 1, None, None, "bad")) == "a.yaml:1:1: bad"
    assert str(Problem("a.yaml", 2, 3, "s", None, "bad")) == "a.yaml:2:3: step 's': bad"
    assert str(Problem("a.yaml", 2, 3, None, "name", "bad")) == "a.yaml:2:3: field 'name': bad"


def test_problems_are_frozen() -> None:
    problem = Problem("a.yaml", 1, 1, None, None, "bad")
    with pytest.raises(AttributeError):
        problem.line = 2  # type: ignore[misc]


def test_definition_error_carries_every_problem_and_prints_them() -> None:
    first = Problem("a.yaml", 1, 1, None, None, "one")
    second = Problem("a.yaml", 2, 1, None, None, "two")
    error = DefinitionError([first, second])
    assert error.problems == [first, second]
    assert str(error) == "a.yaml:1:1: one\na.yaml:2:1: two"


def test_every_model_problem_is_reported_in_file_order() -> None:
    text = """\
name: orders
steps:
  charge:
    function: ChargeCardFunction
    timeout: soon
    retry: {max_attempts: 0}
  cool_off:
    type: delay
"""
    assert problems_of(text) == [
        "wf.yaml:5:5: step 'charge': field 'timeout': 'soon' is not a duration: write a duration"
        " like 30s, 5m, 2h, 7d, 1h30m or ISO 8601 such as PT5M",
        "wf.yaml:6:13: step 'charge': field 'retry.max_attempts': must be at least 1, got 0",
        "wf.yaml:7:3: step 'cool_off': a delay step needs exactly one of 'duration' or 'until'",
    ]


def test_every_duplicate_key_is_reported_not_only_the_first() -> None:
    text = "name: a\nname: b\nsteps:\n  s: {function: F}\n  s: {function: G}\n"
    assert problems_of(text) == [
        "wf.yaml:2:1: duplicate key 'name' (first set on line 1): keep only one",
        "wf.yaml:5:3: step 's': duplicate step id 's' (first defined on line 4): rename one",
    ]


def test_unknown_field_without_a_close_match_lists_the_valid_fields() -> None:
    text = "name: a\nsteps:\n  s: {function: F, retry: {zzz: 1}}\n"
    assert problems_of(text) == [
        "wf.yaml:3:28: step 's': field 'retry': unknown field 'zzz'; retry has: max_attempts, "
        "interval, backoff_rate, max_interval, jitter, retry_on, non_retryable"
    ]


def test_a_step_that_is_not_a_mapping() -> None:
    assert problems_of("name: a\nsteps:\n  s: MyFunction\n") == [
        "wf.yaml:3:3: step 's': a step is a mapping of its fields (e.g. function: MyFunction), "
        "not the text 'MyFunction'"
    ]


def test_an_empty_file() -> None:
    assert problems_of("") == [
        "wf.yaml:1:1: a workflow is a YAML mapping with 'name' and 'steps', but the file is empty"
    ]


def test_keys_yaml_reads_as_numbers() -> None:
    assert problems_of("name: a\nsteps:\n  1: {function: F}\n") == [
        "wf.yaml:3:3: step '1': step id 1 is not an identifier: start it with a letter or '_'"
    ]


def test_one_workflow_per_file() -> None:
    assert problems_of("name: a\n---\nname: b\n") == [
        "wf.yaml:2:1: invalid YAML: expected a single document in the stream, but found another "
        "document; a file holds one workflow: remove the '---' line"
    ]


def test_tabs_get_a_hint() -> None:
    assert problems_of("name: a\nsteps:\n\ts: {}\n") == [
        "wf.yaml:3:1: invalid YAML: found character '\\t' that cannot start any token; indent "
        "with spaces, not tabs"
    ]


def test_yaml_tags_are_refused_where_they_are() -> None:
    text = "name: a\nsteps:\n  s:\n    function: !GetAtt Fn.Arn\n"
    assert problems_of(text) == [
        "wf.yaml:4:5: step 's': field 'function': YAML tag !GetAtt is not supported: "
        "write the plain value"
    ]


# -- values --------------------------------------------------------------------------------


def test_values_are_plain_python_and_timestamps_stay_text() -> None:
    text = """\
name: a
steps:
  wait:
    type: delay
    until: 2030-01-01T09:00:00Z
    input:
      price: 1.50
      count: 0x10
      day: 2030-01-01
      ok: true
      note: |
        two lines
"""
    step = load_text(text, "wf.yaml").steps["wait"]
    assert step.until == "2030-01-01T09:00:00Z"
    assert step.input == {
        "price": 1.5,
        "count": 16,
        "day": "2030-01-01",
        "ok": True,
        "note": "two lines\n",
    }
    # ruamel's own scalar types (ScalarFloat, HexInt, LiteralScalarString) do not leak out.
    assert [type(v) for v in step.input.values()] == [float, int, str, bool, str]


def test_layout_and_comments_do_not_change_the_version() -> None:
    block = "name: a\nsteps:\n  s:\n    function: F\n    depends_on: []\n"
    flow = "# a comment\nname: a\nsteps: {s: {function: F}}\n"
    assert load_text(block, "x.yaml").version == load_text(flow, "y.yaml").version


def test_yaml_anchors_and_merge_keys_are_resolved() -> None:
    text = """\
name: a
context:
  defaults: &defaults
    function: F
    retry: {max_attempts: 5}
steps:
  s:
    <<: *defaults
    timeout: 5m
"""
    step = load_text(text, "wf.yaml").steps["s"]
    assert step.retry is not None
    assert step.retry.max_attempts == 5


# -- files ---------------------------------------------------------------------------------


def test_load_workflow_names_the_file_it_read(tmp_path: Path) -> None:
    path = tmp_path / "bad.yaml"
    path.write_text("name: a\nsteps:\n  s: {}\n", encoding="utf-8")
    with pytest.raises(DefinitionError) as caught:
        load_workflow(path)
    (problem,) = caught.value.problems
    assert (problem.file, problem.line, problem.col, problem.step) == (str(path), 3, 3, "s")


def test_a_missing_or_binary_file_is_a_problem_not_a_traceback(tmp_path: Path) -> None:
    with pytest.raises(DefinitionError, match="cannot read the file"):
        load_workflow(tmp_path / "missing.yaml")
    binary = tmp_path / "binary.yaml"
    binary.write_bytes(b"\xff\xfe\x00name")
    with pytest.raises(DefinitionError, match="not UTF-8"):
        load_workflow(binary)


def test_discover_expands_folders_to_sorted_yaml_files(tmp_path: Path) -> None:
    for name in ("b.yaml", "a.yml", "c.yaml", "notes.txt"):
        (tmp_path / name).write_text("", encoding="utf-8")
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "d.yaml").write_text("", encoding="utf-8")
    single = tmp_path / "notes.txt"
    assert discover([tmp_path, single, tmp_path / "c.yaml"]) == [
        tmp_path / "a.yml",
        tmp_path / "b.yaml",
        tmp_path / "c.yaml",
        single,
    ]


def test_discover_refuses_a_path_that_does_not_exist(tmp_path: Path) -> None:
    with pytest.raises(FileNotFoundError, match="no such file or folder"):
        discover([tmp_path / "nope"])
