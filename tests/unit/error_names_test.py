"""The error names a step can fail with (stepwell.runtime.error_names)."""

from __future__ import annotations

import ast
from pathlib import Path

from stepwell.definition.loader import load_text, parse
from stepwell.definition.models import Step
from stepwell.runtime import error_names

ROOT = Path(__file__).resolve().parents[2]
ENGINE = ROOT / "shared" / "stepwell" / "engine"


def _engine_error_names() -> set[str]:
    """Every error name the engine fails a step with, as written in its calls."""
    found: set[str] = set()
    for path in ENGINE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if not isinstance(node, ast.Call) or len(node.args) < 3:
                continue
            name = getattr(node.func, "attr", getattr(node.func, "id", None))
            named = node.args[2]
            if name in ("fail_step", "attempt_failed") and isinstance(named, ast.Constant):
                found.add(str(named.value))
    return found


def test_every_name_the_engine_fails_a_step_with_is_known() -> None:
    found = _engine_error_names()
    assert {"StepTimedOut", "ForEachFailed", "ApprovalRejected", "ChildRunFailed"} <= found
    listed = (
        error_names.ANY_STEP
        | error_names.FOR_EACH
        | error_names.HEARTBEAT
        | frozenset().union(*error_names.BY_TYPE.values())
    )
    # A callback's failure is named by its caller (or times out): any name may come. The
    # others fail what a code-first replay issued, never a step of a definition.
    assert found - listed <= {"CallbackTimedOut", "InvalidReplay", "ReplayStuck", "InvalidStep"}


def test_a_module_raises_what_it_and_its_folders_modules_define_or_import(tmp_path: Path) -> None:
    (tmp_path / "handler.py").write_text(
        "from botocore.exceptions import ClientError\n"
        "import helpers\n"
        "from .more import Other\n"
        "class CardDeclined(Exception):\n    pass\n"
        "def handle(event, context):\n    raise helpers.Throttled()\n"
    )
    (tmp_path / "helpers.py").write_text("class Throttled(Exception):\n    pass\n")
    (tmp_path / "more.py").write_text(
        "class Other(Exception):\n    pass\nclass Deeper(Other): ...\n"
    )
    names = error_names.module_errors(tmp_path / "handler.py")
    assert names is not None
    assert {"ClientError", "CardDeclined", "Throttled", "Other", "Deeper"} <= names
    assert error_names.module_errors(tmp_path / "missing.py") is None


def _step(text: str) -> Step:
    return next(iter(load_text(f"name: w\nsteps:\n  s:\n{text}", "w.yaml").steps.values()))


def test_what_each_kind_of_step_fails_with() -> None:
    http = error_names.step_errors(_step("    type: http\n    url: https://x\n"), lambda f: None)
    assert http is not None
    assert "HttpConnectionError" in http and "StepTimedOut" in http
    assert "ConnectionError" not in http  # the http step names its own
    task = _step("    function: F\n    heartbeat: 1m\n")
    assert error_names.step_errors(task, lambda f: None) is None  # its module is not known
    names = error_names.step_errors(task, lambda f: frozenset({"CardDeclined"}))
    assert names is not None
    assert {"CardDeclined", "KeyError", "HeartbeatTimedOut", "LambdaError"} <= names
    assert error_names.known("Sandbox.Timedout", names)
    callback = _step("    type: callback\n")
    assert error_names.step_errors(callback, lambda f: None) is None  # the caller names it
    agent_step = _step("    type: agent\n    model: m\n    prompt: p\n")
    agent = error_names.step_errors(agent_step, lambda f: None)
    assert agent is not None and "ThrottlingException" in agent


def test_unknown_names_are_located_warnings_with_the_closest_name() -> None:
    text = (
        "name: w\nsteps:\n"
        "  pay:\n    function: PayFunction\n    for_each: ${input.items}\n"
        "    retry: {retry_on: [PaymentDeclined, KeyError, '*']}\n"
        "    catch: [{errors: [ForEachFailed, ForEachFailure], then: tell}]\n"
        "  tell:\n    type: notify\n    detail_type: t\n"
        "    retry: {non_retryable: [NotifyDetailInvalid, EventPublishEror]}\n"
    )
    workflow, source = parse(text, "w.yaml")
    warnings = error_names.unknown_names(
        workflow, source, lambda f: frozenset({"PaymentDeclinedTemporarily"})
    )
    assert all(w.warning for w in warnings)
    assert [(w.line, w.field) for w in warnings] == [
        (6, "retry.retry_on[0]"),
        (7, "catch[0].errors[1]"),
        (11, "retry.non_retryable[1]"),
    ]
    assert "did you mean 'PaymentDeclinedTemporarily'?" in warnings[0].message
    assert "did you mean 'ForEachFailed'?" in warnings[1].message
    assert "did you mean 'EventPublishError'?" in warnings[2].message
    assert str(warnings[0]).startswith(
        "w.yaml:6:24: warning: step 'pay': field 'retry.retry_on[0]'"
    )
