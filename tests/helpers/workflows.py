"""A folder of workflows for a local stack in tests: statemachines/ plus the tests' own."""

from __future__ import annotations

import shutil
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def workflows_folder(tmp: Path, *extra: Path) -> Path:
    """``tmp`` holding statemachines/ (YAML, code-first and machines, with its fixtures and
    example inputs) and the workflows of each folder in ``extra``."""
    own = [
        *(ROOT / "statemachines").glob("*.yaml"),
        *(ROOT / "statemachines").glob("*.py"),
        *(ROOT / "statemachines").glob("*.asl.json"),
    ]
    theirs = [
        p
        for folder in extra
        for p in (*folder.glob("*.yaml"), *folder.glob("*.py"), *folder.glob("*.asl.json"))
    ]
    for path in [*own, *theirs]:
        shutil.copy(path, tmp / path.name)
    for folder in ("fixtures", "examples"):
        shutil.copytree(ROOT / "statemachines" / folder, tmp / folder, dirs_exist_ok=True)
    return tmp
