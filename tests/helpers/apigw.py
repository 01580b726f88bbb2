"""Driving the API as API Gateway does: HTTP API (payload v2) events built from the fixture in
tests/events, the API's Lambda handler, a WSGI adapter (schemathesis, the CLI tests) and a
world of recording fakes around a real orchestrator and store."""

from __future__ import annotations

import base64
import copy
import importlib.util
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, quote, urlencode, urlsplit
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from stepwell.api import deps
from stepwell.catalog import Catalog
from stepwell.definition.models import Workflow
from stepwell.engine.commands import DispatchAttempt, EmitEvent, ScheduleTimer
from stepwell.engine.events import Event, StepFailed, StepSucceeded
from stepwell.runtime import wiring
from stepwell.runtime.approvals import ApprovalLinks, LinkedBus
from stepwell.runtime.clock import FakeClock
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.runtime.ports import Groups
from stepwell.runtime.publishing import Workflows, bind, named_functions
from stepwell.runtime.replays import replay_journal
from stepwell.runtime.wiring import Runtime
from stepwell.store.port import Store

TESTS = Path(__file__).resolve().parents[1]
ROOT = TESTS.parent
KINDS = TESTS / "helpers" / "kinds"
"""One workflow an operator acts on, as YAML (ops), code (ops-code) and a machine (ops-machine)."""
EVENT = TESTS / "events" / "apiGatewayV2Event.json"
KEY = b"stepwell-test-signing-key-0123456789"
OLD_KEY = b"stepwell-old-signing-key-9876543210"
API_URL = "https://a1b2c3d4e5.execute-api.us-east-1.amazonaws.com"
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def load_handler() -> Any:
    """The API function's handler (``stepwell.handlers.api``), loaded as a module of its own,
    as a fresh Lambda container loads it."""
    source = importlib.util.find_spec("stepwell.handlers.api")
    assert source is not None and source.origin is not None
    spec = importlib.util.spec_from_file_location("stepwell_api_function", source.origin)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.handler


class LambdaContext:
    """What Lambda passes as ``context`` (enough for Powertools)."""

    function_name = "stepwell-api"
    function_version = "$LATEST"
    memory_limit_in_mb = 512
    invoked_function_arn = "arn:aws:lambda:us-east-1:123456789012:function:stepwell-api"
    aws_request_id = "6f1c2b9e-0d3a-4c57-9a1e-7b2d8c4e5f60"
    log_group_name = "/aws/lambda/stepwell-api"
    log_stream_name = "2026/01/01/[$LATEST]0123456789abcdef"

    def get_remaining_time_in_millis(self) -> int:
        return 29_000


def http_event(
    method: str,
    path: str,
    *,
    body: Any = None,
    headers: dict[str, str] | None = None,
    query: dict[str, str] | list[tuple[str, str]] | None = None,
    form: dict[str, str] | None = None,
    base64_body: bool = False,
    authorizer: dict[str, Any] | bool | None = True,
) -> dict[str, Any]:
    """An HTTP API v2 event for ``method path`` (``body``: a dict/list is sent as JSON, a str or
    bytes as is; ``form`` as application/x-www-form-urlencoded)."""
    event = copy.deepcopy(json.loads(EVENT.read_text()))
    event["headers"] = {k: v for k, v in event["headers"].items() if k != "content-length"}
    for name, value in (headers or {}).items():
        event["headers"][name.lower()] = value
    raw: bytes | None = None
    if form is not None:
        raw = urlencode(form).encode()
        event["headers"].setdefault("content-type", "application/x-www-form-urlencoded")
    elif isinstance(body, bytes):
        raw = body
    elif isinstance(body, str):
        raw = body.encode("utf-8", "surrogatepass")
    elif body is not None:
        raw = json.dumps(body).encode()
        event["headers"].setdefault("content-type", "application/json")
    if raw is not None:
        event["headers"]["content-length"] = str(len(raw))
        if base64_body:
            event["body"] = base64.b64encode(raw).decode()
            event["isBase64Encoded"] = True
        else:
            event["body"] = raw.decode("utf-8", "surrogatepass")
            event["isBase64Encoded"] = False
    pairs = list(query.items()) if isinstance(query, dict) else list(query or [])
    event["rawQueryString"] = urlencode(pairs)
    if pairs:
        merged: dict[str, str] = {}
        for name, value in pairs:
            merged[name] = f"{merged[name]},{value}" if name in merged else value
        event["queryStringParameters"] = merged
    event["rawPath"] = path
    event["routeKey"] = "$default"
    context = event["requestContext"]
    context["routeKey"] = "$default"
    context["http"]["method"] = method.upper()
    context["http"]["path"] = path
    event.pop("pathParameters", None)
    if authorizer is None or authorizer is False:
        context.pop("authorizer", None)
    elif isinstance(authorizer, dict):
        context["authorizer"] = authorizer
    return event


@dataclass
class ApiResponse:
    """What API Gateway would send back."""

    status: int
    headers: dict[str, str]
    text: str

    def json(self) -> Any:
        return json.loads(self.text)

    @property
    def content_type(self) -> str:
        return next((v for k, v in self.headers.items() if k.lower() == "content-type"), "")


def to_response(result: dict[str, Any]) -> ApiResponse:
    """A handler's result as a response (base64 bodies decoded)."""
    body = result.get("body") or ""
    if result.get("isBase64Encoded"):
        body = base64.b64decode(body).decode()
    return ApiResponse(int(result["statusCode"]), dict(result.get("headers") or {}), body)


# -- WSGI ------------------------------------------------------------------------------------
class WsgiAdapter:
    """A WSGI app that hands every request to the Lambda handler as an HTTP API v2 event."""

    def __init__(self, handler: Any) -> None:
        self.handler = handler

    def __call__(self, environ: dict[str, Any], start_response: Any) -> list[bytes]:
        length = int(environ.get("CONTENT_LENGTH") or 0)
        raw = environ["wsgi.input"].read(length) if length else b""
        headers = {
            key[5:].replace("_", "-").lower(): value
            for key, value in environ.items()
            if key.startswith("HTTP_")
        }
        if environ.get("CONTENT_TYPE"):
            headers["content-type"] = environ["CONTENT_TYPE"]
        path = quote(environ.get("PATH_INFO", "/").encode("latin-1").decode("utf-8", "replace"))
        event = http_event(
            environ["REQUEST_METHOD"],
            path,
            headers=headers,
            query=parse_qsl(environ.get("QUERY_STRING", ""), keep_blank_values=True),
            body=raw if raw else None,
            base64_body=bool(raw),
        )
        response = to_response(self.handler(event, LambdaContext()))
        reason = "OK" if response.status < 400 else "Error"
        start_response(f"{response.status} {reason}", list(response.headers.items()))
        return [response.text.encode()]


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        pass


@contextmanager
def serve(handler: Any) -> Iterator[str]:
    """Serve the handler on 127.0.0.1 (a free port) for the block; yields the base URL."""
    server: WSGIServer = make_server(
        "127.0.0.1", 0, WsgiAdapter(handler), handler_class=_QuietHandler
    )
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_port}"
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


# -- a world of fakes around the real orchestrator -------------------------------------------
@dataclass
class Recorder:
    """Invoker, Timers and Bus that only record."""

    dispatched: list[DispatchAttempt] = field(default_factory=list)
    timers: list[ScheduleTimer] = field(default_factory=list)
    events: list[EmitEvent] = field(default_factory=list)

    def dispatch(self, command: DispatchAttempt) -> None:
        self.dispatched.append(command)

    def schedule(self, command: ScheduleTimer) -> None:
        self.timers.append(command)

    def emit(self, command: EmitEvent) -> None:
        self.events.append(command)


TEST_RUNNER = "arn:aws:lambda:us-east-1:123456789012:function:test-workflows"
"""The function a test's code-first workflows are published with (nothing invokes it)."""


def publish(workflows: Workflows, definitions: Any, owner: str = "tests") -> None:
    """Publish definitions as a test's own: each function a task step or a compensation names
    bound to itself (the recording invoker sees the name the step gives), code-first ones with
    a test runner."""
    for definition in definitions:
        names = {
            function: function
            for _, function in named_functions(definition)
            if not function.startswith("arn:")
        }
        runner = TEST_RUNNER if definition.code is not None else None
        workflows.publish(bind(definition, names, runner), owner, "tests")


class ApiWorld:
    """The API's handler over a real orchestrator and ``store``, with recording fakes for
    Lambda, timers and the bus, a fake clock and real signed approval links."""

    def __init__(
        self,
        store: Store,
        workflows: dict[str, Workflow] | Catalog,
        keys: list[bytes] | None = None,
        groups: Groups | None = None,
    ) -> None:
        self.store = store
        self.keys = list(keys or [KEY])
        self.clock = FakeClock(T0)
        self.recorder = Recorder()
        self.replayed = 0
        approvals = ApprovalLinks(self.recorder, lambda: self.keys, API_URL, self.clock)
        catalog = workflows if isinstance(workflows, Catalog) else Catalog.of(workflows)
        published = Workflows(store, self.clock)
        publish(published, catalog.all().values())
        self.orchestrator = Orchestrator(
            store,
            Ports(self.recorder, self.recorder, LinkedBus(self.recorder, approvals), approvals),
            self.clock,
            published.get,
            groups=groups,
        )
        self.runtime = Runtime(self.orchestrator, store, self.clock, published, catalog)
        self.deps = deps.for_runtime(self.runtime, {})
        self.handler = load_handler()
        self.install()

    def install(self) -> None:
        """Make this world the one the API's handler sees."""
        wiring.use(self.runtime)
        deps.use(self.deps)

    def close(self) -> None:
        wiring.use(None)
        deps.use(None)

    # -- requests --------------------------------------------------------------------------
    def call(self, method: str, path: str, **options: Any) -> ApiResponse:
        """One request through the Lambda handler (then the replays it asked for)."""
        response = to_response(self.handler(http_event(method, path, **options), LambdaContext()))
        self.play()
        return response

    def get(self, path: str, **options: Any) -> ApiResponse:
        return self.call("GET", path, **options)

    def post(self, path: str, body: Any = None, **options: Any) -> ApiResponse:
        return self.call("POST", path, body=body, **options)

    def start(self, workflow: str, input: Any = None, **fields: Any) -> str:
        """Start a run through the API; its id."""
        response = self.post(f"/workflows/{workflow}/runs", {"input": input, **fields})
        assert response.status == 201, response.text
        run_id: str = response.json()["run_id"]
        self.play()
        return run_id

    # -- the world around ------------------------------------------------------------------
    def bus(self, detail_type: str) -> list[dict[str, Any]]:
        """Details of the events of one type put on the bus so far."""
        return [e.detail for e in self.recorder.events if e.detail_type == detail_type]

    def approval_tokens(self, run_id: str, step: str) -> list[dict[str, Any]]:
        """Per approver of the newest request: approver, approve token, reject token."""
        requests = [d for d in self.bus("approval.requested") if d["run_id"] == run_id]
        requests = [d for d in requests if d["step"] == step]
        assert requests, f"no approval requested for {run_id}/{step}"
        return [
            {
                "approver": link["approver"],
                "approve": urlsplit(link["approve_url"]).path.rsplit("/", 1)[-1],
                "reject": urlsplit(link["reject_url"]).path.rsplit("/", 1)[-1],
            }
            for link in requests[-1]["links"]
        ]

    def attempt(self, run_id: str, key: str) -> DispatchAttempt:
        """The newest dispatched attempt of a step."""
        found = [c for c in self.recorder.dispatched if c.run_id == run_id and c.key == key]
        assert found, f"{key} of {run_id} was not dispatched"
        return found[-1]

    def succeed(self, run_id: str, key: str, output: Any = None) -> None:
        """The step's Lambda returns ``output``."""
        command = self.attempt(run_id, key)
        self.send(run_id, StepSucceeded(key, command.attempt, output, token=command.token))

    def fail(self, run_id: str, key: str, error: str = "Boom", retryable: bool = False) -> None:
        """The step's Lambda raises."""
        command = self.attempt(run_id, key)
        self.send(
            run_id,
            StepFailed(
                key, command.attempt, error, "it broke", retryable=retryable, token=command.token
            ),
        )

    def send(self, run_id: str, event: Event) -> None:
        self.orchestrator.handle(run_id, event)
        self.play()

    def play(self, orchestrator: Orchestrator | None = None) -> None:
        """Answer the replays of code-first runs dispatched so far, as the runner does (through
        ``orchestrator``: another container's, or by default the API's)."""
        orchestrator = orchestrator or self.orchestrator
        while self.replayed < len(self.recorder.dispatched):
            command = self.recorder.dispatched[self.replayed]
            self.replayed += 1
            if command.step_type != "code":
                continue
            answer = replay_journal(
                self.store,
                self.runtime.journals,
                orchestrator,
                command.run_id,
                command.attempt,
                self._code_of,
                self.clock.now(),
            )
            result = StepSucceeded(
                command.key, command.attempt, answer.to_dict(), token=command.token
            )
            orchestrator.handle(command.run_id, result)

    def _code_of(self, run: Any) -> Any:
        code = self.runtime.code.code(self.orchestrator.pinned(run))
        assert code is not None, f"no code for {run.workflow}"
        return code.function

    def step(self, run_id: str, key: str) -> Any:
        return self.store.load(run_id, [key]).steps.get(key)

    def timeline(self, run_id: str) -> list[Any]:
        return list(self.store.timeline(run_id, None, 10_000).items)


def api_workflows() -> dict[str, Workflow]:
    """The workflows the API tests use: the examples, and small ones for each route."""
    from ruamel.yaml import YAML

    found: dict[str, Workflow] = {}
    for path in sorted((ROOT / "statemachines").glob("*.yaml")):
        workflow = Workflow.model_validate(YAML(typ="safe").load(path.read_text()))
        found[workflow.name] = workflow
    small: list[dict[str, Any]] = [
        {
            "name": "simple",
            "input_schema": {
                "type": "object",
                "required": ["n"],
                "properties": {"n": {"type": "integer", "minimum": 0}, "who": {"type": "string"}},
            },
            "steps": {
                "work": {"function": "WorkFunction", "input": "${input}"},
                "next": {"function": "WorkFunction", "depends_on": "work"},
            },
        },
        {
            "name": "approve-flow",
            "steps": {
                "prepare": {"function": "WorkFunction"},
                "approve": {
                    "type": "approval",
                    "depends_on": "prepare",
                    "message": "Ship order ${input.order}?",
                    "approvers": ["alice@example.com", "bob@example.com", "carol@example.com"],
                    "quorum": 2,
                    "timeout": "2d",
                },
                "ship": {"function": "WorkFunction", "depends_on": "approve"},
            },
        },
        {
            "name": "anyone-approves",
            "steps": {
                "approve": {"type": "approval", "message": "Go?", "timeout": "1h"},
                "go": {"function": "WorkFunction", "depends_on": "approve"},
            },
        },
        {
            "name": "callback-flow",
            "steps": {
                "prepare": {"function": "WorkFunction"},
                "wait": {
                    "type": "callback",
                    "depends_on": "prepare",
                    "timeout": "1d",
                    "heartbeat": "1h",
                },
                "finish": {"function": "WorkFunction", "depends_on": "wait"},
            },
        },
        {
            "name": "fan",
            "steps": {
                "each": {
                    "function": "WorkFunction",
                    "for_each": "${input.items}",
                    "max_parallel": 2,
                },
            },
        },
        {
            "name": "no-http",
            "triggers": {"http": False},
            "steps": {"work": {"function": "WorkFunction"}},
        },
    ]
    for fields in small:
        workflow = Workflow.model_validate(fields)
        found[workflow.name] = workflow
    return found
