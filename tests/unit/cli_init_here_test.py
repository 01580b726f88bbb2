"""`stepwell init .` in an empty folder: the next command it prints is one to run there."""

from __future__ import annotations

from pathlib import Path

import pytest

from stepwell.cli.main import main


def test_init_of_the_current_folder_says_the_next_command_without_a_cd(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    here = tmp_path / "billing"
    here.mkdir()
    monkeypatch.chdir(here)
    assert main(["init", "."]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "Next: make test   (then make dev for the API and dashboard)"
    assert (here / "template.yaml").is_file()


def test_init_of_another_folder_says_to_go_there_first(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.chdir(tmp_path)
    assert main(["init", "billing"]) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-1] == "Next: cd billing && make test   (then make dev for the API and dashboard)"
