"""The local stack: template.yaml run in one Python process, with no Docker and no account.

Over 500 lines: the stack's life (start, stop, saved state, reloads), its pump and virtual time
and the wiring of its services all act on the one stack object.

``LocalStack(project).start()`` reads the template, creates its table, bucket, queues, buses,
schedule groups and secrets in moto (in process), starts the HTTP API on 127.0.0.1, and from
then on runs the template's functions for every source the template wires to them: HTTP routes,
EventBridge rules, ``Schedule``/``ScheduleV2`` events, SQS event source mappings, and the rules
and schedules made while it runs. The runtime's own boto3 adapters are used unchanged; the calls
that leave the process on AWS are answered by the stack (:mod:`stepwell.local.intercept`), each
AWS service by its own module, which the stack builds from the template and wires to the
others: Lambda (:mod:`~stepwell.local.functions` over the emulator of
:mod:`~stepwell.local.lambdas`), SQS (:mod:`~stepwell.local.queues`), EventBridge
(:mod:`~stepwell.local.events`, :mod:`~stepwell.local.rules`), EventBridge Scheduler
(:mod:`~stepwell.local.scheduler`), CloudFormation (:mod:`~stepwell.local.publications`), Bedrock
(:mod:`~stepwell.local.models`) and Step Functions' task calls
(:mod:`~stepwell.local.stepfunctions`).

The stack's *pump* thread fires whatever is due (schedules, delayed messages, async retries),
hands visible messages to their mappings, and, with virtual time, moves the clock straight to
the next due item whenever nothing is running.

One environment: every function of Stepwell's template gets the same ``Globals`` variables, so
the variables all functions share are also set in ``os.environ`` (Powertools and the store read
it); each container's runtime is still built from its own function's variables.
"""

from __future__ import annotations

import getpass
import heapq
import itertools
import json
import os
import re
import threading
import time
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from stepwell.definition.durations import parse_duration
from stepwell.definition.groups import GROUPS_FILE
from stepwell.definition.loader import fingerprint
from stepwell.definition.models import Workflow
from stepwell.local import (
    engine,
    events,
    functions,
    groups,
    models,
    notifications,
    outbox,
    publications,
    queues,
    quick_moto,
    resources,
    scheduler,
    state,
    stepfunctions,
)
from stepwell.local.clock import Activity, StackClock
from stepwell.local.containers import ContainerRuntime
from stepwell.local.events import EventBuses
from stepwell.local.functions import PUBLISHER_HANDLER, TRIGGER_HANDLER, WORKFLOWS_HANDLER
from stepwell.local.httpapi import HttpApi, Route
from stepwell.local.intercept import Interceptor
from stepwell.local.lambdas import (
    InvalidPayload,
    Invocation,
    InvokeResult,
    LambdaEmulator,
    PayloadTooLarge,
    UnknownFunction,
    forget_handlers,
)
from stepwell.local.logs import LogBook
from stepwell.local.models import LocalModel
from stepwell.local.publications import RESPONSE_PATH, Publications, publish_folder
from stepwell.local.queues import LocalQueue, QueueMapping
from stepwell.local.rules import DEFAULT_BUS
from stepwell.local.scheduler import ScheduleFilter, Schedules
from stepwell.local.schedules import Schedule, scheduled_event, target_input
from stepwell.local.template import (
    ACCOUNT,
    HTTP_API_TYPES,
    IMPLICIT_HTTP_API,
    REGION,
    STACK,
    FunctionSpec,
    HttpRoute,
    Resolver,
    RuleSource,
    ScheduleSource,
    Template,
    api_endpoint,
    local_names,
    unserved,
)
from stepwell.local.template import functions as template_functions
from stepwell.local.template import queues as template_queues
from stepwell.runtime import wiring
from stepwell.runtime.aws.groups import ParameterGroups
from stepwell.runtime.metrics import CountingMetrics
from stepwell.runtime.orchestrator import Orchestrator
from stepwell.runtime.wiring import Runtime
from stepwell.store.dynamodb import DynamoStore
from stepwell.ui import assets as dashboard


def _all_or_none(on: bool) -> ScheduleFilter:
    def every(_function: FunctionSpec, _source: ScheduleSource) -> bool:
        return on

    return every


def starts_workflow(source: ScheduleSource) -> bool:
    """True for a schedule that starts a workflow (its Input names one: a trigger)."""
    try:
        payload = json.loads(source.input or "null")
    except ValueError:
        return False
    return isinstance(payload, dict) and "workflow" in payload


HOLD_MARGIN = timedelta(minutes=15)
"""With waits held, virtual time never jumps to within this of an open approval's or
callback's expiry: a person has that long to answer before the clock reaches it."""


@dataclass
class Hold:
    """Virtual time stands still until :meth:`release` (idempotent)."""

    _activity: Activity
    _released: bool = False

    def release(self) -> None:
        if not self._released:
            self._released = True
            self._activity.release()

    def __enter__(self) -> Hold:
        return self

    def __exit__(self, *_: object) -> None:
        self.release()


class LocalStack:
    """template.yaml, running locally. Use as a context manager or start()/stop()."""

    def __init__(
        self,
        project: str | Path = ".",
        *,
        template: str | Path = "template.yaml",
        virtual_time: bool = False,
        start_time: datetime | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        parameters: Mapping[str, str] | None = None,
        environment: Mapping[str, str] | None = None,
        schedules: bool | ScheduleFilter = True,
        on_invocation: Callable[[Invocation], None] | None = None,
        on_request: Callable[[str, str, int, float], None] | None = None,
        max_workers: int = 16,
        concurrency: Mapping[str, int] | None = None,
        hold_waits: bool = False,
        state_folder: Path | None = None,
        on_reload: Callable[[Mapping[str, Workflow], list[str]], None] | None = None,
        workflows: Path | None = None,
        on_template_change: Callable[[str], None] | None = None,
    ) -> None:
        self.project = Path(project).resolve()
        self.workflow_folder = None if workflows is None else Path(workflows).resolve()
        """Publish every workflow file of this folder (as ``stepwell publish`` would), replayed
        by a workflows function that holds it, instead of the template's
        Custom::StepwellWorkflow resources (tests and benchmarks of workflows of their own)."""
        self.publications: Publications | None = None
        self._on_template_change = on_template_change
        """Called (with what to do) when the template file changes while the stack runs."""
        self.state_folder = state_folder
        """Where the stack keeps its state between starts (None: in memory only); see
        :mod:`stepwell.local.state`."""
        self.restored: state.Snapshot | None = None
        """What the stack started from, when it found saved state."""
        self._kept: state.Kept | None = None
        self._keeper: threading.Thread | None = None
        self._on_reload = on_reload
        """Called with the workflows and the broken files' problems after workflow files
        changed and were read again (None: files are read once, at start)."""
        self._fallback: Runtime | None = None
        self._template: Template | None = None
        self._resolver: Resolver | None = None
        self._broken: list[str] = []
        self.hold_waits = hold_waits
        """With virtual time: never jump over an open approval or callback wait on its own (a
        person could not answer it); ``advance`` moves the clock on request."""
        self.template_path = (self.project / template).resolve()
        self.clock = StackClock(virtual_time, start_time)
        self.activity = Activity()
        self.host = host
        self.port = port
        self.parameters = dict(parameters or {})
        self.environment = dict(environment or {})
        """Variables set on every function, over the template's (as ``sam local --env-vars``)."""
        self._schedule_filter: ScheduleFilter = (
            schedules if callable(schedules) else _all_or_none(bool(schedules))
        )
        self._on_invocation = on_invocation
        self._on_request = on_request
        self._max_workers = max_workers
        """Invocations at once. Each warm container keeps its own runtime (and boto3 clients),
        as on Lambda; moto answers one request at a time, so more than this adds memory (a
        1,000-item fan-out: about 380 MB at 16, 870 MB at 64) and no speed."""
        self._limits = dict(concurrency or {})
        self.functions: list[FunctionSpec] = []
        self.queues: dict[str, LocalQueue] = {}
        self.mappings: list[QueueMapping] = []
        self.emulator: LambdaEmulator | None = None
        self.buses: EventBuses | None = None
        self.schedules: Schedules | None = None
        self.api: HttpApi | None = None
        self.warnings: list[str] = []
        self._agenda: list[tuple[datetime, int, Callable[[], None]]] = []
        self._agenda_lock = threading.Lock()
        self._agenda_seq = itertools.count()
        self._runtimes: dict[tuple[tuple[str, str], ...], Runtime] = {}
        self._runtimes_lock = threading.Lock()
        self._exit = ExitStack()
        self._pump_thread: threading.Thread | None = None
        self._stopping = threading.Event()
        self._started = False
        self.model = LocalModel()
        """What answers agent steps' Bedrock calls (see :mod:`stepwell.local.models`)."""
        self.metrics = CountingMetrics()
        """What CloudWatch would receive: the run and step metrics of every function."""
        self.logs = LogBook(self.clock.now)
        """What CloudWatch Logs would hold of each step attempt: its functions' log lines."""

    # -- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> LocalStack:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def start(self) -> LocalStack:
        """Create the resources, start the API, the pump and the interception."""
        if self._started:
            return self
        try:
            self._start()
        except BaseException:
            self._exit.close()
            raise
        self._started = True
        return self

    def _start(self) -> None:
        template = engine.load(self.template_path)
        self._exit.enter_context(
            resources.environ(
                {
                    **resources.FAKE_CREDENTIALS,
                    "AWS_REGION": REGION,
                    "AWS_DEFAULT_REGION": REGION,
                    # Run and step metrics go to self.metrics; Powertools prints nothing.
                    "POWERTOOLS_METRICS_DISABLED": "true",
                },
                drop=resources.AWS_SETTINGS,
            )
        )
        from moto import mock_aws

        # Batch jobs end at once rather than in Docker (a .sync job waits for its end).
        moto = mock_aws(config={"batch": {"use_docker": False}})
        moto.start()
        self._exit.callback(moto.stop)  # also puts back boto3's default session
        resources.use_default_session(REGION)
        self._exit.enter_context(resources.serialized_moto())
        self._exit.enter_context(quick_moto.quick_moto())

        # The project's groups file, where the functions read it (the user's variables win).
        self.environment = {
            **groups.publish(self.project, REGION, self.warnings),
            **self.environment,
        }
        saved = state.read(self.state_folder) if self.state_folder is not None else None
        if saved is not None:
            self._resume_clock(saved)
        physical = local_names(template, parameters=self.parameters)
        resolver = Resolver(template, physical, self.parameters)
        physical.update(
            resources.create_secrets(
                template, resolver, REGION, saved.secrets if saved is not None else None
            )
        )
        resolver = Resolver(template, physical, self.parameters)
        queue_specs = resources.create_resources(
            template,
            self.template_path,
            resolver,
            physical,
            template_queues(template, resolver, physical),
            REGION,
        )
        self._kept = state.Kept(
            tables=tuple(
                physical[k].ref for k in template.of_type("AWS::DynamoDB::Table") if k in physical
            ),
            buckets=tuple(
                physical[k].ref for k in template.of_type("AWS::S3::Bucket") if k in physical
            ),
            secrets={
                k: physical[k].ref
                for k in template.of_type("AWS::SecretsManager::Secret")
                if k in physical
            },
        )
        if saved is not None:
            state.put_back(saved, REGION)

        # The API must be bound before the functions' environment names its URL.
        self.warnings.extend(unserved(template, resolver))
        api_ids = [physical[k].ref for k in template.of_type(*HTTP_API_TYPES) if k in physical]
        if IMPLICIT_HTTP_API in physical:
            api_ids.append(physical[IMPLICIT_HTTP_API].ref)
        specs = template_functions(template, resolver, physical)
        routes = [
            Route(event, spec.name)
            for spec in specs
            for event in spec.events
            if isinstance(event, HttpRoute)
        ]
        self.api = HttpApi(
            routes,
            lambda route, event, timeout_s: functions.invoke_for_http(
                self._lambda(), route, event, timeout_s
            ),
            now=self.clock.now,
            api_id=api_ids[0] if api_ids else "local",
            account=ACCOUNT,
            host=self.host,
            port=self.port,
            on_request=self._on_request,
            activity=self.activity,
            user=_local_user(),
            aws=self._aws_call,
            local=self._local_call,
            static=dashboard.serve,
        )
        self._exit.callback(self.api.server.server_close)
        endpoints = {api_endpoint(api): self.api.url for api in api_ids}
        if self.workflow_folder is not None:
            specs.append(publications.folder_function(specs, self.workflow_folder))
        # The runner sends apigateway:invoke of the stack's own APIs here.
        hosts = ",".join(f"{e.removeprefix('https://')}={u}" for e, u in endpoints.items())
        served = {wiring.LOCAL_APIS: hosts}
        overrides = served | self.environment
        self.functions = [functions.localize(s, endpoints, overrides) for s in specs]
        notifications.prepare(self.functions, {**os.environ, **self.environment}, REGION)
        self._exit.enter_context(resources.environ(functions.common_environment(self.functions)))

        self.emulator = LambdaEmulator(
            self.functions,
            clock=self.clock,
            activity=self.activity,
            runtimes=self._runtime_for,
            later=self.later,
            max_workers=self._max_workers,
            concurrency=functions.concurrency(self.functions, self._limits),
            on_invocation=self._on_invocation,
            on_failure=self._async_failure,
            log_book=self.logs.add,
        )
        self._exit.callback(forget_handlers)
        self._exit.callback(self.emulator.stop)  # (again: stopping twice is harmless)
        self.queues, self.mappings = queues.build(
            queue_specs, self.functions, self.emulator, self.clock, REGION, self.activity.poke
        )
        self.schedules = schedules = scheduler.build(
            template,
            physical,
            self._fire_schedule,
            self.activity.poke,
            self._template_schedules("ScheduleV2"),
            self.clock.now(),
        )
        self.buses = events.build(
            template,
            physical,
            [
                *((s, e) for s in self.functions for e in s.events if isinstance(e, RuleSource)),
                *self._template_schedules("Schedule"),
            ],
            self._deliver,
            self._delivers_to,
            lambda rule, gone: scheduler.time_rule(schedules, rule, gone, self.clock.now),
            self.clock,
        )
        assert self.schedules is not None and self.buses is not None
        if saved is not None:
            by_name = {queue.name: queue for queue in self.queues.values()}
            for name, messages in saved.queues.items():
                if name in by_name:
                    by_name[name].restore(messages)
            self.schedules.restore(saved.schedules)
            self.buses.rules.restore(saved.rules)

        self.model = LocalModel.load(
            models.fixtures_file(self.environment, self._workflow_files(), self.project)
        )
        interceptor = Interceptor(
            {
                **functions.operations(self.emulator),
                **queues.operations(self.queues),
                **events.operations(self.buses, self.clock.now),
                **models.operations(self.model),
                **publications.operations(self._app_functions, self.clock.now),
                **scheduler.operations(self.schedules, self.clock.now, self._delivers_to),
            }
        )
        interceptor.install()
        self._exit.callback(interceptor.uninstall)
        # Stopped before the hooks go: a handler still running must not reach moto or AWS.
        self._exit.callback(self.emulator.stop)
        self.interceptor = interceptor

        # Built now, so a broken definition or a missing secret shows at start, not mid-run.
        if self.functions:
            self._fallback = self._runtime_for(self.functions[0])
            wiring.use(ContainerRuntime(self._outside))
            self._exit.callback(wiring.use, None)

        if saved is not None:
            # Before the pump: with virtual time, an idle stack would jump over them.
            for entry in saved.invocations:
                self._deliver(entry["function"], entry["payload"].encode(), entry["source"])
        self.api.start()
        self._exit.callback(self.api.stop)
        self._template, self._resolver = template, resolver
        # Published before the pump runs: with virtual time, a stack idle meanwhile would jump
        # over what waits (the publisher answers through the API, so that is up already).
        self._publish()
        self._pump_thread = threading.Thread(target=self._pump, name="stack-pump", daemon=True)
        self._pump_thread.start()
        self._exit.callback(self._stop_pump)
        if saved is not None:
            self.restored = saved
        if self.state_folder is not None:
            self._keeper = threading.Thread(target=self._keep, name="stack-state", daemon=True)
            self._keeper.start()
        if self._on_reload is not None and self.functions:
            watcher = threading.Thread(
                target=self._watch,
                args=(
                    fingerprint(self._workflow_files()),
                    _stamp(self.template_path),
                    _stamp(self.project / GROUPS_FILE),
                ),
                name="stack-watch",
                daemon=True,
            )
            watcher.start()

    def stop(self) -> None:
        """Stop everything and restore the process (environment, moto, boto3 hooks). With a
        state folder, the stack first lets running invocations end and saves its state."""
        if not self._started:
            return
        self._started = False
        try:
            if self.state_folder is not None:
                self._wind_down()
        finally:
            self._exit.close()

    # -- definitions that change -------------------------------------------------------------
    WATCH_EVERY_S = 1.0
    """How often the stack looks for changed workflow files (with ``on_reload``)."""

    def redeploy(self) -> None:
        """Read the workflow files again, as a deployment would: the warm containers retire
        (the next invocations start cold with the new definitions and handler code), new runs
        take the new versions, runs in flight keep the versions they pinned."""
        assert self.emulator is not None
        with self._runtimes_lock:
            self._runtimes.clear()
        self.emulator.retire_warm()
        self._fallback = self._runtime_for(self.functions[0])
        self._publish()
        if self._on_reload is not None:
            self._on_reload(self._fallback.workflows.all(), _broken_files(self._fallback))

    def _outside(self) -> Runtime:
        """The runtime of code outside any invocation (a thread a handler started)."""
        assert self._fallback is not None
        return self._fallback

    def _workflow_files(self) -> list[Path]:
        """The folders that hold workflow files: every workflows function's code."""
        return sorted(
            {spec.code_uri for spec in self.functions if spec.handler == WORKFLOWS_HANDLER}
        )

    def _watch(
        self, seen: Any, template: tuple[int, int] | None, people: tuple[int, int] | None
    ) -> None:
        """Watch the workflow files, the groups file and the template from what they were at
        the start (read before this thread runs, so an edit made meanwhile is seen)."""
        while not self._stopping.wait(self.WATCH_EVERY_S):
            if _stamp(self.project / GROUPS_FILE) != people:
                people = _stamp(self.project / GROUPS_FILE)
                self._groups_changed()
            marks = fingerprint(self._workflow_files())
            if marks != seen:
                seen = marks
                try:
                    self.redeploy()
                except Exception as exc:  # a reload must never take the stack down
                    self.warnings.append(f"reloading the workflows failed: {exc!r}")
            if _stamp(self.template_path) != template:
                template = _stamp(self.template_path)
                note = (
                    f"{self.template_path.name} changed: restart to pick up its functions and "
                    "resources (workflow files are read again as they change)"
                )
                self.warnings.append(note)
                if self._on_template_change is not None:
                    self._on_template_change(note)

    def _groups_changed(self) -> None:
        """groups.yaml changed: put it into SSM again, and have every function read it at the
        next wait that opens (their cached copy forgotten)."""
        if "STEPWELL_GROUPS_PARAMETER" not in self.environment:
            self.warnings.append(f"{GROUPS_FILE} appeared: restart to use it")
            return
        found: list[str] = []
        if not groups.publish(self.project, REGION, found):
            found.append(f"{GROUPS_FILE} is gone: the groups stay as they were")
        self.warnings.extend(found)
        with self._runtimes_lock:
            runtimes = list(self._runtimes.values())
        for runtime in runtimes:
            if isinstance(runtime.orchestrator.groups, ParameterGroups):
                runtime.orchestrator.groups.forget()

    # -- durable state -----------------------------------------------------------------------
    SAVE_EVERY_S = 2.0
    """While it runs, the stack saves its state this often when something changed."""
    DRAIN_S = 5.0
    """On stop, how long running invocations get to end before the state is saved."""

    def snapshot(self, *, invocations: bool = False) -> state.Snapshot:
        """The stack's state now. ``invocations``: with the asynchronous invocations accepted
        and not begun (only once the emulator is frozen: saved while they could still begin,
        a restart would run them a second time)."""
        assert self._kept is not None and self.schedules is not None
        with resources.moto_held():
            tables, buckets, secrets = state.capture(self._kept, REGION)
        pending = self.emulator.accepted() if invocations and self.emulator is not None else []
        return state.Snapshot(
            saved_at=self.clock.now().isoformat(),
            virtual=self.clock.virtual,
            tables=tables,
            buckets=buckets,
            secrets=secrets,
            queues={queue.name: queue.snapshot() for queue in self.queues.values()},
            schedules=self.schedules.snapshot(),
            rules=self.buses.rules.snapshot() if self.buses is not None else [],
            invocations=[
                {"function": spec.name, "payload": payload.decode(), "source": source}
                for spec, payload, source in pending
            ],
        )

    def _resume_clock(self, saved: state.Snapshot) -> None:
        """A virtual clock goes on from where it stopped; real time cannot."""
        try:
            then = datetime.fromisoformat(saved.saved_at)
        except ValueError:
            raise state.StateError(f"saved_at {saved.saved_at!r} is not a time") from None
        if self.clock.virtual:
            self.clock.jump_to(then)
        elif then > self.clock.now() + timedelta(minutes=1):
            self.warnings.append(
                f"the saved state's virtual clock is {then - self.clock.now()} ahead of real "
                "time: its timers fire when real time gets there (start with --virtual-time to "
                "go on from it)"
            )

    def _keep(self) -> None:
        """Save every few seconds while something changes (a killed process loses at most
        the last of them)."""
        assert self.state_folder is not None
        seen = self.activity.changes
        while not self._stopping.wait(self.SAVE_EVERY_S):
            if self.activity.changes != seen:
                seen = self.activity.changes
                state.write(self.state_folder, self.snapshot())

    def _wind_down(self) -> None:
        """Stop taking work, let what runs end, save."""
        assert self.state_folder is not None and self.api is not None
        self.api.stop()
        self._stop_pump()
        if self._keeper is not None:
            self._keeper.join(timeout=30)
        if self.emulator is not None:
            self.emulator.freeze()
            deadline = self.clock.wall().monotonic() + self.DRAIN_S
            while self.emulator.busy_containers() and self.clock.wall().monotonic() < deadline:
                time.sleep(0.05)
        state.write(self.state_folder, self.snapshot(invocations=True))

    def _stop_pump(self) -> None:
        self._stopping.set()
        self.activity.poke()
        if self._pump_thread is not None:
            self._pump_thread.join(timeout=5)

    # -- building ----------------------------------------------------------------------------
    def _template_schedules(self, kind: str) -> list[tuple[FunctionSpec, ScheduleSource]]:
        """The template's schedule events of ``kind`` that the stack runs (the others are
        noted as off)."""
        found, off = scheduler.template_schedules(self.functions, kind, self._schedule_filter)
        self.warnings.extend(off)
        return found

    # -- publishing workflows ----------------------------------------------------------------
    FOLDER_FUNCTION = publications.FOLDER_FUNCTION
    """The workflows function that holds ``workflows=``'s folder (its code-first replays)."""

    def _publish(self) -> None:
        """Publish the workflows: the template's Custom::StepwellWorkflow resources (each sent
        to the publisher as CloudFormation would), or ``workflows=``'s folder."""
        if self._fallback is None:
            return
        if self.workflow_folder is not None:
            # The app's functions (a nested engine's are no step functions), by logical id and
            # by name, as the publisher binds them from the app's stack.
            own = self._app_functions()
            arns = {spec.logical_id: spec.arn for spec in own}
            arns.update({spec.name: spec.arn for spec in own})
            publisher = next(
                (spec for spec in self.functions if spec.handler == PUBLISHER_HANDLER),
                self.functions[0],
            )
            failures = publish_folder(
                self._runtime_for(publisher).workflows,
                self.workflow_folder,
                arns,
                runner=self._function(self.FOLDER_FUNCTION).arn,
            )
        else:
            if self.publications is None:
                assert self.api is not None
                api = self.api
                self.publications = Publications(
                    invoke=lambda name, payload: functions.invoke_for_json(
                        self._lambda(), name, payload
                    ),
                    stack_id=publications.STACK_ID,
                    response_url=lambda request: f"{api.url}{RESPONSE_PATH}{request}",
                    package=self._package,
                )
            assert self._template is not None and self._resolver is not None
            failures = self.publications.deploy(
                publications.workflow_resources(self._template, self._resolver)
            )
        self._broken = failures
        self.warnings.extend(f"publishing: {line}" for line in failures)

    def _app_functions(self) -> list[FunctionSpec]:
        assert self._template is not None
        return publications.app_functions(self.functions, self._template)

    def _runtime_for(self, spec: FunctionSpec) -> Runtime:
        """A container's runtime: the function's environment builds the clients, store, catalog
        and signing keys once (shared by warm containers of that environment, as immutable
        configuration); each container gets its own orchestrator (its command queue is
        per-invocation state, as in one Lambda container)."""
        key = tuple(sorted(spec.environment.items()))
        with self._runtimes_lock:
            base = self._runtimes.get(key)
            if base is None:
                base = wiring.from_environment(spec.environment, clock=self.clock)
                if isinstance(base.store, DynamoStore):
                    # pynamodb makes its client at the first request, unlocked: the containers
                    # of a fan-out starting at once would each make one (each loading
                    # botocore's models again, seconds of CPU and megabytes apiece)
                    base.store.client  # noqa: B018
                self._runtimes[key] = base
        orchestrator = Orchestrator(
            base.store,
            base.orchestrator.ports,
            self.clock,
            base.workflows.get,
            metrics=self.metrics,
            groups=base.orchestrator.groups,
        )
        return replace(base, orchestrator=orchestrator, logs=self.logs)

    # -- the pump ----------------------------------------------------------------------------
    def later(self, when: datetime, action: Callable[[], None]) -> None:
        """Run ``action`` when the stack's clock reaches ``when``."""
        with self._agenda_lock:
            heapq.heappush(self._agenda, (when, next(self._agenda_seq), action))
        self.activity.poke()

    def _pump(self) -> None:
        while not self._stopping.is_set():
            seen = self.activity.changes
            try:
                if self._step():
                    continue
                now = self.clock.now()
                wake = self._next_due(one_time_only=False)
                if self.clock.virtual and self._quiet():
                    target = self._next_due(one_time_only=True)
                    if target is not None and target > now and not self._waits_before(target):
                        with self.activity.unchanged_since(seen) as still:
                            if still:
                                self.clock.jump_to(target)
                        continue
                timeout = 1.0 if wake is None else min(1.0, max(0.0, (wake - now).total_seconds()))
            except Exception:  # the pump must survive a bug in one source
                import traceback

                traceback.print_exc()
                timeout = 0.1
            self.activity.wait(seen, timeout)

    def _step(self) -> bool:
        now = self.clock.now()
        actions: list[Callable[[], None]] = []
        with self._agenda_lock:
            while self._agenda and self._agenda[0][0] <= now:
                actions.append(heapq.heappop(self._agenda)[2])
        for action in actions:
            action()
        fired = self.schedules.fire_due(now) if self.schedules else 0
        polled = False
        for mapping in self.mappings:
            polled = mapping.poll() or polled
        return bool(actions) or fired > 0 or polled

    def _next_due(self, *, one_time_only: bool) -> datetime | None:
        candidates: list[datetime] = []
        with self._agenda_lock:
            if self._agenda:
                candidates.append(self._agenda[0][0])
        if self.schedules is not None:
            found = self.schedules.next_due(one_time_only=one_time_only)
            if found is not None:
                candidates.append(found)
        for mapping in self.mappings:
            if mapping.source.enabled:
                found = mapping.queue.next_visible()
                if found is not None:
                    candidates.append(found)
        return min(candidates, default=None)

    def _waits_before(self, target: datetime) -> bool:
        """Whether an approval, input, callback or event wait of a run expires at or before
        ``target``, or within HOLD_MARGIN after it (so a jump there would decide it for the
        person: the clock goes on from where it jumped, and the timer of a wait already decided
        may stand just before the next wait's), when the stack holds waits."""
        if not self.hold_waits or not self.functions:
            return False
        store = self._runtime_for(self.functions[0]).store
        for due in store.due(target + HOLD_MARGIN, limit=1000):
            if due.key is None:
                continue
            step = store.load(due.run_id, [due.key]).steps.get(due.key)
            waiting = step is not None and step.status == "waiting"
            if (
                waiting
                and step is not None
                and step.waiting_for in ("approval", "input", "callback", "event")
            ):
                return True
        return False

    def time_status(self) -> dict[str, Any]:
        """The clock as ``GET /_local/time`` shows it."""
        return {
            "now": self.clock.now().isoformat(),
            "virtual": self.clock.virtual,
            "holds_waits": self.hold_waits,
            "skipped_s": self.clock.jumped.total_seconds(),
        }

    def _local_call(self, method: str, path: str, body: bytes) -> tuple[int, Any] | None:
        """The local stack's own routes (``/_local/...``), which no deployed stack has."""
        if not path.startswith("/_local/"):
            return None
        if method == "PUT" and path.startswith(RESPONSE_PATH) and self.publications is not None:
            return self.publications.answer(path[len(RESPONSE_PATH) :], body)
        if (method, path) == ("GET", "/_local/time"):
            return 200, self.time_status()
        if (method, path) == ("GET", "/_local/outbox"):
            return 200, {"notifications": outbox.notifications(self.events())}
        if (method, path) == ("POST", "/_local/time/resume"):
            self.hold_waits = False
            self.activity.poke()
            return 200, self.time_status()
        if (method, path) == ("POST", "/_local/time/advance"):
            if not self.clock.virtual:
                return 409, {"error": "conflict", "message": "start stepwell dev --virtual-time"}
            try:
                by = parse_duration(str(json.loads(body or b"{}").get("by", "")))
            except (ValueError, AttributeError) as exc:
                return 422, {"error": "invalid", "message": f"by: {exc} (write it like 2h or 30m)"}
            self.advance(by)
            return 200, self.time_status()
        return 404, {"error": "not_found", "message": f"no local route {method} {path}"}

    def _quiet(self) -> bool:
        """Nothing running, nothing ready to run, nobody holding time."""
        if self.activity.busy or self.activity.held:
            return False
        now = self.clock.now()
        with self._agenda_lock:
            if self._agenda and self._agenda[0][0] <= now:
                return False
        return not any(m.source.enabled and m.queue.visible() for m in self.mappings)

    # -- what the sources call ---------------------------------------------------------------
    def _lambda(self) -> LambdaEmulator:
        assert self.emulator is not None
        return self.emulator

    def _function(self, name: str) -> FunctionSpec:
        return self._lambda().find(name)

    def _package(self, function: str) -> Path | None:
        """The folder of the function ``function`` names (None: no such function here)."""
        try:
            return self._function(function).code_uri
        except UnknownFunction:
            return None

    def _deliver(self, arn: str, payload: bytes, source: str) -> None:
        """What an EventBridge rule or a schedule sends its target: a message to a queue of
        the stack, an asynchronous invoke of one of its functions."""
        assert self.emulator is not None
        queue = self.queues.get(arn)
        if queue is not None:
            queue.send(payload.decode(), 0)
            return
        try:
            self.emulator.invoke(self._function(arn), payload, "Event", source=source)
        except (UnknownFunction, InvalidPayload, PayloadTooLarge) as exc:
            if self.buses is not None:
                self.buses.delivery_errors.append(f"{source}: {type(exc).__name__}: {exc}")

    def _delivers_to(self, arn: str) -> bool:
        """Whether a rule's or a schedule's target is one of the stack's queues or functions."""
        assert self.emulator is not None
        if arn in self.queues:
            return True
        if not arn.startswith("arn:"):  # a target is named by its ARN, never its name
            return False
        try:
            self.emulator.find(arn)
        except UnknownFunction:
            return False
        return True

    def _async_failure(
        self, spec: FunctionSpec, payload: bytes, result: InvokeResult, invocations: int
    ) -> None:
        """Lambda's on-failure destination: the record of an asynchronous invocation that
        failed for good, on the bus (as an event) or the queue (as a message) it names."""
        if spec.on_failure is None:
            return
        record = functions.failure_record(spec, payload, result, invocations, self.clock.now())
        queue = self.queues.get(spec.on_failure)
        if queue is not None:
            queue.send(json.dumps(record), 0)
            return
        assert self.buses is not None
        try:
            self.buses.put(functions.failure_event(spec, record))
        except Exception as exc:  # a destination Lambda cannot reach is dropped, as on AWS
            self.buses.delivery_errors.append(f"on-failure destination of {spec.name}: {exc}")

    def _fire_schedule(self, schedule: Schedule, when: datetime) -> None:
        event = scheduled_event(schedule, when, ACCOUNT, REGION)
        if schedule.kind == "Schedule":  # a rule's timer: the rule's targets get the event
            assert self.buses is not None
            rule = self.buses.rules.find(DEFAULT_BUS, schedule.name)
            if rule is not None and rule.enabled:
                self.buses.deliver(rule, event, f"schedule {rule.name}")
            return
        raw = target_input(schedule, when)
        payload = raw if raw is not None else json.dumps(event)
        arn = str(schedule.target.get("Arn", ""))
        if schedule.kind == "api" and not self._runs_schedule(schedule, arn):
            return
        self._deliver(arn, payload.encode(), f"schedule {schedule.name}")

    def _runs_schedule(self, schedule: Schedule, arn: str) -> bool:
        """Whether a schedule made at run time fires: a published workflow's trigger (one
        that invokes the engine's trigger function) obeys the stack's schedule filter, as a
        template's schedule would; any other fires."""
        try:
            spec = self._function(arn)
        except UnknownFunction:
            return True  # the delivery says what is wrong
        if spec.handler != TRIGGER_HANDLER:
            return True
        source = ScheduleSource(
            name=schedule.name,
            kind="ScheduleV2",
            expression=schedule.expression,
            input=schedule.target.get("Input"),
            timezone=schedule.timezone,
            rule_name=schedule.name,
        )
        return self._schedule_filter(spec, source)

    # -- intercepted operations --------------------------------------------------------------
    def _aws_call(self, target: str, body: bytes) -> tuple[int, Any]:
        """AWS JSON-protocol calls that arrive over HTTP (``aws --endpoint-url``): PutEvents,
        and Step Functions' SendTaskSuccess / SendTaskFailure / SendTaskHeartbeat."""
        if target in stepfunctions.TASK_CALLS:
            return stepfunctions.task_call(self.url, target, body)
        if target != "AWSEvents.PutEvents" or self.buses is None:
            return 400, {
                "__type": "UnknownOperationException",
                "message": f"the local stack answers AWSEvents.PutEvents and Step Functions' "
                f"SendTask* calls over HTTP, not {target}",
            }
        return events.put_events_over_http(self.buses, body)

    # -- for the CLI and tests ---------------------------------------------------------------
    @property
    def url(self) -> str:
        """The HTTP API's base URL (``http://127.0.0.1:PORT``)."""
        if self.api is None:
            raise RuntimeError("the stack is not started")
        return self.api.url

    def workflows(self) -> dict[str, Any]:
        """The published workflows, by name."""
        if self._fallback is None:
            return {}
        return dict(self._fallback.workflows.all())

    def events(self, detail_type: str | None = None) -> list[dict[str, Any]]:
        """Every event put on the stack's buses so far (optionally of one detail-type)."""
        assert self.buses is not None
        return self.buses.events(detail_type)

    def listen(self, listener: Callable[[dict[str, Any]], None]) -> Callable[[], None]:
        """Call ``listener(event)`` for every event put from now on; returns an unsubscribe."""
        assert self.buses is not None
        return self.buses.listen(listener)

    def hold(self) -> Hold:
        """Keep virtual time still until the returned hold is released."""
        self.activity.hold()
        return Hold(self.activity)

    def advance(self, by: timedelta | None = None, *, to: datetime | None = None) -> None:
        """Move virtual time forward (what is due then fires)."""
        target = to if to is not None else self.clock.now() + (by or timedelta(0))
        self.clock.jump_to(target)
        self.activity.poke()

    def idle(self) -> bool:
        """Nothing running and nothing ready to run (future timers may be pending)."""
        if self.activity.busy:
            return False
        now = self.clock.now()
        with self._agenda_lock:
            if self._agenda and self._agenda[0][0] <= now:
                return False
        if self.schedules is not None:
            due = self.schedules.next_due()
            if due is not None and due <= now:
                return False
        return not any(m.source.enabled and m.queue.visible() for m in self.mappings)

    def run_until(self, predicate: Callable[[], bool], timeout: float = 30.0) -> bool:
        """Wait (real seconds) until ``predicate()`` is true; False on timeout."""
        wall = self.clock.wall()
        deadline = wall.monotonic() + timeout
        while True:
            seen = self.activity.changes
            if predicate():
                return True
            left = deadline - wall.monotonic()
            if left <= 0:
                return False
            self.activity.wait(seen, min(left, 0.05))

    def wait_idle(self, timeout: float = 30.0) -> bool:
        """Wait until the stack is idle (see :meth:`idle`); False on timeout."""
        return self.run_until(self.idle, timeout)

    def wait_for_event(
        self, predicate: Callable[[dict[str, Any]], bool], timeout: float = 30.0
    ) -> dict[str, Any] | None:
        """The first event put so far or later that ``predicate`` accepts (None on timeout)."""
        found: list[dict[str, Any]] = []

        def check() -> bool:
            for event in self.events():
                if predicate(event):
                    found.append(event)
                    return True
            return False

        return found[0] if self.run_until(check, timeout) else None


def _stamp(path: Path) -> tuple[int, int] | None:
    """What changes when a file is edited: its modification time and size."""
    try:
        found = path.stat()
    except OSError:
        return None
    return (found.st_mtime_ns, found.st_size)


def _broken_files(runtime: Runtime) -> list[str]:
    """A line for each workflow whose publication was refused, and its problems (a broken file
    breaks only itself: the others run, and its last good version, if any)."""
    return [
        f"workflow {name!r} has {len(problems)} problem"
        f"{'s' if len(problems) != 1 else ''} and was not published:\n"
        + "\n".join(f"  {p}" for p in problems)
        for name, problems in runtime.workflows.broken().items()
    ]


def _local_user() -> str:
    """The caller IAM-authorised routes report locally: the user running the stack."""
    try:
        name = getpass.getuser()
    except Exception:  # no user name in this environment
        name = ""
    return re.sub(r"[^A-Za-z0-9+=,.@_-]", "", name) or "developer"


__all__ = ["STACK", "Hold", "LocalStack", "starts_workflow"]
