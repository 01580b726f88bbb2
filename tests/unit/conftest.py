"""Shared setup of the unit tests: the builders in ``tests/helpers``, the example step
functions in ``functions/examples`` and the benchmarks' request meter are importable
(``from helpers import ...``, ``from meter import ...``)."""

from __future__ import annotations

import sys
from pathlib import Path

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
# The package is normally installed (editable); the source tree serves when it is not.
for extra in (ROOT / "shared", TESTS, ROOT / "functions" / "examples"):
    if str(extra) not in sys.path:
        sys.path.insert(0, str(extra))
# Last, so that no benchmark script's name hides a module.
if str(ROOT / "benchmarks") not in sys.path:
    sys.path.append(str(ROOT / "benchmarks"))
