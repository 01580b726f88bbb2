"""The groups file (who each group names) and ``stepwell validate``'s check of the groups that
approvals and input steps name."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepwell.cli.main import main
from stepwell.definition.errors import DefinitionError
from stepwell.definition.groups import parse_groups

WORKFLOW = """\
name: pay
steps:
  approve:
    type: approval
    approvers: {group: finanse}
  second:
    type: approval
    depends_on: [approve]
    approvers: [{group: finance}, cfo@example.com]
    quorum: 4
    escalate:
      - {after: 1h, to: [{group: board}]}
    timeout: 1d
  details:
    type: input
    depends_on: [second]
    form: {type: object}
    assignees: [a@example.com, {group: warehouse}]
"""


def test_a_groups_file_maps_names_to_people() -> None:
    text = "finance: [ann@example.com, bob@example.com]\nwarehouse:\n  - wu@example.com\n"
    assert parse_groups(text, "groups.yaml") == {
        "finance": ("ann@example.com", "bob@example.com"),
        "warehouse": ("wu@example.com",),
    }
    assert parse_groups("", "groups.yaml") == {}
    assert parse_groups('{"ops": ["o@example.com"]}', "p") == {"ops": ("o@example.com",)}


def test_a_broken_groups_file_names_every_problem_where_it_is() -> None:
    with pytest.raises(DefinitionError) as caught:
        parse_groups("finance: ann@example.com\nok: [a@example.com]\nbad name: []\n", "g.yaml")
    assert [str(p) for p in caught.value.problems] == [
        "g.yaml:1:1: group 'finance' is a list of e-mails, e.g. finance: [ann@example.com]",
        "g.yaml:3:1: group name 'bad name': use letters, digits, '-', '_' and '.' (at most 64)",
    ]
    with pytest.raises(DefinitionError, match="maps group names to lists of e-mails"):
        parse_groups("- finance\n", "g.yaml")
    with pytest.raises(DefinitionError, match=r"g.yaml:2:1: invalid YAML"):
        parse_groups("finance: [a@example.com\n", "g.yaml")


def test_validate_says_where_a_group_is_unknown_when_the_groups_file_is_there(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pay.yaml").write_text(WORKFLOW, encoding="utf-8")
    assert main(["validate", "--no-template", "pay.yaml"]) == 0  # no groups file: not checked
    capsys.readouterr()
    (tmp_path / "groups.yaml").write_text(
        "finance: [ann@example.com, bob@example.com, ANN@example.com]\nwarehouse: []\n",
        encoding="utf-8",
    )
    assert main(["validate", "--no-template", "pay.yaml"]) == 1
    out, err = capsys.readouterr()
    assert out.splitlines() == [
        "pay.yaml:5:5: step 'approve': field 'approvers[0]': no group named 'finanse' in "
        "groups.yaml: did you mean 'finance'?",
        "pay.yaml:10:5: step 'second': field 'quorum': quorum 4 is more than the 3 people "
        "approvers names with the groups of groups.yaml: lower the quorum or add people",
        "pay.yaml:12:26: step 'second': field 'escalate[0].to[0]': no group named 'board' in "
        "groups.yaml: define it in groups.yaml",
    ]
    assert "3 problems" in err
    other = tmp_path / "elsewhere.yaml"
    other.write_text("board: [b@example.com]\nfinance: [x@example.com]\n", encoding="utf-8")
    assert main(["validate", "--no-template", "--groups", str(other), "pay.yaml"]) == 1
    out, _ = capsys.readouterr()
    assert "'warehouse'" in out and "'finanse'" in out and "'board'" not in out


def test_validate_reports_a_broken_groups_file_without_a_traceback(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "pay.yaml").write_text(WORKFLOW, encoding="utf-8")
    (tmp_path / "groups.yaml").write_text("finance: 3\n", encoding="utf-8")
    assert main(["validate", "--no-template", "pay.yaml"]) == 1
    out, _ = capsys.readouterr()
    assert "groups.yaml:1:1: group 'finance' is a list of e-mails" in out
    assert main(["validate", "--no-template", "--groups", "missing.yaml", "pay.yaml"]) == 1
    out, _ = capsys.readouterr()
    assert "missing.yaml:1:1: cannot read the groups file" in out
