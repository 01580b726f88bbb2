"""``stepwell dev`` listens where the other commands look by default."""

from __future__ import annotations

import argparse

from stepwell.api import client
from stepwell.cli import dev


def test_the_cli_and_stepwell_dev_agree_on_the_port(monkeypatch) -> None:
    parser = argparse.ArgumentParser()
    dev.add_arguments(parser)
    port = parser.parse_args([]).port
    assert f"http://127.0.0.1:{port}" == client.DEFAULT_API
    monkeypatch.delenv("STEPWELL_API", raising=False)
    commands = argparse.ArgumentParser()
    client.add_arguments(commands)
    assert commands.parse_args([]).api == client.DEFAULT_API
