"""``stepwell triggers [PATH...] [--check TEMPLATE]``: the SAM ``Events`` of TriggerFunction.

Every event trigger of a workflow becomes an ``EventBridgeRule`` whose target input is
``{"workflow": NAME, "event": <aws.events.event>}`` (the trigger function reshapes the event
with the trigger's ``input`` expression); every schedule becomes a ``ScheduleV2`` whose input is
``{"workflow": NAME, "input": ...}``. Paste the printed block under TriggerFunction's
``Events`` in template.yaml. ``--check`` exits 1, naming what is missing, when the template
lacks a trigger a workflow declares.
"""

from __future__ import annotations

import argparse
import io
import json
import re
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, TaggedScalar

from stepwell.definition.catalog import load_definitions
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow

FUNCTION = "TriggerFunction"
EVENT_PLACEHOLDER = "<aws.events.event>"
DEFAULT_BUS = "EventBus"
"""Logical id of Stepwell's own bus in template.yaml (triggers without ``bus`` use it)."""


@dataclass(frozen=True)
class Trigger:
    """One SAM event of TriggerFunction, as plain data comparable with the template's."""

    name: str
    kind: str
    """``EventBridgeRule`` or ``ScheduleV2``."""
    workflow: str
    bus: Any = None
    """``{"Ref": "EventBus"}`` or a bus name (rules)."""
    pattern: dict[str, Any] | None = None
    expression: str | None = None
    timezone: str | None = None
    input: Any = None
    """Schedules: the run input."""

    def key(self) -> tuple[str, str]:
        """What identifies the trigger whatever its event's name."""
        if self.kind == "EventBridgeRule":
            return self.kind, json.dumps([self.workflow, self.bus, self.pattern], sort_keys=True)
        return self.kind, json.dumps(
            [self.workflow, self.expression, self.timezone or "UTC", self.input], sort_keys=True
        )


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Where the workflows are, and --check."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("statemachines")],
        metavar="PATH",
        help="workflow files or folders (default: statemachines/)",
    )
    parser.add_argument(
        "--check",
        type=Path,
        metavar="TEMPLATE",
        help="compare with TEMPLATE's TriggerFunction events; exit 1 when one is missing",
    )


def run(args: argparse.Namespace) -> int:
    """Print the Events block, or check a template against it."""
    try:
        workflows = [workflow for workflow, _ in load_definitions(args.paths)]
    except (DefinitionError, FileNotFoundError) as exc:
        print(f"stepwell triggers: {exc}", file=sys.stderr)
        return 2
    wanted = triggers_of(workflows)
    if args.check is None:
        sys.stdout.write(events_yaml(wanted))
        return 0
    from stepwell.store.tables import load_template

    missing = missing_from(load_template(args.check), wanted)
    if not missing:
        print(f"{args.check}: {FUNCTION} has every trigger ({len(wanted)})")
        return 0
    print(
        f"{args.check}: {FUNCTION} lacks {len(missing)} trigger(s); add under its Events:",
        file=sys.stderr,
    )
    sys.stdout.write(events_yaml(missing))
    return 1


def triggers_of(workflows: list[Workflow]) -> list[Trigger]:
    """Every trigger the workflows declare, in order."""
    out: list[Trigger] = []
    for workflow in sorted(workflows, key=lambda w: w.name):
        stem = "".join(part.capitalize() for part in re.split(r"[^a-z0-9]+", workflow.name))
        events = workflow.triggers.events
        for index, event in enumerate(events, 1):
            out.append(
                Trigger(
                    name=f"{stem}Event{index if len(events) > 1 else ''}",
                    kind="EventBridgeRule",
                    workflow=workflow.name,
                    bus=event.bus if event.bus else {"Ref": DEFAULT_BUS},
                    pattern=dict(event.pattern),
                )
            )
        schedules = workflow.triggers.schedules
        for index, schedule in enumerate(schedules, 1):
            out.append(
                Trigger(
                    name=f"{stem}Schedule{index if len(schedules) > 1 else ''}",
                    kind="ScheduleV2",
                    workflow=workflow.name,
                    expression=schedule.expression,
                    timezone=schedule.timezone,
                    input=schedule.input,
                )
            )
    return out


def rule_input(workflow: str) -> str:
    """The InputTemplate of a rule: the workflow's name and the whole event."""
    return f'{{"workflow": "{workflow}", "event": {EVENT_PLACEHOLDER}}}'


def schedule_input(workflow: str, run_input: Any) -> str:
    """The Input of a schedule."""
    return json.dumps({"workflow": workflow, "input": run_input})


def events_yaml(triggers: list[Trigger]) -> str:
    """The SAM Events entries, as YAML to paste under TriggerFunction's ``Events:``."""
    events = CommentedMap()
    for trigger in triggers:
        properties = CommentedMap()
        if trigger.kind == "EventBridgeRule":
            bus = trigger.bus
            properties["EventBusName"] = (
                TaggedScalar(bus["Ref"], tag="!Ref") if isinstance(bus, dict) else bus
            )
            properties["Pattern"] = trigger.pattern
            properties["InputTransformer"] = {
                "InputPathsMap": {},
                "InputTemplate": rule_input(trigger.workflow),
            }
        else:
            properties["ScheduleExpression"] = trigger.expression
            if trigger.timezone and trigger.timezone != "UTC":
                properties["ScheduleExpressionTimezone"] = trigger.timezone
            properties["Input"] = schedule_input(trigger.workflow, trigger.input)
        events[trigger.name] = CommentedMap(Type=trigger.kind, Properties=properties)
    if not events:
        return "# no workflow declares a trigger\n"
    yaml = YAML(typ="rt")
    yaml.default_flow_style = False
    yaml.width = 4096
    out = io.StringIO()
    yaml.dump(events, out)
    return out.getvalue()


def declared(template: dict[str, Any]) -> list[Trigger]:
    """The triggers TriggerFunction's events in a template (as :func:`load_template` reads it)
    deliver; events that are not Stepwell triggers are left out."""
    resource = (template.get("Resources") or {}).get(FUNCTION) or {}
    events = (resource.get("Properties") or {}).get("Events") or {}
    found: list[Trigger] = []
    for name, event in events.items():
        if not isinstance(event, dict):
            continue
        kind = event.get("Type")
        props = event.get("Properties") or {}
        if kind == "EventBridgeRule":
            template_text = (props.get("InputTransformer") or {}).get("InputTemplate")
            payload = _json(str(template_text).replace(EVENT_PLACEHOLDER, "null"))
            if isinstance(payload, dict) and "event" in payload:
                found.append(
                    Trigger(
                        name=name,
                        kind=kind,
                        workflow=str(payload.get("workflow")),
                        bus=props.get("EventBusName"),
                        pattern=props.get("Pattern"),
                    )
                )
        elif kind in ("ScheduleV2", "Schedule"):
            payload = _json(props.get("Input"))
            if isinstance(payload, dict) and "workflow" in payload:
                found.append(
                    Trigger(
                        name=name,
                        kind="ScheduleV2",
                        workflow=str(payload["workflow"]),
                        expression=props.get("ScheduleExpression") or props.get("Schedule"),
                        timezone=props.get("ScheduleExpressionTimezone") or "UTC",
                        input=payload.get("input"),
                    )
                )
    return found


def missing_from(template: dict[str, Any], wanted: list[Trigger]) -> list[Trigger]:
    """The wanted triggers the template's TriggerFunction does not deliver."""
    have = {trigger.key() for trigger in declared(template)}
    return [trigger for trigger in wanted if trigger.key() not in have]


def _json(text: Any) -> Any:
    try:
        return json.loads(text) if isinstance(text, str) else None
    except ValueError:
        return None
