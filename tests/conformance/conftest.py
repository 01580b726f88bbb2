"""The conformance suite's local stack: template.yaml plus the functions the cases call
(``functions/conformance.py``), and every case's machine as ``statemachines/c-<case>.asl.json``,
with virtual time, so a Wait, a retry's backoff or a timeout takes no real time."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT / "shared", ROOT / "tests", ROOT / "tests" / "e2e", HERE):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from conformance_cases import CASES, Case  # noqa: E402
from functions.conformance import HANDLERS  # noqa: E402

from stepwell.local.client import Client  # noqa: E402
from stepwell.local.stack import LocalStack  # noqa: E402
from stepwell.local.template import with_functions  # noqa: E402

START = datetime(2030, 1, 1, tzinfo=UTC)
"""Virtual time starts here (the cases' timestamps are after it)."""


def template(folder: Path) -> Path:
    """template.yaml with the conformance functions."""
    code = HERE / "functions"
    added = {name: (code, f"conformance.{f.__name__}") for name, f in HANDLERS.items()}
    return with_functions(ROOT, added, folder)


def machines(folder: Path, cases: list[Case]) -> Path:
    """Every case's machine (and the machines it starts) as files of ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    for case in cases:
        for name, document in case.files().items():
            (folder / f"{name}.asl.json").write_text(json.dumps(document, indent=1))
    return folder


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    tmp = tmp_path_factory.mktemp("conformance")
    with LocalStack(
        ROOT,
        template=template(tmp),
        virtual_time=True,
        start_time=START,
        schedules=False,
        workflows=machines(tmp / "statemachines", CASES),
        environment={"POWERTOOLS_LOG_LEVEL": "WARNING"},
        # The HTTP Task's cases call the stack's own API, on loopback: allowed here as a team
        # allows an internal service.
        parameters={"HttpAllowHosts": "127.0.0.1"},
    ) as started:
        yield started
        assert started.emulator is not None
        assert started.emulator.repeated() == {}


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Client:
    return Client(stack.url)
