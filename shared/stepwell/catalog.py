"""The workflows a deployment knows: every definition in a folder, loaded once.

YAML files hold one workflow each; a Python file holds the ``@workflow`` functions of code-first
workflows, possibly several versions of one name (``@workflow(name=..., version=...)``): the
catalog serves the newest to new runs and keeps the others for the runs that started with them.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from stepwell.asl.loader import load_asl_file
from stepwell.code.files import SOURCE_VERSION, is_code_file, load_code_file
from stepwell.code.workflow import CodeWorkflow
from stepwell.definition.errors import DefinitionError, Problem
from stepwell.definition.loader import ASL_SUFFIXES, discover, load_workflow
from stepwell.definition.models import Workflow

EXAMPLES = "examples"
"""The folder beside the workflows holding one example input each, ``<workflow name>.json``."""


def _version_order(workflow: Workflow) -> tuple[int, int, str]:
    """Newest last: declared numeric versions by number, other declared ones by text; a version
    that is only a source hash comes before any declared one."""
    version = workflow.code_version or ""
    if version.isdigit():
        return (2, int(version), version)
    return (0 if version.startswith(SOURCE_VERSION) else 1, 0, version)


def newest(workflows: Iterable[Workflow]) -> list[Workflow]:
    """The newest version of each name, in the order the names first appear (a code-first file
    may hold several versions of one workflow: the newest is the one new runs take)."""
    found: dict[str, Workflow] = {}
    for workflow in workflows:
        known = found.get(workflow.name)
        if known is None or _version_order(known) < _version_order(workflow):
            found[workflow.name] = workflow
    return list(found.values())


def with_example_input(workflow: Workflow, folder: Path) -> Workflow:
    """``workflow`` with the example input ``examples/<name>.json`` of ``folder`` (the folder
    of its file) when there is one, as it is published."""
    try:
        example = json.loads((folder / EXAMPLES / f"{workflow.name}.json").read_text("utf-8"))
    except (OSError, ValueError):
        return workflow
    # Validated again rather than copied: a copy would keep the cached version.
    return Workflow.model_validate({**workflow.model_dump(mode="json"), "example_input": example})


def load_definitions(paths: Iterable[Path]) -> list[tuple[Workflow, CodeWorkflow | None]]:
    """Every workflow in ``paths`` (files, or folders of YAML and code-first files), with the
    function of each code-first one; a problem raises DefinitionError."""
    found: list[tuple[Workflow, CodeWorkflow | None]] = []
    for path in discover(paths):
        if path.name.endswith(ASL_SUFFIXES):
            loaded = load_asl_file(path)
            found.append((loaded.workflow, loaded.code))
        elif is_code_file(path):
            found.extend((loaded.workflow, loaded.code) for loaded in load_code_file(path))
        else:
            found.append((load_workflow(path), None))
    return found


class Catalog:
    """Workflows by name from ``statemachines/`` (YAML and code-first), loaded on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._workflows: dict[str, Workflow] | None = None
        self._code: dict[tuple[str, str], CodeWorkflow] = {}
        self._broken: dict[str, list[Problem]] = {}
        self._lock = threading.Lock()
        self._given = False  # workflows given in code: no folder, no examples

    def all(self) -> dict[str, Workflow]:
        """Every workflow by name, the newest version of each. A file with problems breaks only
        itself: its workflows are left out, and :meth:`broken` holds its problems."""
        with self._lock:
            if self._workflows is None:
                self._workflows = self._load()
            return self._workflows

    def broken(self) -> dict[str, list[Problem]]:
        """The files that could not be loaded (by the workflow name their file stands for:
        its stem) and every problem of each."""
        self.all()
        return dict(self._broken)

    def problems(self, name: str) -> list[Problem] | None:
        """Why workflow ``name`` cannot run, when its file is broken; else None."""
        return self.broken().get(name)

    def _load(self) -> dict[str, Workflow]:
        found: dict[str, Workflow] = {}
        for path in discover([self.folder]):
            try:
                loaded = load_definitions([path])
            except DefinitionError as exc:
                self._broken[path.stem] = list(exc.problems)
                continue
            for workflow, code in loaded:
                if code is not None:
                    self._code[(workflow.name, workflow.code_version or "")] = code
                known = found.get(workflow.name)
                if known is None or _version_order(known) < _version_order(workflow):
                    found[workflow.name] = workflow
        return found

    def get(self, name: str) -> Workflow | None:
        """The current definition of ``name``, or None."""
        return self.all().get(name)

    def example_input(self, name: str) -> Any:
        """The example input of workflow ``name`` (``examples/<name>.json`` in the folder), or
        None when it has none (or the file is not JSON). Read when asked: it is rarely."""
        if self._given:
            return None
        try:
            return json.loads((self.folder / EXAMPLES / f"{name}.json").read_text("utf-8"))
        except (OSError, ValueError):
            return None

    def code(self, definition: Workflow) -> CodeWorkflow | None:
        """The function a code-first definition replays: the one of its version, else (the code
        changed since the run started) the current one of its name, else None."""
        self.all()
        exact = self._code.get((definition.name, definition.code_version or ""))
        if exact is not None:
            return exact
        current = self.get(definition.name)
        if current is None or current.code is None:
            return None
        return self._code.get((current.name, current.code_version or ""))

    @classmethod
    def of(cls, workflows: dict[str, Workflow]) -> Catalog:
        """A catalog of given workflows (tests, code-first registration)."""
        catalog = cls(Path("."))
        catalog._workflows = dict(workflows)
        catalog._given = True
        return catalog
