"""Peers on W1-W3, each in a virtual environment of its own under ``benchmarks/.peers/``.

A peer whose package cannot be installed is skipped with a note; nothing else depends on it.
Each workload runs in a fresh process (``peers/<peer>_peer.py W1``) that prints JSON.
"""

from __future__ import annotations

import json
import subprocess
import sys
import venv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
CACHE = HERE / ".peers"


@dataclass(frozen=True)
class Peer:
    name: str
    title: str
    requirement: str
    script: str


PEERS = (
    Peer("dbos", "DBOS Transact (SQLite)", "dbos==3.4.0", "dbos_peer.py"),
    Peer(
        "durable",
        "AWS durable execution SDK, local test runner",
        "aws-durable-execution-sdk-python-testing==1.4.0",
        "durable_peer.py",
    ),
)


def environment(peer: Peer) -> tuple[Path | None, str]:
    """The peer's interpreter (created and installed on first use), or None and why not."""
    folder = CACHE / peer.name
    python = folder / "bin" / "python"
    stamp = folder / ".installed"
    if python.exists() and stamp.exists() and stamp.read_text() == peer.requirement:
        return python, "cached"
    try:
        venv.EnvBuilder(with_pip=True, clear=True).create(folder)
        done = subprocess.run(
            [
                str(python),
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                peer.requirement,
            ],
            capture_output=True,
            text=True,
            timeout=600,
            check=False,
        )
    except (OSError, subprocess.SubprocessError) as exc:
        return None, f"could not create its environment: {exc}"
    if done.returncode != 0:
        lines = [line for line in done.stderr.splitlines() if line.startswith("ERROR")]
        return None, f"pip install {peer.requirement} failed: {' '.join(lines)[-300:]}"
    stamp.write_text(peer.requirement)
    return python, "installed"


def run(peer: Peer, workloads: list[str], repeat: int) -> dict[str, Any]:
    """The peer's figures per workload, or a note saying why there are none."""
    python, how = environment(peer)
    if python is None:
        print(f"  {peer.title}: skipped ({how})", file=sys.stderr)
        return {"title": peer.title, "skipped": how}
    result: dict[str, Any] = {"title": peer.title, "package": peer.requirement}
    for workload in workloads:
        try:
            done = subprocess.run(
                [str(python), str(HERE / "peers" / peer.script), workload, "--repeat", str(repeat)],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
            )
        except subprocess.TimeoutExpired:
            result[workload] = {"error": "timed out after 300 s"}
            continue
        lines = done.stdout.strip().splitlines()
        if done.returncode != 0 or not lines:
            result[workload] = {"error": done.stderr.strip().splitlines()[-1:]}
            continue
        result[workload] = json.loads(lines[-1])
    return result
