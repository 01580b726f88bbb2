"""A team adopts Stepwell as a package, never as a fork: the wheel, installed in a fresh
virtualenv outside the repository, makes an app with ``stepwell init``; the app's own tests
pass; ``stepwell run`` runs its YAML and code-first workflows on the engine the package ships;
``stepwell publish --dry-run`` against its ``stepwell dev`` finds nothing to publish; and a
workflow changed while a run of it waits on an approval gets a new version that new runs take,
while the waiting run finishes on its own."""

from __future__ import annotations

import json
import os
import re
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from stepwell import __version__
from stepwell.local.client import Client

ROOT = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.slow


def run(command: list[str], cwd: Path, timeout: float = 600, **env: str) -> str:
    """Run a command; its output, or the test fails with it."""
    done = subprocess.run(
        command,
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**_clean_env(), **env},
        check=False,
    )
    assert done.returncode == 0, f"{' '.join(command)}:\n{done.stdout}\n{done.stderr}"
    return done.stdout


def _clean_env() -> dict[str, str]:
    """This process's environment without its virtualenv and project settings."""
    keep = {k: v for k, v in os.environ.items() if not k.startswith(("STEPWELL_", "VIRTUAL_ENV"))}
    keep.pop("PYTHONPATH", None)
    return keep


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A fresh virtualenv outside the repository with the wheel built from it (and pytest)."""
    home = tmp_path_factory.mktemp("adopter")
    dist = home / "dist"
    run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "--no-deps",
            "-q",
            "-w",
            str(dist),
            str(ROOT),
        ],
        cwd=home,
    )
    (wheel,) = dist.glob("stepwell-*.whl")
    assert wheel.name.startswith(f"stepwell-{__version__}-")
    venv = home / "venv"
    run([sys.executable, "-m", "venv", str(venv)], cwd=home)
    run(
        [
            str(venv / "bin" / "python"),
            "-m",
            "pip",
            "install",
            "-q",
            "--disable-pip-version-check",
            str(wheel),
            "pytest",
        ],
        cwd=home,
        timeout=900,
    )
    return venv / "bin"


@pytest.fixture(scope="module")
def app(installed: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("projects") / "expenses"
    out = run([str(installed / "stepwell"), "init", str(folder)], cwd=folder.parent)
    assert "template.yaml" in out
    return folder


def test_the_wheel_gives_the_cli_the_api_and_the_engine(installed: Path, app: Path) -> None:
    assert run([str(installed / "stepwell"), "--version"], cwd=app).strip() == (
        f"stepwell {__version__}"
    )
    probe = (
        "import stepwell, pathlib;"
        "from stepwell import workflow, Context, step_handler, StepContext;"
        "root = pathlib.Path(stepwell.__file__).parent;"
        "print(root.is_relative_to(pathlib.Path.cwd().parent), "
        "(root / 'stack' / 'template.yaml').is_file(), "
        "(root / 'ui' / 'static' / 'index.html').is_file())"
    )
    # The package comes from the virtualenv, not from the repository's source tree.
    assert run([str(installed / "python"), "-c", probe], cwd=app).split() == [
        "False",
        "True",
        "True",
    ]


def test_the_apps_own_tests_pass_with_only_the_package(installed: Path, app: Path) -> None:
    run([str(installed / "stepwell"), "validate", "statemachines/"], cwd=app)
    out = run([str(installed / "python"), "-m", "pytest", "-q", "-p", "no:cacheprovider"], cwd=app)
    assert re.search(r"\b4 passed\b", out), out
    # Stepwell's own machinery warns the app's tests of nothing.
    assert "warning" not in out, out


@pytest.mark.parametrize(
    ("workflow", "data", "output"),
    [
        ("expense", {"employee": "ada", "amount": 250}, None),
        (
            "expense-report",
            {"claims": [{"employee": "ada", "amount": 30}, {"employee": "ada", "amount": 120}]},
            {"approved": True, "total": 150.0},
        ),
    ],
)
def test_stepwell_run_runs_the_apps_workflows(
    installed: Path, app: Path, workflow: str, data: Any, output: Any
) -> None:
    out = run(
        [
            str(installed / "stepwell"),
            "run",
            workflow,
            "--input",
            json.dumps(data),
            "--virtual-time",
            "--auto-approve",
            "--json",
        ],
        cwd=app,
    )
    result = json.loads(out)
    assert result["status"] == "succeeded", out
    if output is not None:
        assert result["output"] == output


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture
def dev(installed: Path, app: Path) -> Iterator[str]:
    """``stepwell dev`` of the app, in the background, on a port of its own."""
    port = _free_port()
    process = subprocess.Popen(
        [str(installed / "stepwell"), "dev", "--port", str(port), "--in-memory", "--quiet"],
        cwd=app,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=_clean_env(),
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert process.poll() is None, process.stdout.read() if process.stdout else ""
            try:
                with urllib.request.urlopen(f"{url}/workflows", timeout=2) as answer:
                    if len(json.loads(answer.read())["workflows"]) == 2:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "stepwell dev did not publish the workflows"
            time.sleep(0.5)
        yield url
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()


def test_a_changed_workflow_is_a_new_version_and_a_waiting_run_keeps_its_own(
    installed: Path, app: Path, dev: str
) -> None:
    stepwell = str(installed / "stepwell")
    dry = run([stepwell, "publish", "--api", dev, "--dry-run"], cwd=app).splitlines()
    assert sorted(line.split(" (")[0] for line in dry) == [
        "expense-report: unchanged",
        "expense: unchanged",
    ], dry

    api = Client(dev)
    before = api.get("/workflows/expense").body["version"]
    waiting = api.start_run("expense", {"employee": "ada", "amount": 500}).body["run_id"]
    _until(lambda: _step(api, waiting, "approve").get("status") == "waiting")

    path = app / "statemachines" / "expense.yaml"
    original = path.read_text()
    path.write_text(original.replace("timeout: 3d", "timeout: 5d"))
    try:
        _until(lambda: api.get("/workflows/expense").body["version"] != before, 60)
        after = api.get("/workflows/expense").body["version"]
        changed = run([stepwell, "publish", "--api", dev, "--dry-run"], cwd=app)
        assert f"expense: unchanged ({after})" in changed

        fresh = api.start_run("expense", {"employee": "bo", "amount": 20}).body["run_id"]
        _until(lambda: api.run(fresh)["run"]["status"] == "succeeded")
        assert api.run(fresh)["run"]["version"] == after

        decided = api.post(f"/runs/{waiting}/steps/approve/decision", {"approved": True})
        assert decided.ok, decided.text
        _until(lambda: api.run(waiting)["run"]["status"] == "succeeded")
        assert api.run(waiting)["run"]["version"] == before
    finally:
        path.write_text(original)


def _step(api: Client, run_id: str, key: str) -> dict[str, Any]:
    """A step's record ({} before it has one)."""
    return next((s for s in api.run(run_id)["steps"] if s["key"] == key), {})


def _until(check: Any, seconds: float = 60) -> None:
    deadline = time.monotonic() + seconds
    while not check():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.3)


@pytest.fixture(autouse=True, scope="module")
def _no_stray_state(app: Path) -> Iterator[None]:
    yield
    shutil.rmtree(app / ".stepwell", ignore_errors=True)
