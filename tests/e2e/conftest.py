"""The local stack for end-to-end tests: template.yaml running in this process.

Tests talk to it as a client of a deployed stack would: over HTTP (the API) and through events
(EventBridge PutEvents with boto3, which the stack answers). They wait on the bus's
``run.completed`` event rather than sleeping; virtual time makes delays and timeouts instant.

One stack per test module (a stack owns process-wide things: moto, boto3's hooks, the runtime
that ``wiring.current()`` hands out), so modules that start their own stacks, or run the CLI,
never overlap with another stack.
"""

from __future__ import annotations

import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest

HERE = Path(__file__).resolve().parent
ROOT = HERE.parents[1]
for path in (ROOT / "shared", ROOT / "tests"):
    if str(path) not in sys.path:
        sys.path.insert(0, str(path))

from helpers.workflows import workflows_folder as copy_workflows  # noqa: E402
from stepwell.local.client import Client  # noqa: E402
from stepwell.local.stack import LocalStack  # noqa: E402


def workflows_folder(tmp: Path) -> Path:
    """statemachines/ (with its fixtures) plus the workflows only the tests use."""
    return copy_workflows(tmp, HERE / "workflows")


@contextmanager
def groups_stack(
    tmp_path_factory: Any, groups: str, workflow: str, **options: Any
) -> Iterator[LocalStack]:
    """A virtual-time local stack of a project with this ``groups.yaml`` and one workflow
    (``group-approval``), removed afterwards."""
    project = tmp_path_factory.mktemp("project")
    (project / "groups.yaml").write_text(groups, encoding="utf-8")
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    (folder / "group-approval.yaml").write_text(workflow, encoding="utf-8")
    with LocalStack(
        project,
        template=ROOT / "template.yaml",
        virtual_time=True,
        schedules=False,
        workflows=folder,
        **options,
    ) as started:
        yield started
    shutil.rmtree(project, ignore_errors=True)


@contextmanager
def local_stack(folder: Path, **options: Any) -> Iterator[LocalStack]:
    """template.yaml with virtual time and the workflows of ``folder``; schedules off (tests
    that need them start their own). On leaving, it checks that nothing in Stepwell's path made
    Lambda run a step's code twice for one attempt."""
    with LocalStack(
        ROOT,
        virtual_time=True,
        schedules=False,
        workflows=folder,
        **options,
    ) as started:
        yield started
        assert started.emulator is not None
        assert started.emulator.repeated() == {}


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The stack most e2e tests share (see :func:`local_stack`)."""
    with local_stack(workflows_folder(tmp_path_factory.mktemp("workflows"))) as started:
        yield started


@pytest.fixture(scope="module")
def api(stack: LocalStack) -> Client:
    """A client of the stack's HTTP API."""
    return Client(stack.url)
