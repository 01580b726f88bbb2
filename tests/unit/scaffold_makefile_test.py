"""The Makefile `stepwell init` writes picks a Python that runs: a version manager's shim for a
version it has but does not have selected is on PATH and fails when called."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from importlib import resources
from pathlib import Path

import pytest

MAKEFILE = resources.files("stepwell") / "scaffold" / "Makefile"
MAKE = shutil.which("make")

pytestmark = pytest.mark.skipif(MAKE is None, reason="make is not installed")


def _bin(tmp_path: Path, pythons: dict[str, str | None]) -> Path:
    """A PATH folder of pythons: each a shim that fails as a version manager's does (None), or
    the interpreter running these tests."""
    folder = tmp_path / "bin"
    folder.mkdir()
    for name, target in pythons.items():
        path = folder / name
        if target is None:
            path.write_text(f"#!/bin/sh\necho '{name}: command not found' >&2\nexit 127\n")
            path.chmod(0o755)
        else:
            path.symlink_to(target)
    return folder


def _make(tmp_path: Path, folder: Path, *flags: str) -> subprocess.CompletedProcess[str]:
    """`make` of the app's virtualenv, with only ``folder`` on PATH."""
    app = tmp_path / "app"
    app.mkdir()
    (app / "Makefile").write_text(MAKEFILE.read_text())
    (app / "pyproject.toml").write_text("[project]\nname = 'app'\n")
    env = {**os.environ, "PATH": str(folder)}
    env.pop("PYTHON", None)
    assert MAKE is not None
    return subprocess.run(
        [MAKE, *flags, ".venv/.installed"],
        check=False,
        cwd=app,
        env=env,
        capture_output=True,
        text=True,
    )


def test_a_shim_that_fails_is_passed_over_for_a_python_that_runs(tmp_path: Path) -> None:
    folder = _bin(tmp_path, {"python3.12": None, "python3.11": sys.executable})
    plan = _make(tmp_path, folder, "-n")  # what it would run, without running it
    assert plan.returncode == 0, plan.stderr
    assert f"{folder / 'python3.11'} -m venv .venv" in plan.stdout


def test_no_python_that_runs_is_one_message_with_the_fix(tmp_path: Path) -> None:
    folder = _bin(tmp_path, {"python3.12": None, "python3.11": None, "python3": None})
    made = _make(tmp_path, folder)
    assert made.returncode != 0
    assert "no Python 3.11 or newer runs here" in made.stderr
    assert "make test PYTHON=/path/to/python3.12" in made.stderr
    assert not (tmp_path / "app" / ".venv").exists()
