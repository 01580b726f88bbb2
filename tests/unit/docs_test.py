"""What the user docs say about the code is what the code does."""

from __future__ import annotations

import argparse
import importlib
import re
from pathlib import Path

import stepwell
from stepwell.cli import dev

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
IMPORT = re.compile(r"^\s*from (stepwell(?:\.\w+)*) import ([\w, ]+)$", re.M)
INLINE_IMPORT = re.compile(r"`from (stepwell(?:\.\w+)*) import ([\w, ]+)`")


def _imports(text: str) -> list[tuple[str, list[str]]]:
    found = IMPORT.findall(text) + INLINE_IMPORT.findall(text)
    return [(module, [n.strip() for n in names.split(",") if n.strip()]) for module, names in found]


def test_every_import_the_docs_show_works() -> None:
    shown = 0
    for page in sorted(DOCS.glob("*.md")):
        for module, names in _imports(page.read_text(encoding="utf-8")):
            loaded = importlib.import_module(module)
            for name in names:
                assert hasattr(loaded, name), f"{page.name}: from {module} import {name}"
                shown += 1
    assert shown >= 10


def test_the_exceptions_code_first_code_catches_are_shown_with_their_import() -> None:
    text = (DOCS / "code-first.md").read_text(encoding="utf-8")
    imported = {name for module, names in _imports(text) if module == "stepwell" for name in names}
    exceptions = {
        name
        for name in stepwell.__all__
        if isinstance(getattr(stepwell, name), type)
        and issubclass(getattr(stepwell, name), BaseException)
    }
    mentioned = {name for name in exceptions if f"`{name}`" in text}
    assert {"MapFailed", "StepFailed"} <= mentioned
    assert mentioned <= imported, f"not shown imported: {sorted(mentioned - imported)}"


def test_the_local_docs_say_where_stepwell_dev_keeps_its_state() -> None:
    parser = argparse.ArgumentParser()
    dev.add_arguments(parser)
    defaults = parser.parse_args([])
    assert not defaults.in_memory  # by default `stepwell dev` keeps its state ...
    folder = f"`{dev.STATE_FOLDER}/"  # ... in this folder of the project
    text = (DOCS / "local-development.md").read_text(encoding="utf-8")
    differs = text.split("## How local differs from AWS", 1)[1].split("\n## ", 1)[0]
    (state,) = [item for item in differs.split("\n- ") if item.startswith("**State")]
    assert folder in state and "--in-memory" in state
    # Nowhere is all of the state said to be gone when the stack stops, but for what keeps none.
    for said in re.finditer(r"[^.]*gone when the stack stops[^.]*\.", text):
        assert "stepwell run" in said.group(0) or "--in-memory" in said.group(0), said.group(0)
