"""Shared setup of the unit tests: the builders in ``tests/helpers`` and the example step
functions in ``functions/examples`` are importable (``from helpers import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
# The package is normally installed (editable); the source tree serves when it is not.
for extra in (ROOT / "shared", TESTS, ROOT / "functions" / "examples"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
