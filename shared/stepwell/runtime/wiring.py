"""Building the runtime from the environment a Lambda function (or the local stack) gives it.

One Runtime per container, built on first use and kept warm: clients, the published workflows,
the code-first workflows the function holds, and the signing keys are created once.

The engine's functions get one variable per setting (``STEPWELL_TABLE`` ...); an app's function
gets them all in one, ``STEPWELL_ENGINE`` (the engine's ``Settings`` output, a JSON object of the
same names), and a variable set on its own wins over it.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from stepwell.addresses import AllowList
from stepwell.catalog import Catalog
from stepwell.engine.commands import DispatchAttempt
from stepwell.runtime.approvals import ApprovalLinks, LinkedBus
from stepwell.runtime.builtins import BuiltinDeps, Network
from stepwell.runtime.clock import Clock, SystemClock
from stepwell.runtime.journals import Journals
from stepwell.runtime.notifications import Notifier
from stepwell.runtime.orchestrator import Orchestrator, Ports
from stepwell.runtime.ports import Bus, Invoker, Metrics, StepLogs
from stepwell.runtime.publishing import Workflows
from stepwell.store.payloads import Offloader
from stepwell.store.port import Store


class PlainLambdaRouter:
    """Sends task steps that name a function ARN to the runner, which invokes them and records
    their response (a plain Lambda, not written for Stepwell); every other attempt goes on."""

    def __init__(self, inner: Invoker, runner: Invoker) -> None:
        self._inner = inner
        self._runner = runner

    def dispatch(self, command: DispatchAttempt) -> None:
        if (
            command.step_type == "task"
            and is_plain_function(command.function)
            and command.target is None
        ):
            self._runner.dispatch(command)
        else:
            self._inner.dispatch(command)


def is_plain_function(function: str | None) -> bool:
    """A task names a plain Lambda when it gives an ARN (logical ids name step functions)."""
    return bool(function) and str(function).startswith("arn:")


@dataclass
class Runtime:
    """Everything a handler needs."""

    orchestrator: Orchestrator
    store: Store
    clock: Clock
    workflows: Workflows
    """The published workflows: the version new runs of each name take."""
    code: Catalog
    """The code-first workflows (and Step Functions machines) this function holds and replays:
    the files of its package (``STEPWELL_WORKFLOWS``, else the function's own code folder)."""
    builtins: BuiltinDeps = field(default_factory=BuiltinDeps)
    invoke_plain: Callable[[str, Any], Any] | None = None
    """Invoke a plain Lambda synchronously: (function, payload) -> response (the runner's job)."""
    payloads: Offloader | None = None
    """The payload bucket: inputs too large to travel in a step envelope are kept there."""
    journals: Journals = field(default_factory=Journals)
    """Code-first journals as this process's last replays read them."""
    logs: StepLogs | None = None
    """Where step attempts' log lines are (None: nowhere this runtime knows)."""
    event_waits_bus: Bus | None = None
    """Where ``POST /events`` puts events: the bus event waits listen on (the stack's
    ``EventWaitsBus``); None: the engine's own."""
    notifier: Notifier | None = None
    """Sends people their links by e-mail and Slack (the notifications function's)."""

    @property
    def metrics(self) -> Metrics:
        """Where run and step metrics go (the orchestrator's)."""
        return self.orchestrator.metrics


def from_environment(
    environ: Mapping[str, str] | None = None, clock: Clock | None = None
) -> Runtime:
    """The AWS runtime: DynamoDB store, Lambda invoker, SQS/Scheduler timers, EventBridge bus."""
    import boto3

    from stepwell.runtime.aws.bus import EventBridgeBus
    from stepwell.runtime.aws.channels import notifier
    from stepwell.runtime.aws.lambda_invoker import FunctionResolver, LambdaInvoker
    from stepwell.runtime.aws.logs import InsightsLinks
    from stepwell.runtime.aws.metrics import EmfMetrics
    from stepwell.runtime.aws.payloads import S3PayloadStore
    from stepwell.runtime.aws.plain import invoke_plain
    from stepwell.runtime.aws.secrets import SecretsReader, signing_keys
    from stepwell.runtime.aws.timers import AwsTimers
    from stepwell.store.dynamodb import DynamoStore

    env = settings(os.environ if environ is None else environ)
    clock = clock or SystemClock()
    bucket = env.get("STEPWELL_BUCKET")
    store = DynamoStore(
        env.get("STEPWELL_TABLE"),
        payloads=S3PayloadStore(boto3.client("s3"), bucket) if bucket else None,
    )
    resolver = FunctionResolver.from_env(env)
    lambda_client = boto3.client("lambda")
    payloads = store.offloader
    offload = partial(payloads.put_text, "envelopes") if payloads.store is not None else None
    invoker = LambdaInvoker(lambda_client, resolver, offload)
    runner = LambdaInvoker(lambda_client, lambda _function, _kind: resolver(None, "http"), offload)
    bus_name = env.get("STEPWELL_BUS", "default")
    bus = EventBridgeBus(boto3.client("events"), bus_name)
    timers = AwsTimers(
        boto3.client("sqs"),
        boto3.client("scheduler"),
        queue_url=env.get("STEPWELL_TIMER_QUEUE_URL", ""),
        scheduler_target_arn=env.get("STEPWELL_TIMER_QUEUE_ARN", ""),
        scheduler_role_arn=env.get("STEPWELL_SCHEDULER_ROLE_ARN", ""),
        clock=clock,
        group=env.get("STEPWELL_SCHEDULE_GROUP", "default"),
    )
    secrets = SecretsReader()
    secret_id = env.get("STEPWELL_SIGNING_SECRET", "stepwell/signing-keys")
    approvals = ApprovalLinks(
        bus,
        lambda: signing_keys(secrets.get(secret_id)),
        env.get("STEPWELL_API_URL") or request_api_url,
        clock,
    )
    triggers = None
    if env.get("STEPWELL_TRIGGER_FUNCTION_ARN"):
        from stepwell.runtime.aws.triggers import AwsTriggers

        triggers = AwsTriggers(
            boto3.client("events"),
            boto3.client("scheduler"),
            prefix=env.get("STEPWELL_TRIGGER_PREFIX") or f"{engine_name(env)}-",
            bus=env.get("STEPWELL_BUS", "default"),
            function_arn=env["STEPWELL_TRIGGER_FUNCTION_ARN"],
            group=env.get("STEPWELL_SCHEDULE_GROUP", "default"),
            role_arn=env.get("STEPWELL_SCHEDULER_ROLE_ARN", ""),
        )
    workflows = Workflows(store, clock, triggers)
    network = Network(stack_allow_list(env), apis=local_apis(env))
    groups = None
    if env.get("STEPWELL_GROUPS_PARAMETER"):
        from stepwell.runtime.aws.groups import ParameterGroups

        groups = ParameterGroups(env["STEPWELL_GROUPS_PARAMETER"], boto3.client("ssm"))
    orchestrator = Orchestrator(
        store,
        Ports(PlainLambdaRouter(invoker, runner), timers, LinkedBus(bus, approvals), approvals),
        clock,
        workflows.get,
        metrics=EmfMetrics(),
        groups=groups,
    )
    return Runtime(
        orchestrator,
        store,
        clock,
        workflows,
        code_catalog(env),
        BuiltinDeps(secrets=secrets, publisher=bus, network=network),
        lambda function, payload: invoke_plain(lambda_client, function, payload),
        payloads,
        logs=InsightsLinks.from_env(env),
        event_waits_bus=EventBridgeBus(
            boto3.client("events"), env.get("STEPWELL_EVENT_WAITS_BUS") or bus_name
        ),
        notifier=notifier(env, clock, secrets) if env.get("STEPWELL_NOTIFY_QUEUE_URL") else None,
    )


def stack_allow_list(env: Mapping[str, str]) -> AllowList:
    """The stack's ``HttpAllowHosts`` (``STEPWELL_HTTP_ALLOW_HOSTS``, comma-separated)."""
    entries = [e for e in env.get("STEPWELL_HTTP_ALLOW_HOSTS", "").split(",") if e.strip()]
    try:
        return AllowList.of(entries)
    except ValueError as exc:
        raise ValueError(f"the stack's HttpAllowHosts (STEPWELL_HTTP_ALLOW_HOSTS): {exc}") from None


LOCAL_APIS = "STEPWELL_LOCAL_APIS"
"""Set by the local stack only: ``HOST=URL,...``, where each of its APIs is served."""


def local_apis(env: Mapping[str, str]) -> dict[str, str] | None:
    """Where the local stack serves its APIs, by ``execute-api`` host (None on AWS)."""
    if LOCAL_APIS not in env:
        return None
    pairs = (entry.partition("=") for entry in env[LOCAL_APIS].split(",") if entry)
    return {host: url for host, _, url in pairs}


def settings(environ: Mapping[str, str]) -> dict[str, str]:
    """The function's settings: ``STEPWELL_ENGINE``'s (an app's function), under its own
    variables."""
    merged: dict[str, str] = {}
    raw = environ.get("STEPWELL_ENGINE")
    if raw:
        try:
            engine = json.loads(raw)
        except ValueError as exc:
            raise ValueError(f"STEPWELL_ENGINE is not JSON: {exc}") from None
        if not isinstance(engine, dict):
            raise ValueError("STEPWELL_ENGINE must be a JSON object (the engine's Settings output)")
        merged.update({str(k): str(v) for k, v in engine.items()})
    merged.update(environ)
    return merged


def engine_name(env: Mapping[str, str]) -> str:
    """The engine's stack name, from its runner's name (``<stack>-runner``)."""
    return env.get("STEPWELL_RUNNER_FUNCTION", "stepwell-runner").removesuffix("-runner")


def code_catalog(env: Mapping[str, str]) -> Catalog:
    """The workflow files this function holds: ``STEPWELL_WORKFLOWS``, else its own package
    (Lambda's ``LAMBDA_TASK_ROOT``), read on first use."""
    folder = env.get("STEPWELL_WORKFLOWS") or env.get("LAMBDA_TASK_ROOT") or "statemachines"
    return Catalog(Path(folder))


_request_api_url: ContextVar[str] = ContextVar("stepwell_request_api_url", default="")


@contextmanager
def serving_request(event: Mapping[str, Any]) -> Iterator[None]:
    """Links made while handling this API Gateway (HTTP API, payload 2.0) request point at the
    API the request came through.

    The API function has no ``STEPWELL_API_URL``: the HTTP API's routes target it, so the API
    depends on the function and the function cannot name the API (template.yaml). Links made
    while handling a request (a run whose first step is an approval, an approval that follows
    another, a rerun) get the request's own base URL instead.
    """
    token = _request_api_url.set(api_url_of_request(event))
    try:
        yield
    finally:
        _request_api_url.reset(token)


def request_api_url() -> str:
    """The base URL of the API request being handled on this thread ("" outside one)."""
    return _request_api_url.get()


def api_url_of_request(event: Mapping[str, Any]) -> str:
    """``https://{domainName}`` (plus ``/{stage}`` for a named stage) of an HTTP API request;
    "" when the event does not say. Behind a custom domain with a base path, set
    ``STEPWELL_API_URL`` on the API function instead."""
    context = event.get("requestContext")
    if not isinstance(context, Mapping) or not context.get("domainName"):
        return ""
    headers = {str(k).lower(): str(v) for k, v in (event.get("headers") or {}).items()}
    # API Gateway serves HTTPS only; plain http is the local stack's.
    scheme = "http" if headers.get("x-forwarded-proto", "").strip() == "http" else "https"
    stage = str(context.get("stage") or "$default")
    path = "" if stage == "$default" else f"/{stage}"
    return f"{scheme}://{context['domainName']}{path}"


_current: Runtime | None = None
_lock = threading.Lock()


def current() -> Runtime:
    """The runtime of this container (built from the environment on first use)."""
    global _current
    with _lock:
        if _current is None:
            _current = from_environment()
        return _current


def use(runtime: Runtime | None) -> None:
    """Install a runtime (the local stack, tests); None forgets it."""
    global _current
    with _lock:
        _current = runtime
