"""The workflows a deployment knows: every definition in a folder, loaded once."""

from __future__ import annotations

import threading
from pathlib import Path

from stepwell.definition.loader import discover, load_workflow
from stepwell.definition.models import Workflow


class Catalog:
    """Workflows by name from ``statemachines/`` (YAML), loaded on first use."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self._workflows: dict[str, Workflow] | None = None
        self._lock = threading.Lock()

    def all(self) -> dict[str, Workflow]:
        """Every workflow by name (a definition error raises DefinitionError)."""
        with self._lock:
            if self._workflows is None:
                found = [load_workflow(path) for path in discover([self.folder])]
                self._workflows = {workflow.name: workflow for workflow in found}
            return self._workflows

    def get(self, name: str) -> Workflow | None:
        """The current definition of ``name``, or None."""
        return self.all().get(name)

    @classmethod
    def of(cls, workflows: dict[str, Workflow]) -> Catalog:
        """A catalog of given workflows (tests, code-first registration)."""
        catalog = cls(Path("."))
        catalog._workflows = dict(workflows)
        return catalog
