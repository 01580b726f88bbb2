"""``stepwell demo``: run the order example end to end and print its timeline."""

from __future__ import annotations

import argparse
import importlib.util
import json
import sys
from pathlib import Path
from types import ModuleType
from typing import Any

from rich.console import Console
from rich.table import Table

from stepwell.catalog import Catalog
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow
from stepwell.engine.commands import RequestApproval
from stepwell.engine.events import ApprovalDecided
from stepwell.local.inprocess import InProcessWorld
from stepwell.runtime.clock import FakeClock, SystemClock

ORDER = {
    "order_id": "o-1001",
    "customer": "ada@example.com",
    "items": [
        {"sku": "KEYBOARD", "qty": 4, "price": 120.0},
        {"sku": "MONITOR", "qty": 2, "price": 340.0},
        {"sku": "CABLE", "qty": 10, "price": 9.5},
    ],
}


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Options of ``stepwell demo``."""
    parser.add_argument(
        "--project",
        type=Path,
        default=Path.cwd(),
        help="project folder holding statemachines/ and functions/",
    )
    parser.add_argument("--json", action="store_true", help="print the final run as JSON")


def load_workflows(folder: Path) -> dict[str, Workflow]:
    """Every workflow under ``folder`` by name."""
    return Catalog(folder).all()


def load_handlers(folder: Path) -> dict[str, Any]:
    """The ``HANDLERS`` mappings of every module in ``folder`` (function logical id -> callable)."""
    handlers: dict[str, Any] = {}
    for path in sorted(folder.glob("*.py")):
        spec = importlib.util.spec_from_file_location(f"stepwell_examples_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module: ModuleType = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        handlers.update(getattr(module, "HANDLERS", {}))
    return handlers


def _offset(seconds: float) -> str:
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    if hours:
        return f"{int(hours)}h{int(minutes):02d}m{secs:05.2f}s"
    if minutes:
        return f"{int(minutes)}m{secs:05.2f}s"
    return f"{secs:.2f}s"


def run(args: argparse.Namespace) -> int:
    """Run order-fulfilment in-process (virtual time), approving as finance, and print it."""
    console = Console(width=None if sys.stdout.isatty() else 132)
    project: Path = args.project
    try:
        workflows = load_workflows(project / "statemachines")
    except DefinitionError as exc:
        for problem in exc.problems:
            print(problem, file=sys.stderr)
        return 2
    handlers = load_handlers(project / "functions" / "examples")

    def finance(request: RequestApproval) -> ApprovalDecided:
        console.print(f"[yellow]approval requested[/]: {request.message} -> approved by finance")
        return ApprovalDecided(
            request.key, request.attempt, True, "finance@example.com", "within budget"
        )

    # Virtual time from now: the hour-long cool-off passes at once.
    world = InProcessWorld(workflows, handlers, FakeClock(SystemClock().now()), approver=finance)
    run_id = world.start("order-fulfilment", ORDER)
    world.run_until_idle(virtual_time=True)
    record = world.store.get_run(run_id)
    assert record is not None
    entries = world.store.timeline(run_id, limit=10_000).items
    if args.json:
        print(
            json.dumps(
                {"run_id": run_id, "status": record.status, "output": record.output}, indent=2
            )
        )
        return 0 if record.status == "succeeded" else 1
    started = entries[0].at
    table = Table(title=f"run {run_id} of order-fulfilment: {record.status}")
    table.add_column("t+", justify="right", no_wrap=True)
    for column in ("event", "step", "try"):
        table.add_column(column, no_wrap=True)
    table.add_column("detail", no_wrap=True, overflow="ellipsis", max_width=72)
    for entry in entries:
        table.add_row(
            _offset((entry.at - started).total_seconds()),
            entry.type,
            entry.step or "",
            str(entry.attempt or ""),
            entry.message,
        )
    console.print(table)
    console.print(f"output: {json.dumps(record.output)}")
    return 0 if record.status == "succeeded" else 1
