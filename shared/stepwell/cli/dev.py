"""``stepwell dev``: the whole stack of template.yaml on this machine, until Ctrl-C.

It prints the API URL, the routes, the workflows it found and the schedules that fire, then one
line per HTTP request and per invocation. No Docker, no account: see docs/local-development.md.
"""

from __future__ import annotations

import argparse
import errno
import json
import os
import signal
import socket
import sys
import threading
from collections.abc import Mapping
from pathlib import Path
from types import FrameType
from typing import Any

from rich.console import Console

from stepwell.api.client import LOCAL_PORT
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow
from stepwell.local import state
from stepwell.local.httpapi import Route
from stepwell.local.lambdas import Invocation
from stepwell.local.stack import LocalStack
from stepwell.local.template import HttpRoute, TemplateError

EXIT_OK, EXIT_USAGE = 0, 2
STATE_FOLDER = ".stepwell"
"""Where ``stepwell dev`` keeps its state, in the project folder."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stepwell dev``."""
    parser.add_argument(
        "--port",
        type=int,
        default=LOCAL_PORT,
        help=f"HTTP API port (default {LOCAL_PORT}, where the other commands look)",
    )
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        help="skip idle waits: jump to the next timer whenever nothing is running, but not over "
        "an open approval or callback (move on with: stepwell time advance 2h)",
    )
    parser.add_argument(
        "--json-logs",
        action="store_true",
        help="print the functions' logs as Powertools JSON, as CloudWatch gets them "
        "(default: one short line each)",
    )
    parser.add_argument(
        "--no-schedules",
        action="store_true",
        help="do not fire the template's Schedule and ScheduleV2 events",
    )
    parser.add_argument(
        "--env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="set a variable on every function, over the template's (repeatable)",
    )
    parser.add_argument(
        "--parameter",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="a template parameter (repeatable)",
    )
    parser.add_argument(
        "--state",
        type=Path,
        default=None,
        metavar="FOLDER",
        help="keep runs, timers and approval links across restarts in FOLDER "
        "(default: .stepwell/ in --project)",
    )
    parser.add_argument(
        "--fresh", action="store_true", help="forget the saved state and start with none"
    )
    parser.add_argument(
        "--in-memory",
        action="store_true",
        help="keep nothing: every run is gone when the stack stops",
    )
    parser.add_argument(
        "--no-reload",
        action="store_true",
        help="read the workflow files once, at start (default: again whenever one changes)",
    )
    parser.add_argument("--quiet", action="store_true", help="no line per request/invocation")
    add_project_arguments(parser)


def add_project_arguments(parser: argparse.ArgumentParser) -> None:
    """The options naming the project a local stack serves (``stepwell dev`` and ``run``)."""
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="project folder holding template.yaml (default: the current folder)",
    )
    parser.add_argument("--template", default="template.yaml", help="template file in --project")
    parser.add_argument(
        "--workflows",
        type=Path,
        metavar="DIR",
        help="publish every workflow file of DIR (their functions by logical id in the template) "
        "instead of the template's Custom::StepwellWorkflow resources",
    )


def _pairs(values: list[str], option: str) -> dict[str, str]:
    pairs: dict[str, str] = {}
    for value in values:
        name, sep, rest = value.partition("=")
        if not sep or not name:
            raise ValueError(f"{option} {value!r}: write NAME=VALUE")
        pairs[name] = rest
    return pairs


def run(args: argparse.Namespace) -> int:
    """Start the stack, describe it, serve until interrupted."""
    console = Console(highlight=False, soft_wrap=True)
    err = Console(stderr=True, soft_wrap=True)
    try:
        environment = _pairs(args.env, "--env")
        parameters = _pairs(args.parameter, "--parameter")
    except ValueError as exc:
        err.print(f"stepwell dev: {exc}")
        return EXIT_USAGE

    def on_invocation(record: Invocation) -> None:
        if args.quiet:
            return
        outcome = f"[red]{record.error_type}[/]" if record.error_type else "[green]ok[/]"
        cold = " (cold start)" if record.cold_start else ""
        console.print(
            f"[dim]{record.started:%H:%M:%S}[/] λ {record.function} via {record.source} "
            f"{outcome} {record.duration_ms or 0:.0f} ms{cold}"
        )

    def on_request(method: str, path: str, status: int, seconds: float) -> None:
        if not args.quiet and not path.startswith(("/ui/", "/?")) and path != "/":
            shown = path if len(path) <= 80 else path[:64] + "…"
            console.print(f"[bold]{method}[/] {shown} -> {status} ({seconds * 1000:.0f} ms)")

    def on_reload(workflows: Mapping[str, Workflow], broken: list[str]) -> None:
        console.print(
            f"workflow files changed: read again, {len(workflows)} workflows (new runs take "
            "the new versions; runs in flight keep theirs)"
        )
        for line in broken:
            console.print(f"[yellow]note[/]: {line}", markup=False)

    from stepwell.local.logs import human_logs

    human_logs(not args.json_logs)
    folder = None if args.in_memory else (args.state or Path(args.project) / STATE_FOLDER)
    if folder is not None and args.fresh:
        # The state may be a running `stepwell dev`'s on this port: it is not forgotten for a
        # start that cannot happen.
        if _port_held(args.port):
            err.print(f"stepwell dev: {_port_taken(args.port)}")
            return EXIT_USAGE
        state.clear(folder)
    stack = LocalStack(
        args.project,
        template=args.template,
        workflows=args.workflows,
        virtual_time=args.virtual_time,
        port=args.port,
        parameters=parameters,
        environment=environment,
        schedules=not args.no_schedules,
        on_invocation=on_invocation,
        on_request=on_request,
        # A person answers approvals and callbacks: virtual time waits for them (stepwell time).
        hold_waits=args.virtual_time,
        state_folder=folder,
        on_reload=None if args.no_reload else on_reload,
        on_template_change=lambda note: console.print(f"note: {note}", markup=False),
    )
    try:
        stack.start()
    except DefinitionError as exc:
        for problem in exc.problems:
            err.print(str(problem))
        return EXIT_USAGE
    except state.StateError as exc:
        err.print(f"stepwell dev: {exc}")
        return EXIT_USAGE
    except OSError as exc:
        err.print(f"stepwell dev: {_port_taken(args.port) if _in_use(exc) else exc}")
        return EXIT_USAGE
    except (TemplateError, ValueError) as exc:
        err.print(f"stepwell dev: {exc}")
        return EXIT_USAGE
    except KeyboardInterrupt:
        return EXIT_OK
    stopped = threading.Event()

    def stop(signum: int, frame: FrameType | None) -> None:
        stopped.set()

    def on_event(event: dict[str, Any]) -> None:
        if args.quiet:
            return
        detail = event.get("detail") or {}
        about = " ".join(
            f"{k}={detail[k]}" for k in ("workflow", "run_id", "step", "status") if k in detail
        )
        console.print(
            f"[dim]{event['time'][11:19]}[/] ✉ {event['source']} {event['detail-type']} {about}"
        )
        if event.get("detail-type") == "approval.requested":
            for link in detail.get("links") or []:
                who = link.get("approver") or "anyone"
                console.print(f"    {who} approve: {link.get('approve_url')}")
                console.print(f"    {who} reject:  {link.get('reject_url')}")
        if event.get("detail-type") == "input.requested":
            for link in detail.get("links") or []:
                who = link.get("assignee") or "anyone"
                console.print(f"    {who} form: {link.get('form_url')}")
        if event.get("detail-type") == "callback.requested" and detail.get("url"):
            console.print(f"    callback: {detail['url']}")
            console.print(f"    answer:   stepwell callback {detail['url']} --success '{{}}'")

    stack.listen(on_event)
    # Ctrl-C and SIGTERM both stop; SIGINT is handled here too because a parent may have
    # started us with it ignored (a background job), and Python then installs no handler.
    previous = {sig: signal.signal(sig, stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        describe(stack, console)
        while not stopped.wait(0.5):
            pass
    except KeyboardInterrupt:
        pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        kept = f" (saving its state in {stack.state_folder})" if stack.state_folder else ""
        console.print(f"stopping the local stack{kept}")
        _stop_within(stack, STOP_GRACE_S, err)
    return EXIT_OK


STOP_GRACE_S = 30.0
"""How long Ctrl-C waits for the stack to wind down before the process exits regardless."""


def _stop_within(stack: LocalStack, seconds: float, err: Console) -> None:
    """Stop the stack; if it has not stopped within ``seconds`` (an invocation still running),
    say so and end the process: Ctrl-C always ends ``stepwell dev``."""
    stopper = threading.Thread(target=stack.stop, name="stepwell-dev-stop", daemon=True)
    stopper.start()
    stopper.join(seconds)
    if stopper.is_alive():
        err.print(f"stepwell dev: the local stack did not stop within {seconds:g}s; exiting")
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(EXIT_OK)


def describe(stack: LocalStack, console: Console) -> None:
    """What is running: the API and its routes, the workflows, schedules, queues."""
    assert stack.api is not None
    mode = (
        "virtual time (idle waits are skipped; approvals and callbacks wait for an answer or "
        "for: stepwell time advance 2d)"
        if stack.clock.virtual
        else "real time"
    )
    console.print(f"[bold]Stepwell local stack[/] from {stack.template_path.name}, {mode}")
    console.print(f"Dashboard: [bold cyan]{stack.url}/ui/[/]")
    console.print(f"API: [bold cyan]{stack.url}[/]")
    # The other commands (start, runs, show ...) find this API through STEPWELL_API.
    console.print(f"CLI: export STEPWELL_API={stack.url}", markup=False)
    if stack.state_folder is not None:
        if stack.restored is not None:
            counts = stack.restored.counts()
            held = ", ".join(f"{n} {what}" for what, n in counts.items() if n)
            console.print(
                f"state: {stack.state_folder} (resumed from {stack.restored.saved_at}: "
                f"{held or 'empty'}; start clean with --fresh)"
            )
        else:
            console.print(f"state: {stack.state_folder} (new; --in-memory keeps none)")
    for route in sorted(stack.api.routes, key=_route_order):
        auth = f"  [dim]({route.route.authorizer})[/]" if route.route.authorizer else ""
        console.print(f"  {route.route.route_key:<44} -> {route.function}{auth}")
    workflows = stack.workflows()
    console.print(f"workflows ({len(workflows)}):")
    for name, workflow in sorted(workflows.items()):
        starts = ["POST /workflows/{name}/runs".replace("{name}", name)]
        starts += [f"event {json.dumps(trigger.pattern)}" for trigger in workflow.triggers.events]
        starts += [f"schedule {s.expression}" for s in workflow.triggers.schedules]
        count = len(workflow.steps)
        if workflow.code is not None and ".asl." in workflow.code:
            shape = f"Step Functions machine, {workflow.code.split(':')[0]}"
        elif workflow.code is not None:
            shape = f"code-first, {workflow.code}"
        else:
            shape = f"{count} step{'s' if count != 1 else ''}"
        console.print(f"  [bold]{name}[/] ({shape}): " + "; ".join(starts))
    if any(w.code is not None and ".asl." in w.code for w in workflows.values()):
        console.print(
            "  (a machine's Lambda ARN of any account or partition runs the template's "
            "function of that name here)"
        )
    if stack.schedules is not None:
        for schedule in stack.schedules.all():
            arns = [str(schedule.target.get("Arn", ""))]
            if schedule.kind == "Schedule" and stack.buses is not None:  # a rule's timer
                rule = stack.buses.rules.find("default", schedule.name)
                arns = [t.arn for t in rule.targets] if rule is not None else []
            target = ", ".join(arn.rsplit(":", 1)[-1] for arn in arns)
            when = f"{schedule.next_at:%Y-%m-%d %H:%M:%S} UTC" if schedule.next_at else "never"
            console.print(f"schedule {schedule.expression} -> {target} (next: {when})")
    for mapping in stack.mappings:
        console.print(f"queue {mapping.queue.name} -> {mapping.function}")
    for warning in stack.warnings:
        console.print(f"[yellow]note[/]: {warning}")
    if stack.buses is not None:
        buses = ", ".join(sorted(stack.buses.buses))
        console.print(
            f"events (buses {buses}): aws events put-events --endpoint-url {stack.url} "
            "--entries file://entries.json",
            markup=False,
        )
    console.print("Ctrl-C to stop.")


def _route_order(route: Route) -> tuple[str, str]:
    spec: HttpRoute = route.route
    return (spec.path, spec.method)


def _in_use(exc: OSError) -> bool:
    return exc.errno == errno.EADDRINUSE


def _port_held(port: int) -> bool:
    """Whether another process listens on ``port`` of 127.0.0.1 (0: any free port)."""
    if not port:
        return False
    with socket.socket() as probe:
        # As the server binds it: a port a stopped server left in TIME_WAIT is free.
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind(("127.0.0.1", port))
        except OSError as exc:
            return _in_use(exc)
    return False


def _port_taken(port: int) -> str:
    return (
        f"port {port} of 127.0.0.1 is in use (another stepwell dev?): stop it, or give another "
        "port with --port"
    )
