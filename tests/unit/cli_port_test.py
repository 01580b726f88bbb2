"""``stepwell dev`` listens where the other commands look by default."""

from __future__ import annotations

import argparse
import shutil
import subprocess
from pathlib import Path

import pytest

from stepwell.api import client
from stepwell.cli import dev

ROOT = Path(__file__).resolve().parents[2]


def test_the_cli_and_stepwell_dev_agree_on_the_port(monkeypatch) -> None:
    parser = argparse.ArgumentParser()
    dev.add_arguments(parser)
    port = parser.parse_args([]).port
    assert f"http://127.0.0.1:{port}" == client.DEFAULT_API
    monkeypatch.delenv("STEPWELL_API", raising=False)
    commands = argparse.ArgumentParser()
    client.add_arguments(commands)
    assert commands.parse_args([]).api == client.DEFAULT_API


@pytest.mark.skipif(shutil.which("make") is None, reason="no make on this machine")
def test_make_dev_serves_on_the_port_it_is_given() -> None:
    planned = subprocess.run(
        ["make", "-n", "dev", "PORT=3107"],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    assert "stepwell dev --port 3107" in planned
