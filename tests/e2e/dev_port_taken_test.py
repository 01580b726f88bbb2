"""`stepwell dev` on a port another process holds (a `stepwell dev` left running) says so and
what to do, rather than the socket's errno."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from stepwell.cli.main import main

ROOT = Path(__file__).resolve().parents[2]


def test_a_port_in_use_is_one_line_with_the_fix(capsys: pytest.CaptureFixture[str]) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["dev", "--project", str(ROOT), "--port", str(port), "--in-memory", "--quiet"]
        assert main([*argv, "--no-reload", "--no-schedules"]) == 2
    err = capsys.readouterr().err
    assert "Errno" not in err and "Traceback" not in err
    assert (
        f"stepwell dev: port {port} of 127.0.0.1 is in use (another stepwell dev?): stop it, "
        "or give another port with --port" in err
    )


def test_fresh_on_a_port_in_use_keeps_the_running_servers_state(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`--fresh` of a `stepwell dev` that cannot start (its port held, as by the server whose
    state it is) forgets nothing."""
    saved = tmp_path / "state.json"
    saved.write_text('{"kept": true}', encoding="utf-8")
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        argv = ["dev", "--project", str(ROOT), "--port", str(port), "--state", str(tmp_path)]
        assert main([*argv, "--fresh", "--quiet", "--no-reload", "--no-schedules"]) == 2
    assert saved.read_text(encoding="utf-8") == '{"kept": true}'
    assert f"port {port} of 127.0.0.1 is in use" in capsys.readouterr().err
