"""The Lambda emulator: the template's functions, run in-process the way Lambda runs them.

Over 500 lines: invocations, their worker pool, the watchdog and the asynchronous retries share
the emulator's lock and bookkeeping.

* A *container* is one warm execution environment of one function: its own copy of the
  handler module (imported from the function's CodeUri under a name of its own, so the
  ``app.py`` of two functions never collide, and module-level state such as a batch processor
  is never shared by two invocations at once) and its own Stepwell runtime. A container runs one
  invocation at a time; a function gets a new container (a cold start) when all of its
  containers are busy.
* Invocations run on a pool of worker threads, ``Event`` (asynchronous: 202 at once, the
  handler runs later, an error is retried twice after 1 and 2 minutes as Lambda does) or
  ``RequestResponse`` (the caller waits for the response).
* ``Timeout`` is enforced by a watchdog: when an invocation outlives it, it is reported as
  ``Sandbox.Timedout`` and its container is thrown away. Python cannot kill a thread, so the
  abandoned handler may still finish in the background; whatever it writes then is what a
  Lambda killed half-way could have written (fencing makes late results harmless).
* The handler gets the event decoded from JSON and a Lambda context (request id, function
  name and ARN, memory, log group, ``get_remaining_time_in_millis()``); its return value is
  encoded to JSON (a value JSON cannot hold fails the invocation with ``Runtime.MarshalError``,
  as on Lambda).
"""

from __future__ import annotations

import heapq
import importlib.util
import itertools
import json
import queue
import sys
import threading
import traceback
import uuid
from collections import Counter, deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from types import ModuleType
from typing import Any

from stepwell.local import containers
from stepwell.local.clock import Activity, StackClock
from stepwell.local.containers import Container, LogBookAdd, RuntimeFactory
from stepwell.local.logs import isolate_log_keys
from stepwell.local.template import FunctionSpec
from stepwell.runtime.envelope import StepEnvelope

SYNC_PAYLOAD_LIMIT = 6 * 1024 * 1024
ASYNC_PAYLOAD_LIMIT = 1024 * 1024
ASYNC_RETRY_DELAYS = (timedelta(minutes=1), timedelta(minutes=2))
"""Lambda retries a failed asynchronous invocation twice, about 1 and 2 minutes later."""
HISTORY = 2000
"""Invocations remembered (for ``stepwell dev`` and tests)."""


class LambdaContext:
    """The context object a Python handler gets, with the same attributes as on Lambda."""

    function_version = "$LATEST"
    identity = None
    client_context = None
    tenant_id = None

    def __init__(self, function: FunctionSpec, request_id: str, deadline: float, wall: Any) -> None:
        self.function_name = function.name
        self.invoked_function_arn = function.arn
        self.memory_limit_in_mb = function.memory_mb
        self.aws_request_id = request_id
        self.log_group_name = f"/aws/lambda/{function.name}"
        self.log_stream_name = f"local/[$LATEST]{request_id.replace('-', '')}"
        self._deadline = deadline
        self._wall = wall

    def get_remaining_time_in_millis(self) -> int:
        """Milliseconds before the function's Timeout (real time, as on Lambda)."""
        return max(0, int((self._deadline - self._wall.monotonic()) * 1000))


@dataclass(frozen=True)
class InvokeResult:
    """What Invoke answers: ``status_code`` 200 (RequestResponse), 202 (Event) or 204 (DryRun);
    ``function_error`` is ``Unhandled`` when the handler raised or timed out."""

    status_code: int
    payload: bytes
    request_id: str
    function_error: str | None = None

    def decoded(self) -> Any:
        """The response payload decoded from JSON (None when empty)."""
        return json.loads(self.payload) if self.payload else None


@dataclass
class Invocation:
    """One invocation as the emulator remembers it."""

    function: str
    request_id: str
    invocation_type: str
    source: str
    started: datetime
    attempt: int = 1
    duration_ms: float | None = None
    error_type: str | None = None
    cold_start: bool = False


class UnknownFunction(LookupError):
    """No function of the template by that name or ARN."""


class PayloadTooLarge(ValueError):
    """The request payload is over Lambda's limit for the invocation type."""


class InvalidPayload(ValueError):
    """The request payload is not JSON."""


_IMPORT_LOCK = threading.RLock()
ADDED_PATHS: set[str] = set()
"""Code folders this process put on ``sys.path`` for handlers (see :func:`forget_handlers`)."""


def forget_handlers() -> None:
    """Drop the handler modules and code folders the emulator added (a stopped stack)."""
    with _IMPORT_LOCK:
        for name in [n for n in sys.modules if n.startswith("_stepwell_local.")]:
            sys.modules.pop(name, None)
        for path in ADDED_PATHS:
            while path in sys.path:
                sys.path.remove(path)
        ADDED_PATHS.clear()


def load_handler(function: FunctionSpec, container_id: int) -> Callable[[Any, Any], Any]:
    """Import the function's handler module from its CodeUri under a name of its own."""
    module_path, _, attribute = function.handler.rpartition(".")
    relative = Path(*module_path.replace("/", ".").split("."))
    candidates = [
        function.code_uri / relative.with_suffix(".py"),
        function.code_uri / relative / "__init__.py",
    ]
    source = next((path for path in candidates if path.is_file()), None) or _installed(
        module_path.replace("/", ".")
    )
    if source is None:
        raise _InitError(
            "Runtime.ImportModuleError",
            f"Unable to import module '{module_path}': No module named '{module_path}' "
            f"in {function.code_uri}",
        )
    unique = (
        f"_stepwell_local.{function.logical_id}.c{container_id}.{module_path.replace('/', '.')}"
    )
    with _IMPORT_LOCK:
        # The code folder, and each layer's python/ folder (/opt/python on Lambda).
        folders = [function.code_uri, *(p / "python" for p in function.layers)]
        added = [str(p) for p in folders if p.is_dir() and str(p) not in sys.path]
        ADDED_PATHS.update(added)
        sys.path[:0] = added
        try:
            spec = importlib.util.spec_from_file_location(unique, source)
            if spec is None or spec.loader is None:
                raise _InitError("Runtime.ImportModuleError", f"cannot load {source}")
            module: ModuleType = importlib.util.module_from_spec(spec)
            sys.modules[unique] = module
            try:
                spec.loader.exec_module(module)
            except Exception as exc:
                sys.modules.pop(unique, None)
                raise _InitError(
                    "Runtime.ImportModuleError",
                    f"Unable to import module '{module_path}': {type(exc).__name__}: {exc}",
                ) from exc
        finally:
            # The code folders stay importable (at the end, as /var/task is on Lambda), for
            # modules the handler imports lazily.
            for path in added:
                sys.path.remove(path)
                sys.path.append(path)
    try:
        isolate_log_keys()  # the module may have made a Powertools Logger
    except Exception:  # log keys are a nicety: never fail a cold start over them
        traceback.print_exc()
    handler = getattr(module, attribute, None)
    if not callable(handler):
        raise _InitError(
            "Runtime.HandlerNotFound", f"Handler '{attribute}' missing on module '{module_path}'"
        )
    return handler  # type: ignore[no-any-return]


def _installed(module: str) -> Path | None:
    """The file of a handler module outside the function's code: the Stepwell engine's
    handlers (``stepwell.handlers.api``) come from its layer on Lambda, from the installed
    package here."""
    if not module.startswith("stepwell."):
        return None
    try:
        spec = importlib.util.find_spec(module)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None or not spec.origin.endswith(".py"):
        return None
    return Path(spec.origin)


class _InitError(Exception):
    def __init__(self, error_type: str, message: str) -> None:
        super().__init__(message)
        self.error_type = error_type


# -- the worker pool and the watchdog ---------------------------------------------------------

_worker = threading.local()


class _Pool:
    """Worker threads that grow on demand up to ``max_workers``. A worker whose invocation timed
    out is retired once its handler returns; it no longer counts against the limit."""

    def __init__(self, max_workers: int, name: str) -> None:
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._lock = threading.Lock()
        self._live = 0
        self._idle = 0
        self._max = max_workers
        self._name = name
        self._threads: list[threading.Thread] = []

    def submit(self, job: Callable[[], None]) -> None:
        self._jobs.put(job)
        with self._lock:
            if self._idle > 0 or self._live >= self._max:
                self._idle = max(0, self._idle - 1)
                return
            self._live += 1
            thread = threading.Thread(
                target=self._work, name=f"{self._name}-{len(self._threads) + 1}", daemon=True
            )
            self._threads.append(thread)
        thread.start()

    def retire_current(self) -> None:
        """The calling worker leaves the pool after its job (its invocation was abandoned)."""
        _worker.retired = True
        with self._lock:
            self._live -= 1

    def _work(self) -> None:
        while True:
            job = self._jobs.get()
            if job is None:
                return
            try:
                job()
            except BaseException:  # a job never raises; a bug here must not kill the pool
                traceback.print_exc()
            if getattr(_worker, "retired", False):
                return
            with self._lock:
                self._idle += 1

    def shutdown(self) -> None:
        with self._lock:
            count = len(self._threads)
        for _ in range(count):
            self._jobs.put(None)


class _Call:
    """An invocation in flight: finished once, by the handler or by the watchdog."""

    def __init__(
        self,
        function: FunctionSpec,
        payload: bytes,
        invocation_type: str,
        request_id: str,
        record: Invocation,
        callback: Callable[[InvokeResult], None] | None = None,
    ) -> None:
        self.function = function
        self.callback = callback
        self.payload = payload
        self.invocation_type = invocation_type
        self.request_id = request_id
        self.record = record
        self.timeout = 0.0
        self.deadline = 0.0
        self.started = 0.0
        self.done = threading.Event()
        self.result: InvokeResult | None = None
        self._lock = threading.Lock()

    def finish(self, result: InvokeResult) -> bool:
        with self._lock:
            if self.result is not None:
                return False
            self.result = result
        self.done.set()
        return True


# -- the emulator -----------------------------------------------------------------------------


@dataclass
class _Function:
    spec: FunctionSpec
    limit: int | None = None
    """At most this many invocations at once (None: as many as the pool runs)."""
    running: int = 0
    waiting: deque[_Call] = field(default_factory=deque)
    idle: deque[Container] = field(default_factory=deque)


class LambdaEmulator:
    """Runs the template's functions; ``invoke`` is what the intercepted ``lambda:Invoke`` and
    every event source call."""

    def __init__(
        self,
        functions: list[FunctionSpec],
        *,
        clock: StackClock,
        activity: Activity,
        runtimes: RuntimeFactory,
        later: Callable[[datetime, Callable[[], None]], None],
        max_workers: int = 64,
        concurrency: Mapping[str, int] | None = None,
        on_invocation: Callable[[Invocation], None] | None = None,
        on_failure: Callable[[FunctionSpec, bytes, InvokeResult, int], None] | None = None,
        log_book: LogBookAdd | None = None,
    ) -> None:
        self._clock = clock
        self._log_book = log_book
        """Given each log line a function writes while running a step attempt (any function:
        the engine's or an app's)."""
        self._on_failure = on_failure
        """Given an asynchronous invocation that failed for good (function, payload, result,
        invocations made): its function's on-failure destination."""
        self._wall = clock.wall()
        self._activity = activity
        self._runtimes = runtimes
        self._later = later
        self._on_invocation = on_invocation
        self._functions: dict[str, _Function] = {}
        self._lock = threading.Lock()
        limits = dict(concurrency or {})
        for spec in functions:
            entry = _Function(spec, limits.get(spec.name, limits.get(spec.logical_id)))
            for key in (spec.name, spec.arn, spec.logical_id):
                self._functions.setdefault(key, entry)
        self.specs = list(functions)
        self.executions: Counter[tuple[str, str, int]] = Counter()
        """(run, step, attempt) -> how many times a handler ran that attempt's envelope: more
        than one means something made Lambda run a step again (see :meth:`repeated`)."""
        self._pool = _Pool(max_workers, "lambda")
        self._frozen = False
        self._generation = 0
        self._accepted: dict[int, _Call] = {}
        """Asynchronous invocations accepted and not yet begun (Lambda's queue of them)."""
        self._watch: list[tuple[float, int, _Call]] = []
        self._watch_seq = itertools.count()
        self._watch_cond = threading.Condition()
        self._stopping = False
        self._watchdog = threading.Thread(
            target=self._watchdog_loop, name="lambda-watchdog", daemon=True
        )
        self._watchdog.start()
        self.history: deque[Invocation] = deque(maxlen=HISTORY)
        self.failures: deque[Invocation] = deque(maxlen=HISTORY)
        """Asynchronous invocations that failed after their retries (Lambda would drop them or
        send them to an on-failure destination)."""

    # -- lookup ------------------------------------------------------------------------------
    def find(self, name: str, qualifier: str | None = None) -> FunctionSpec:
        """A function by name, ARN (with or without ``:qualifier``), partial ARN or logical id."""
        key = name
        if key.startswith("arn:"):
            parts = key.split(":")
            if len(parts) == 8:  # arn:aws:lambda:region:account:function:name:qualifier
                key = ":".join(parts[:7])
        elif ":function:" in key:  # account:function:name
            key = key.split(":function:", 1)[1].split(":", 1)[0]
        elif ":" in key:  # name:qualifier
            key = key.split(":", 1)[0]
        entry = self._functions.get(key)
        if entry is None and ":function:" in key:
            # Another account's or partition's ARN (a machine written for another stack): the
            # local stack stands in for every account, so it is the function of that name.
            entry = self._functions.get(key.split(":function:", 1)[1].split(":", 1)[0])
        if entry is None or (qualifier not in (None, "$LATEST")):
            raise UnknownFunction(name)
        return entry.spec

    # -- invoking ----------------------------------------------------------------------------
    def invoke(
        self,
        function: FunctionSpec,
        payload: bytes,
        invocation_type: str = "RequestResponse",
        *,
        source: str = "invoke",
        timeout_s: float | None = None,
    ) -> InvokeResult:
        """Invoke like Lambda's Invoke API: ``Event`` returns 202 at once, ``RequestResponse``
        waits for the response. The watchdog ends the invocation at the function's Timeout, or
        at ``timeout_s`` when that is shorter (API Gateway's integration timeout)."""
        request_id = str(uuid.uuid4())
        if invocation_type == "DryRun":
            return InvokeResult(204, b"", request_id)
        limit = ASYNC_PAYLOAD_LIMIT if invocation_type == "Event" else SYNC_PAYLOAD_LIMIT
        if len(payload) > limit:
            raise PayloadTooLarge(
                f"{len(payload)} byte payload is over the {limit} byte limit of {invocation_type} "
                "invocations"
            )
        try:
            json.loads(payload or b"{}")
        except ValueError:
            raise InvalidPayload("Could not parse request body into json") from None
        call = self._start(
            function, payload or b"{}", invocation_type, request_id, source, 1, timeout_s
        )
        if invocation_type == "Event":
            return InvokeResult(202, b"", request_id)
        call.done.wait()
        assert call.result is not None
        return call.result

    def submit(
        self,
        function: FunctionSpec,
        payload: bytes,
        callback: Callable[[InvokeResult], None],
        *,
        source: str,
    ) -> str:
        """A synchronous (``RequestResponse``) invocation whose result goes to ``callback``
        instead of a waiting caller (how an event source mapping invokes)."""
        request_id = str(uuid.uuid4())
        self._start(function, payload, "RequestResponse", request_id, source, 1, callback=callback)
        return request_id

    def _start(
        self,
        function: FunctionSpec,
        payload: bytes,
        invocation_type: str,
        request_id: str,
        source: str,
        attempt: int,
        timeout_s: float | None = None,
        callback: Callable[[InvokeResult], None] | None = None,
    ) -> _Call:
        record = Invocation(
            function.name, request_id, invocation_type, source, self._clock.now(), attempt
        )
        call = _Call(function, payload, invocation_type, request_id, record, callback)
        call.timeout = (
            float(function.timeout_s) if timeout_s is None else min(timeout_s, function.timeout_s)
        )
        if invocation_type == "Event":
            with self._lock:
                self._accepted[id(call)] = call
                if self._frozen:
                    return call
        self._activity.begin()
        entry = self._functions[function.name]
        with self._lock:
            if entry.limit is not None and entry.running >= entry.limit:
                entry.waiting.append(call)
                return call
            entry.running += 1
        self._launch(call)
        return call

    def _launch(self, call: _Call) -> None:
        """Start an admitted invocation: its Timeout counts from now."""
        call.started = self._wall.monotonic()
        call.deadline = call.started + call.timeout
        with self._watch_cond:
            heapq.heappush(self._watch, (call.deadline, next(self._watch_seq), call))
            self._watch_cond.notify()
        self._pool.submit(lambda: self._run(call))

    def _count_execution(self, event: Any) -> tuple[str, str, int] | None:
        """Count a step envelope's run; the attempt it runs (None: no step envelope)."""
        if not (isinstance(event, dict) and StepEnvelope.recognise(event)):
            return None
        attempt = (str(event["run_id"]), str(event["key"]), int(event["attempt"]))
        with self._lock:
            self.executions[attempt] += 1
        return attempt

    def repeated(self) -> dict[tuple[str, str, int], int]:
        """Attempts whose envelope a handler ran more than once (it must never happen:
        nothing in Stepwell's path may make Lambda run a step's code again)."""
        with self._lock:
            return {k: n for k, n in self.executions.items() if n > 1}

    def _run(self, call: _Call) -> None:
        function = call.function
        with self._lock:
            if self._frozen and call.invocation_type == "Event":
                # Not begun when the stack froze: kept for the saved state, never run here.
                self._functions[function.name].running -= 1
                frozen = True
            else:
                self._accepted.pop(id(call), None)
                frozen = False
        if frozen:
            call.finish(self._error(call, "Local.StackStopped", "kept for the next start", []))
            self._activity.end()
            return
        try:
            container = self._acquire(function, call)
        except Exception as exc:  # an emulator bug: report it as the invocation's error
            if call.finish(self._error(call, "Local.EmulatorError", repr(exc), [])):
                self._done(call)
            raise
        containers.enter(container, self._log_book)
        try:
            if container.init_error is not None:
                error = container.init_error
                outcome = self._error(call, error["errorType"], error["errorMessage"], [])
            else:
                assert container.handler is not None
                context = LambdaContext(function, call.request_id, call.deadline, self._wall)
                try:
                    event = json.loads(call.payload)
                    containers.note_attempt(self._count_execution(event))
                    response = container.handler(event, context)
                    body = b"" if call.invocation_type == "Event" else _encode(response)
                    if len(body) > SYNC_PAYLOAD_LIMIT:
                        outcome = self._error(
                            call,
                            "Function.ResponseSizeTooLarge",
                            "Response payload size exceeded maximum allowed payload size "
                            f"({SYNC_PAYLOAD_LIMIT} bytes).",
                            [],
                        )
                    else:
                        outcome = InvokeResult(200, body, call.request_id)
                except _MarshalError as exc:
                    outcome = self._error(call, "Runtime.MarshalError", str(exc), [])
                except SystemExit as exc:  # the runtime process would have exited
                    message = f"Runtime exited with error: exit status {exc.code}"
                    outcome = self._error(call, "Runtime.ExitError", message, [])
                except Exception as exc:  # the handler's error is the invocation's result
                    stack = traceback.format_list(traceback.extract_tb(exc.__traceback__)[1:])
                    outcome = self._error(call, type(exc).__name__, str(exc), stack)
        finally:
            containers.leave()
        if call.finish(outcome):
            with self._lock:
                if container.init_error is None and container.generation == self._generation:
                    self._functions[function.name].idle.append(container)
            self._done(call)
        else:
            # The watchdog ended this invocation: the container is gone, as on Lambda.
            self._pool.retire_current()

    def _acquire(self, function: FunctionSpec, call: _Call) -> Container:
        with self._lock:
            idle = self._functions[function.name].idle
            if idle:
                return idle.pop()
        container = Container(function, self._runtimes, self._generation)
        call.record.cold_start = True
        try:
            container.handler = load_handler(function, container.id)
        except _InitError as exc:
            container.init_error = {"errorType": exc.error_type, "errorMessage": str(exc)}
        return container

    def _error(self, call: _Call, error_type: str, message: str, stack: list[str]) -> InvokeResult:
        body = {
            "errorMessage": message,
            "errorType": error_type,
            "requestId": call.request_id,
            "stackTrace": stack,
        }
        return InvokeResult(
            200 if call.invocation_type != "Event" else 202,
            json.dumps(body).encode(),
            call.request_id,
            "Unhandled",
        )

    def _done(self, call: _Call) -> None:
        """Bookkeeping once an invocation ended (by its handler or by the watchdog)."""
        result = call.result
        assert result is not None
        entry = self._functions[call.function.name]
        with self._lock:
            entry.running -= 1
            admitted = entry.waiting.popleft() if entry.waiting else None
            if admitted is not None:
                entry.running += 1
        if admitted is not None and not self._stopping:
            self._launch(admitted)
        call.record.duration_ms = (self._wall.monotonic() - call.started) * 1000
        if result.function_error:
            error = result.decoded()
            call.record.error_type = (
                str(error.get("errorType")) if isinstance(error, dict) else "Unhandled"
            )
        self.history.append(call.record)
        try:
            if call.callback is not None:
                call.callback(result)
            if self._on_invocation is not None:
                self._on_invocation(call.record)
            if call.invocation_type == "Event" and result.function_error:
                self._retry_async(call)
        except Exception:  # a bookkeeping bug must not leave the stack busy for ever
            traceback.print_exc()
        finally:
            self._activity.end()

    def _retry_async(self, call: _Call) -> None:
        attempt = call.record.attempt
        if attempt > min(call.function.async_retries, len(ASYNC_RETRY_DELAYS)) or self._stopping:
            self.failures.append(call.record)
            if self._on_failure is not None and call.result is not None and not self._stopping:
                self._on_failure(call.function, call.payload, call.result, attempt)
            return
        due = self._clock.now() + ASYNC_RETRY_DELAYS[attempt - 1]

        def retry() -> None:
            if not self._stopping:
                self._start(
                    call.function,
                    call.payload,
                    "Event",
                    call.request_id,
                    call.record.source,
                    attempt + 1,
                )

        self._later(due, retry)

    def _watchdog_loop(self) -> None:
        while True:
            with self._watch_cond:
                while not self._stopping and (
                    not self._watch or self._watch[0][0] > self._wall.monotonic()
                ):
                    wait = self._watch[0][0] - self._wall.monotonic() if self._watch else None
                    self._watch_cond.wait(None if wait is None else max(wait, 0.001))
                if self._stopping:
                    return
                _, _, call = heapq.heappop(self._watch)
            if call.done.is_set():
                continue
            seconds = call.deadline - call.started
            timed_out = self._error(
                call,
                "Sandbox.Timedout",
                f"RequestId: {call.request_id} Error: Task timed out after {seconds:.2f} seconds",
                [],
            )
            if call.finish(timed_out):
                self._done(call)

    def retire_warm(self) -> None:
        """As a deployment does: no warm container is used again (those running end their
        invocation first); the next invocations start cold, with the code and definitions as
        they are now."""
        with self._lock:
            self._generation += 1
            for entry in self._functions.values():
                entry.idle.clear()

    def freeze(self) -> None:
        """Begin no more asynchronous invocations: those accepted from now on, or accepted and
        not yet begun, stay in :meth:`accepted` (the local stack saves them when it stops, and
        starts them after it restarts). Invocations already running go on to their end."""
        with self._lock:
            self._frozen = True

    def accepted(self) -> list[tuple[FunctionSpec, bytes, str]]:
        """Asynchronous invocations accepted and not yet begun: function, payload, source."""
        with self._lock:
            return [(c.function, c.payload, c.record.source) for c in self._accepted.values()]

    def busy_containers(self) -> int:
        """Invocations in flight (for status lines)."""
        with self._watch_cond:
            return sum(1 for _, _, call in self._watch if not call.done.is_set())

    def stop(self) -> None:
        """Stop taking work; running handlers are abandoned (their threads are daemons)."""
        self._stopping = True
        with self._watch_cond:
            pending = [call for _, _, call in self._watch]
            self._watch.clear()
            self._watch_cond.notify_all()
        with self._lock:
            for entry in self._functions.values():
                pending.extend(entry.waiting)
                entry.waiting.clear()
        for call in pending:  # callers waiting for a response get one
            call.finish(self._error(call, "Local.StackStopped", "the local stack stopped", []))
        self._pool.shutdown()


class _MarshalError(TypeError):
    pass


def _encode(response: Any) -> bytes:
    try:
        return json.dumps(response).encode()
    except (TypeError, ValueError) as exc:
        raise _MarshalError(f"Unable to marshal response: {exc}") from None
