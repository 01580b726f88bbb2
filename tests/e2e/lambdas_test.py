"""The Lambda emulator on its own: containers, timeouts, invocation types, errors."""

from __future__ import annotations

import json
import textwrap
import threading
import time
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from stepwell.local.clock import Activity, StackClock
from stepwell.local.lambdas import LambdaEmulator
from stepwell.local.template import FunctionSpec

HANDLERS = {
    "a/app.py": """
        import time
        NAME = "a"
        calls = 0

        def handler(event, context):
            global calls
            calls += 1
            time.sleep(event.get("sleep", 0))
            if event.get("fail"):
                raise ValueError("asked to fail")
            if event.get("unencodable"):
                return {1, 2}
            if event.get("bytes"):
                return "x" * event["bytes"]
            return {
                "name": NAME,
                "calls": calls,
                "function_name": context.function_name,
                "arn": context.invoked_function_arn,
                "request_id": context.aws_request_id,
                "memory": context.memory_limit_in_mb,
                "remaining": context.get_remaining_time_in_millis(),
            }
    """,
    "b/app.py": """
        NAME = "b"

        def handler(event, context):
            return {"name": NAME}
    """,
    "broken/app.py": """
        raise RuntimeError("cannot start")
    """,
}


def spec(name: str, code: Path, handler: str = "app.handler", timeout: int = 3) -> FunctionSpec:
    return FunctionSpec(
        logical_id=f"{name.title()}Function",
        name=f"local-{name}",
        arn=f"arn:aws:lambda:us-east-1:123456789012:function:local-{name}",
        code_uri=code,
        handler=handler,
        runtime="python3.12",
        timeout_s=timeout,
        memory_mb=256,
        environment={},
        layers=(),
        events=(),
    )


@pytest.fixture
def emulator(tmp_path: Path) -> Iterator[tuple[LambdaEmulator, list[Any]]]:
    for relative, source in HANDLERS.items():
        path = tmp_path / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(textwrap.dedent(source))
    later: list[tuple[datetime, Callable[[], None]]] = []
    emulator = LambdaEmulator(
        [
            spec("a", tmp_path / "a", timeout=1),
            spec("b", tmp_path / "b"),
            spec("broken", tmp_path / "broken"),
            spec("nohandler", tmp_path / "b", handler="app.missing"),
        ],
        clock=StackClock(),
        activity=Activity(),
        runtimes=lambda function: pytest.fail("these handlers use no Stepwell runtime"),
        later=lambda when, action: later.append((when, action)),
        concurrency={"local-b": 1},
    )
    yield emulator, later
    emulator.stop()


def call(emulator: LambdaEmulator, name: str, event: Any, kind: str = "RequestResponse") -> Any:
    result = emulator.invoke(emulator.find(name), json.dumps(event).encode(), kind)
    return result, result.decoded()


def test_each_function_imports_its_own_module(emulator: tuple[LambdaEmulator, Any]) -> None:
    lambdas, _ = emulator
    _, a = call(lambdas, "local-a", {})
    _, b = call(lambdas, "local-b", {})
    assert (a["name"], b["name"]) == ("a", "b")  # two app.py, two modules
    assert a["function_name"] == "local-a" and a["arn"].endswith(":function:local-a")
    assert a["memory"] == 256 and 0 < a["remaining"] <= 1000
    _, again = call(lambdas, "arn:aws:lambda:us-east-1:123456789012:function:local-a", {})
    assert again["calls"] == 2  # the warm container kept its module
    assert again["request_id"] != a["request_id"]


def test_concurrent_invocations_get_containers_of_their_own(
    emulator: tuple[LambdaEmulator, Any],
) -> None:
    lambdas, _ = emulator
    results: list[Any] = []
    threads = [
        threading.Thread(target=lambda: results.append(call(lambdas, "local-a", {"sleep": 0.2})[1]))
        for _ in range(3)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(r["calls"] for r in results) == [1, 1, 1]  # three cold containers


def test_the_timeout_is_enforced(emulator: tuple[LambdaEmulator, Any]) -> None:
    lambdas, _ = emulator
    began = time.monotonic()
    result, error = call(lambdas, "local-a", {"sleep": 5})
    assert time.monotonic() - began < 2.5
    assert result.function_error == "Unhandled"
    assert error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 1.00 seconds" in error["errorMessage"]


def test_errors_come_back_as_lambda_reports_them(emulator: tuple[LambdaEmulator, Any]) -> None:
    lambdas, _ = emulator
    result, error = call(lambdas, "local-a", {"fail": True})
    assert result.status_code == 200 and result.function_error == "Unhandled"
    assert (error["errorType"], error["errorMessage"]) == ("ValueError", "asked to fail")
    assert error["stackTrace"]
    _, error = call(lambdas, "local-a", {"unencodable": True})
    assert error["errorType"] == "Runtime.MarshalError"
    _, error = call(lambdas, "local-a", {"bytes": 6 * 1024 * 1024})  # over 6 MB once quoted
    assert error["errorType"] == "Function.ResponseSizeTooLarge"
    assert "6291456 bytes" in error["errorMessage"]
    result, _ = call(lambdas, "local-a", {"bytes": 6 * 1024 * 1024 - 2})
    assert result.function_error is None  # 6 MB exactly is allowed
    _, error = call(lambdas, "local-broken", {})
    assert error["errorType"] == "Runtime.ImportModuleError"
    assert "cannot start" in error["errorMessage"]
    _, error = call(lambdas, "local-nohandler", {})
    assert error["errorType"] == "Runtime.HandlerNotFound"


def test_an_event_invocation_returns_at_once_and_its_failure_is_retried_later(
    emulator: tuple[LambdaEmulator, Any],
) -> None:
    lambdas, later = emulator
    began = time.monotonic()
    result, _ = call(lambdas, "local-a", {"sleep": 0.3, "fail": True}, "Event")
    assert result.status_code == 202 and time.monotonic() - began < 0.2
    deadline = time.monotonic() + 5
    while not later and time.monotonic() < deadline:
        time.sleep(0.01)
    ((when, _retry),) = later  # retried a minute later, on the stack's clock
    failed = lambdas.history[-1]
    assert failed.error_type == "ValueError"
    assert when - failed.started >= timedelta(minutes=1)


def test_a_function_limited_to_one_runs_one_invocation_at_a_time(
    emulator: tuple[LambdaEmulator, Any], tmp_path: Path
) -> None:
    lambdas, _ = emulator
    (tmp_path / "b" / "app.py").write_text(
        "import time\n\ndef handler(event, context):\n    time.sleep(0.2)\n    return 1\n"
    )
    lambdas._functions["local-b"].idle.clear()  # a cold start picks up the slow handler
    began = time.monotonic()
    threads = [threading.Thread(target=call, args=(lambdas, "local-b", {})) for _ in range(3)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert time.monotonic() - began >= 0.55
