"""`import stepwell` (what a workflow's or a step's module does) loads the facade alone: no
engine, no store, no runtime beyond the StepContext a step function receives."""

from __future__ import annotations

import json
import subprocess
import sys


def test_import_stepwell_loads_no_engine_module() -> None:
    script = (
        "import json, sys, stepwell\n"
        "print(json.dumps(sorted(m for m in sys.modules if m.startswith('stepwell.'))))"
    )
    loaded = json.loads(subprocess.check_output([sys.executable, "-c", script], text=True))
    below = [m for m in loaded if m.startswith(("stepwell.engine", "stepwell.store"))]
    runtime = [m for m in loaded if m.startswith("stepwell.runtime.")]
    assert below == []
    assert runtime == ["stepwell.runtime.step_context"]


def test_a_step_function_needs_only_the_facade() -> None:
    from stepwell import StepContext, step_handler
    from stepwell.runtime.step_context import StepContext as Defined
    from stepwell.steps import step_handler as declared

    assert StepContext is Defined
    assert step_handler is declared
