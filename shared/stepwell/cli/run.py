"""``stepwell run WORKFLOW``: one run through the local stack, from start to end.

Over 500 lines: starting, following, approving and printing a run share its client and its
output.

The run is started with ``POST /workflows/{name}/runs`` on the local HTTP API and followed with
``GET /runs/{id}``, exactly as a client of a deployed stack would. Approval links are taken from
the ``approval.requested`` events on the stack's bus: with ``--approve STEP``,
``--reject STEP`` or ``--auto-approve`` the CLI decides by POSTing the signed link to the local
API (the engine is never called directly); otherwise it prints the links and waits for someone
to open them. ``callback.requested`` events are answered the same way with ``--answer
STEP=JSON`` (a Step Functions task token's step is its state's name); a callback nobody answers
runs to its timeout, as it would on AWS. ``input.requested`` events (a form) are answered with
``--answer STEP=JSON`` too, through the first assignee's link, which checks the answer against
the form's schema. With ``--virtual-time`` the stack skips idle waits; it holds time still while
an approval or a form waits for a person, or while the CLI is deciding one.

Exit codes: 0 the run succeeded; 1 it failed, was cancelled or timed out; 2 a usage or
definition error (bad input, unknown workflow, broken template or definition).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import queue
import sys
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from rich.console import Console
from rich.live import Live
from rich.table import Table

from stepwell.cli.dev import add_project_arguments
from stepwell.code.protocol import WORKFLOW_KEY
from stepwell.definition.errors import DefinitionError
from stepwell.engine.state import error_text
from stepwell.local.client import ApiError, Client, Reply
from stepwell.local.stack import Hold, LocalStack, starts_workflow
from stepwell.local.template import TemplateError

EXIT_SUCCEEDED, EXIT_FAILED, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130
TERMINAL = frozenset({"succeeded", "failed", "cancelled", "timed_out"})
POLL_S = 0.15
_STYLE = {
    "succeeded": "green",
    "failed": "red",
    "cancelled": "yellow",
    "timed_out": "red",
    "running": "cyan",
    "retrying": "magenta",
    "waiting": "yellow",
    "skipped": "dim",
    "pending": "dim",
    "scheduled": "dim",
    "queued": "dim",
}


class UsageError(Exception):
    """Bad command-line input (exit code 2)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stepwell run``."""
    parser.add_argument("workflow", help="the workflow's name (statemachines/)")
    parser.add_argument(
        "--input",
        metavar="JSON|@FILE",
        help="the run's input: JSON text, or @path of a JSON file",
    )
    parser.add_argument(
        "--virtual-time",
        action="store_true",
        help="skip idle waits (delays, backoff, timeouts) instead of sleeping through them",
    )
    parser.add_argument(
        "--approve",
        action="append",
        default=[],
        metavar="STEP",
        help="approve this approval step through its signed link (repeatable)",
    )
    parser.add_argument(
        "--reject",
        action="append",
        default=[],
        metavar="STEP",
        help="reject this approval step through its signed link (repeatable)",
    )
    parser.add_argument("--auto-approve", action="store_true", help="approve every approval step")
    parser.add_argument(
        "--answer",
        action="append",
        default=[],
        metavar="STEP=JSON|@FILE",
        help="answer this callback wait with the JSON output (a callback step, a "
        "ctx.create_callback, or a Step Functions task token: its state's name), or this input "
        "step's form with the JSON answer; repeatable",
    )
    parser.add_argument(
        "--json", action="store_true", help="print the final run as JSON (and nothing else)"
    )
    parser.add_argument(
        "--timeline", action="store_true", help="print the run's timeline at the end"
    )
    parser.add_argument("--logs", action="store_true", help="show the functions' logs (on stderr)")
    parser.add_argument(
        "--timeout",
        type=float,
        metavar="SECONDS",
        help="give up after this many (real) seconds; the run is left as it is (exit 1)",
    )
    parser.add_argument("--port", type=int, default=0, help="HTTP API port (default: any free)")
    add_project_arguments(parser)


# -- input ------------------------------------------------------------------------------------
def read_input(text: str | None, source: str = "--input") -> Any:
    """``--input`` (or ``source``): JSON text or ``@file``; None when not given."""
    if text is None:
        return None
    if text.startswith("@"):
        path = Path(text[1:])
        try:
            text = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise UsageError(
                f"{source} {text}: cannot read {path}: {exc.strerror or exc}"
            ) from None
        source = str(path)
    try:
        return json.loads(text)
    except ValueError as exc:
        raise UsageError(f"{source} is not JSON: {exc}") from None


def read_answers(given: list[str]) -> dict[str, Any]:
    """``--answer STEP=JSON|@FILE``: the output for each callback wait, by step name."""
    answers: dict[str, Any] = {}
    for text in given:
        step, sep, value = text.partition("=")
        if not sep or not step.strip():
            raise UsageError(f"--answer {text!r}: give STEP=JSON (or STEP=@file)")
        answers[step.strip()] = read_input(value, f"--answer {step.strip()}")
    return answers


# -- approvals and callbacks ------------------------------------------------------------------
@dataclass
class Decision:
    """An approval the CLI decides, or a callback it answers: the links to POST (with ``body``
    for a callback) and the hold that keeps time still."""

    run_id: str
    step: str
    decision: str
    urls: list[tuple[str | None, str]]
    hold: Hold
    body: Any = None
    """What a callback or a form is answered with (``decision`` is ``answer``)."""


@dataclass
class Approvals:
    """What to do with each approval.requested event."""

    approve: set[str]
    reject: set[str]
    auto: bool
    out: Console
    stack: LocalStack
    decisions: queue.SimpleQueue[Decision] = field(default_factory=queue.SimpleQueue)
    answers: dict[str, Any] = field(default_factory=dict)
    """Callback outputs by step name (``--answer``)."""
    manual: dict[tuple[str, str], Hold] = field(default_factory=dict)
    """Approvals a person decides: time is held until the step stops waiting."""
    lock: threading.Lock = field(default_factory=threading.Lock)

    def policy(self, key: str) -> str | None:
        step = key.split("[", 1)[0]
        if step in self.reject:
            return "reject"
        if step in self.approve or self.auto:
            return "approve"
        return None

    def on_event(self, event: dict[str, Any]) -> None:
        """Bus listener: runs inside the PutEvents call, so the stack is still busy and a hold
        taken here is in place before virtual time could move."""
        if event.get("detail-type") == "callback.requested":
            self.on_callback(event.get("detail") or {})
            return
        if event.get("detail-type") == "input.requested":
            self.on_form(event.get("detail") or {})
            return
        if event.get("detail-type") != "approval.requested":
            return
        detail = event.get("detail") or {}
        run_id, key = str(detail.get("run_id")), str(detail.get("step"))
        links = [link for link in detail.get("links") or [] if isinstance(link, dict)]
        decision = self.policy(key)
        self.out.print(f"[yellow]approval requested[/] {key}: {detail.get('message')}")
        for link in links:
            who = link.get("approver") or "anyone"
            self.out.print(f"  {who}: approve {link.get('approve_url')}", highlight=False)
            self.out.print(f"  {who}: reject  {link.get('reject_url')}", highlight=False)
        if decision is None:
            with self.lock:
                self.manual[(run_id, key)] = self.stack.hold()
            self.out.print("  waiting for a decision (open a link: GET shows it, POST decides)")
            return
        quorum = int(detail.get("quorum") or 1) if decision == "approve" else 1
        urls = [
            (link.get("approver"), str(link.get(f"{decision}_url")))
            for link in links[: max(quorum, 1)]
        ]
        self.decisions.put(Decision(run_id, key, decision, urls, self.stack.hold()))

    def on_callback(self, detail: dict[str, Any]) -> None:
        """A callback wait: answered when ``--answer`` names its step (a task token's step is
        its state's name and ``token``), else its URL is printed."""
        run_id, key, url = str(detail.get("run_id")), str(detail.get("step")), detail.get("url")
        name = key.split("[", 1)[0].split("~", 1)[0]
        step = next((n for n in (name, name.removesuffix(" token")) if n in self.answers), None)
        self.out.print(f"[yellow]callback requested[/] {key}: POST {url}", highlight=False)
        if step is None or not isinstance(url, str):
            return
        body = {"status": "success", "output": self.answers[step]}
        self.decisions.put(Decision(run_id, key, "answer", [(None, url)], self.stack.hold(), body))

    def on_form(self, detail: dict[str, Any]) -> None:
        """An input form: answered through the first assignee's link when ``--answer`` names
        its step, else held (time stands still) until a person answers one of its links."""
        run_id, key = str(detail.get("run_id")), str(detail.get("step"))
        links = [link for link in detail.get("links") or [] if isinstance(link, dict)]
        self.out.print(f"[yellow]input requested[/] {key}: {detail.get('message')}")
        for link in links:
            who = link.get("assignee") or "anyone"
            self.out.print(f"  {who}: form {link.get('form_url')}", highlight=False)
        step = key.split("[", 1)[0]
        if step not in self.answers or not links:
            with self.lock:
                self.manual[(run_id, key)] = self.stack.hold()
            self.out.print("  waiting for an answer (open a link: GET shows the form)")
            return
        first = links[0]
        url = (first.get("assignee"), str(first.get("form_url")))
        self.decisions.put(
            Decision(run_id, key, "answer", [url], self.stack.hold(), self.answers[step])
        )

    def release_decided(self, steps: dict[str, dict[str, Any]], run_id: str) -> None:
        """Release the holds of manual approvals whose step no longer waits."""
        with self.lock:
            for (approval_run, key), hold in list(self.manual.items()):
                step = steps.get(key)
                if approval_run == run_id and step is not None and step.get("status") != "waiting":
                    hold.release()
                    del self.manual[(approval_run, key)]

    def release_all(self) -> None:
        with self.lock:
            for hold in self.manual.values():
                hold.release()
            self.manual.clear()


def decide(client: Client, decision: Decision, out: Console) -> None:
    """POST the approval's signed links; the hold is released once the API has answered."""
    try:
        if decision.decision == "answer":
            for _, url in decision.urls:
                reply = client.post(url, decision.body)
                if reply.ok:
                    out.print(f"[green]answered[/] {decision.step}: POST {_short_url(url)} -> 200")
                    continue
                out.print(
                    f"[red]could not answer[/] {decision.step}: POST {_short_url(url)} -> "
                    f"{reply.status} {_message(reply)}"
                )
            return
        for approver, url in decision.urls:
            reply = client.decide(url, decision.decision, "decided by stepwell run")
            who = approver or "anyone"
            if reply.ok:
                out.print(
                    f"[green]{decision.decision}d[/] {decision.step} as {who}: "
                    f"POST {_short_url(url)} -> {reply.status}"
                )
            else:
                out.print(
                    f"[red]could not {decision.decision}[/] {decision.step} as {who}: "
                    f"POST {_short_url(url)} -> {reply.status} {_message(reply)}"
                )
    finally:
        decision.hold.release()


def _message(reply: Reply) -> str:
    return str(reply.body.get("message") if isinstance(reply.body, dict) else reply.text)


def _short_url(url: str) -> str:
    return url if len(url) <= 72 else url[:56] + "…" + url[-12:]


# -- the view ---------------------------------------------------------------------------------
def step_rows(detail: dict[str, Any], order: list[str]) -> list[dict[str, Any]]:
    """Every step of the workflow in definition order, pending where no record exists yet."""
    found = {step["key"]: step for step in _user_steps(detail)}
    rows = [found.pop(key, {"key": key, "status": "pending", "attempt": 0}) for key in order]
    return rows + list(found.values())


def progress_table(detail: dict[str, Any], order: list[str], clock: str) -> Table:
    """The live view: one line per step."""
    run = detail.get("run") or {}
    status = str(run.get("status", "?"))
    table = Table(
        title=f"{run.get('workflow')} {run.get('id')}: [{_STYLE.get(status, '')}]{status}[/]"
        f"  ({clock})",
        title_justify="left",
    )
    for column in ("step", "status", "try", "detail"):
        table.add_column(column, no_wrap=True, overflow="ellipsis", max_width=72)
    for step in step_rows(detail, order):
        state = str(step.get("status"))
        table.add_row(
            str(step["key"]),
            f"[{_STYLE.get(state, '')}]{state}[/]",
            str(step.get("attempt") or ""),
            _step_detail(step),
        )
    return table


def _step_detail(step: dict[str, Any]) -> str:
    if step.get("items_total") is not None:
        return f"{step.get('children_succeeded', 0)}/{step['items_total']} items done" + (
            f", {step['children_failed']} failed" if step.get("children_failed") else ""
        )
    if step.get("waiting_for"):
        due = step.get("due_at")
        return f"waiting for {step['waiting_for']}" + (f" until {due}" if due else "")
    if step.get("error"):
        return error_text(step["error"])
    if step.get("child_run_id"):
        return f"child run {step['child_run_id']}"
    return ""


def final_json(detail: dict[str, Any], timeline: list[dict[str, Any]] | None) -> dict[str, Any]:
    """The whole final run: id, status, output, error and per step status, attempts, output,
    error (for_each steps also count their items)."""
    run = detail.get("run") or {}
    steps: dict[str, Any] = {}
    for step in detail.get("steps") or []:
        entry: dict[str, Any] = {
            "status": step.get("status"),
            "attempts": step.get("attempt"),
            "output": step.get("output"),
            "error": step.get("error"),
        }
        if step.get("items_total") is not None:
            entry["items"] = {
                "total": step["items_total"],
                "succeeded": step.get("children_succeeded", 0),
                "failed": step.get("children_failed", 0),
            }
        if step.get("child_run_id"):
            entry["child_run_id"] = step["child_run_id"]
        steps[str(step["key"])] = entry
    result: dict[str, Any] = {
        "run_id": run.get("id"),
        "workflow": run.get("workflow"),
        "version": run.get("version"),
        "status": run.get("status"),
        "input": run.get("input"),
        "output": run.get("output"),
        "error": run.get("error"),
        "started_at": run.get("started_at"),
        "ended_at": run.get("ended_at"),
        "steps": steps,
    }
    if timeline is not None:
        result["timeline"] = timeline
    return result


def timeline_table(entries: list[dict[str, Any]], title: str) -> Table:
    """The timeline with offsets from the run's start."""
    table = Table(title=title, title_justify="left")
    table.add_column("t+", justify="right", no_wrap=True)
    for column in ("event", "step", "try"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=72)
    started = _time(entries[0]["at"]) if entries else None
    for entry in entries:
        offset = (_time(entry["at"]) - started).total_seconds() if started else 0.0
        table.add_row(
            offset_text(offset),
            str(entry.get("type")),
            str(entry.get("step") or ""),
            str(entry.get("attempt") or ""),
            str(entry.get("message") or ""),
        )
    return table


def offset_text(seconds: float) -> str:
    """``1h02m03.40s`` / ``2m03.40s`` / ``3.40s``."""
    days, rest = divmod(seconds, 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{int(days)}d{int(hours):02d}h{int(minutes):02d}m{secs:05.2f}s"
    if hours:
        return f"{int(hours)}h{int(minutes):02d}m{secs:05.2f}s"
    if minutes:
        return f"{int(minutes)}m{secs:05.2f}s"
    return f"{secs:.2f}s"


def _time(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


# -- the command ------------------------------------------------------------------------------
class _Tee(io.TextIOBase):
    """Where the functions' own output (their logs) goes: stderr with --logs, else nowhere."""

    def __init__(self, target: TextIO | None) -> None:
        self._target = target

    def write(self, text: str) -> int:
        if self._target is not None:
            self._target.write(text)
        return len(text)

    def flush(self) -> None:
        if self._target is not None:
            self._target.flush()


@contextlib.contextmanager
def _functions_output(show: bool) -> Iterator[None]:
    """Keep the functions' logs (Powertools writes them to stdout) out of the command's own
    output, which may be JSON."""
    with contextlib.redirect_stdout(_Tee(sys.stderr if show else None)):
        yield


def run(args: argparse.Namespace) -> int:
    """Start the local stack, run the workflow to its end, print the result."""
    real_stdout = sys.stdout
    # Lines are never wrapped (an approval URL must stay one piece); tables fit the width.
    out = Console(file=real_stdout, width=None if real_stdout.isatty() else 132, soft_wrap=True)
    # With --json, stdout holds the JSON alone: everything else goes to stderr.
    say = Console(stderr=True, soft_wrap=True) if args.json else out
    err = Console(stderr=True, soft_wrap=True)
    try:
        run_input = read_input(args.input)
        answers = read_answers(args.answer)
        overlap = set(args.approve) & set(args.reject)
        if overlap:
            raise UsageError(f"both --approve and --reject name {', '.join(sorted(overlap))}")
    except UsageError as exc:
        err.print(f"stepwell run: {exc}")
        return EXIT_USAGE
    with _functions_output(args.logs):
        try:
            stack = LocalStack(
                args.project,
                template=args.template,
                workflows=args.workflows,
                virtual_time=args.virtual_time,
                port=args.port,
                # Schedules that start other workflows stay off: this command runs one workflow.
                schedules=lambda _function, source: not starts_workflow(source),
            )
            stack.start()
        except DefinitionError as exc:
            for problem in exc.problems:
                err.print(str(problem))
            return EXIT_USAGE
        except (TemplateError, OSError) as exc:
            err.print(f"stepwell run: {exc}")
            return EXIT_USAGE
        except KeyboardInterrupt:
            return EXIT_INTERRUPTED
        try:
            return _run(args, stack, run_input, answers, out, say, err)
        except KeyboardInterrupt:
            err.print("stepwell run: interrupted; the local stack stops and the run with it")
            return EXIT_INTERRUPTED
        finally:
            stack.stop()


def _run(
    args: argparse.Namespace,
    stack: LocalStack,
    run_input: Any,
    answers: dict[str, Any],
    out: Console,
    say: Console,
    err: Console,
) -> int:
    workflows = stack.workflows()
    if args.workflow not in workflows:
        known = ", ".join(sorted(workflows)) or "none"
        err.print(f"stepwell run: no workflow named {args.workflow!r} (workflows: {known})")
        return EXIT_USAGE
    unknown = (set(args.approve) | set(args.reject)) - set(workflows[args.workflow].steps)
    if unknown:
        err.print(
            f"stepwell run: {args.workflow} has no step {', '.join(sorted(unknown))} "
            f"(steps: {', '.join(workflows[args.workflow].steps)})"
        )
        return EXIT_USAGE
    order = list(workflows[args.workflow].steps)
    client = Client(stack.url)
    approvals = Approvals(
        set(args.approve), set(args.reject), args.auto_approve, say, stack, answers=answers
    )
    unsubscribe = stack.listen(approvals.on_event)
    say.print(f"local stack: {stack.url}" + ("  (virtual time)" if args.virtual_time else ""))
    try:
        reply = client.start_run(args.workflow, run_input)
        if not reply.ok:
            body = reply.body if isinstance(reply.body, dict) else {"message": reply.text}
            err.print(f"stepwell run: {args.workflow}: {body.get('message')}")
            for detail in body.get("details") or []:
                if isinstance(detail, dict) and "path" in detail:
                    err.print(f"  {detail['path']}: {detail.get('message')}")
            return EXIT_USAGE if reply.status in (400, 403, 404, 413, 422) else EXIT_FAILED
        run_id = str(reply.body["run_id"])
        say.print(f"started {args.workflow} run {run_id}")
        detail = _follow(args, stack, client, approvals, run_id, order, out, say)
    finally:
        unsubscribe()
        approvals.release_all()
    if detail is None:
        return EXIT_FAILED
    timeline = client.timeline(run_id) if args.timeline else None
    status = str(detail["run"]["status"])
    if args.json:
        out.file.write(json.dumps(final_json(detail, timeline), indent=2) + "\n")
        out.file.flush()
    else:
        _print_result(detail, timeline, stack, out)
    return EXIT_SUCCEEDED if status == "succeeded" else EXIT_FAILED


def _follow(
    args: argparse.Namespace,
    stack: LocalStack,
    client: Client,
    approvals: Approvals,
    run_id: str,
    order: list[str],
    out: Console,
    say: Console,
) -> dict[str, Any] | None:
    """Poll the run until it ends, deciding approvals as they come; the final GET /runs/{id}."""
    wall = stack.clock.wall()
    deadline = wall.monotonic() + args.timeout if args.timeout else None
    started = stack.clock.now()
    live = (
        Live(console=out, auto_refresh=False, redirect_stdout=False, redirect_stderr=False)
        if _live(args, out)
        else None
    )
    seen: dict[str, str] = {}
    with live or contextlib.nullcontext():
        while True:
            while True:
                try:
                    decision = approvals.decisions.get_nowait()
                except queue.Empty:
                    break
                decide(client, decision, say)
            try:
                detail = client.run(run_id)
            except ApiError as exc:
                say.print(f"[red]{exc}[/]")
                return None
            steps = {str(s["key"]): s for s in detail.get("steps") or []}
            approvals.release_decided(steps, run_id)
            elapsed = offset_text((stack.clock.now() - started).total_seconds())
            if live is not None:
                live.update(progress_table(detail, order, f"t+{elapsed}"), refresh=True)
            elif not args.json:
                _print_changes(detail, seen, say)
            if str(detail["run"]["status"]) in TERMINAL:
                return client.run(run_id, payloads=True)  # the result, large payloads too
            if deadline is not None and wall.monotonic() > deadline:
                say.print(
                    f"[red]gave up after {args.timeout:g}s[/]: the run is {detail['run']['status']}"
                )
                return None
            stack.run_until(lambda: not approvals.decisions.empty(), POLL_S)


def _live(args: argparse.Namespace, out: Console) -> bool:
    """A live table on a terminal; lines otherwise (and with --logs, whose lines would tear
    the table)."""
    return not args.json and not args.logs and out.is_terminal


def _print_changes(detail: dict[str, Any], seen: dict[str, str], out: Console) -> None:
    """Without a terminal: one line per step status change, at the run time it happened."""
    started = detail["run"].get("started_at") or detail["run"].get("created_at")
    for step in _user_steps(detail):
        key = str(step["key"])
        state = f"{step.get('status')}#{step.get('attempt')}"
        if seen.get(key) == state or step.get("status") == "pending":
            continue
        seen[key] = state
        at = step.get("ended_at") or step.get("started_at")
        offset = (_time(at) - _time(started)).total_seconds() if at and started else 0.0
        # A step that runs no function (a fan-out, a wait) has no try to count.
        tried = f"try {step['attempt']}" if step.get("attempt") else ""
        extra = "  ".join(part for part in (tried, _step_detail(step)) if part)
        out.print(
            f"t+{offset_text(offset):>11}  {key:<16} {step.get('status'):<10} {extra}".rstrip()
        )


def _print_result(
    detail: dict[str, Any], timeline: list[dict[str, Any]] | None, stack: LocalStack, out: Console
) -> None:
    run = detail["run"]
    status = str(run["status"])
    out.print(f"run {run['id']} of {run['workflow']}: [{_STYLE.get(status, '')}]{status}[/]")
    if run.get("error"):
        out.print(f"error: {run['error'].get('type')}: {run['error'].get('message')}")
    out.print(f"output: {json.dumps(run.get('output'))}")
    if run.get("started_at") and run.get("ended_at"):
        span = (_time(run["ended_at"]) - _time(run["started_at"])).total_seconds()
        how = "virtual time" if stack.clock.virtual else "real time"
        out.print(f"run time: {offset_text(span)} of {how}")
    if timeline is not None:
        out.print(timeline_table(timeline, f"timeline of {run['id']}"))


def _user_steps(detail: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's steps but a code-first run's replay (Stepwell's machinery, not a step of the
    user's: the run's end says how its code ended)."""
    return [step for step in detail.get("steps") or [] if step["key"] != WORKFLOW_KEY]
