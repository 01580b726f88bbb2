"""A published workflow's triggers on AWS: EventBridge rules and Scheduler schedules the engine
creates, owns and removes with the workflow.

Each event trigger is a rule on its bus (the engine's unless the trigger names one) whose target
is the trigger function, with the input ``{"workflow": NAME, "event": <the event>}``; each
schedule is a recurring EventBridge Scheduler schedule in the engine's group, with the input
``{"workflow": NAME, "input": ..., "time": <the tick's scheduled time>}`` (the tick's time makes
its run id, so a tick delivered twice starts one run). Names derive from the engine's prefix and
the workflow's name, so wiring again replaces exactly what the workflow had.
"""

from __future__ import annotations

import hashlib
import json
from typing import Any

from botocore.exceptions import ClientError

from stepwell.definition.models import Workflow

MAX_NAME = 64
"""EventBridge rule and Scheduler schedule names: at most 64 characters."""


def base_name(prefix: str, workflow: str) -> str:
    """What every rule and schedule of ``workflow`` starts with: ``<prefix><workflow>``, or, when
    that leaves no room for ``-e<index>`` within 64 characters, its start and a digest."""
    base = f"{prefix}{workflow}"
    if len(base) <= MAX_NAME - 4:
        return base
    digest = hashlib.sha256(base.encode()).hexdigest()[:8]
    return f"{base[: MAX_NAME - 4 - 9]}-{digest}"


class AwsTriggers:
    """Implements the TriggerWiring port with the EventBridge and Scheduler APIs."""

    def __init__(
        self,
        events: Any,
        scheduler: Any,
        *,
        prefix: str,
        bus: str,
        function_arn: str,
        group: str,
        role_arn: str,
    ) -> None:
        self._events = events
        self._scheduler = scheduler
        self._prefix = prefix
        self._bus = bus
        self._function_arn = function_arn
        self._group = group
        self._role_arn = role_arn

    def wire(self, workflow: Workflow, previous: Workflow | None = None) -> None:
        name = workflow.name
        wanted_rules: set[tuple[str, str]] = set()
        for index, trigger in enumerate(workflow.triggers.events):
            bus = trigger.bus or self._bus
            rule = f"{base_name(self._prefix, name)}-e{index}"
            wanted_rules.add((bus, rule))
            self._events.put_rule(
                Name=rule,
                EventBusName=bus,
                EventPattern=json.dumps(trigger.pattern),
                State="ENABLED",
                Description=f"Starts Stepwell workflow {name}",
            )
            template = json.dumps({"workflow": name, "event": "EVENT"}).replace(
                '"EVENT"', "<aws.events.event.json>"
            )
            self._events.put_targets(
                Rule=rule,
                EventBusName=bus,
                Targets=[
                    {
                        "Id": "trigger",
                        "Arn": self._function_arn,
                        "InputTransformer": {"InputPathsMap": {}, "InputTemplate": template},
                    }
                ],
            )
        wanted_schedules: set[str] = set()
        for index, schedule in enumerate(workflow.triggers.schedules):
            schedule_name = f"{base_name(self._prefix, name)}-s{index}"
            wanted_schedules.add(schedule_name)
            body = json.dumps({"workflow": name, "input": schedule.input, "time": "TIME"}).replace(
                '"TIME"', '"<aws.scheduler.scheduled-time>"'
            )
            request = {
                "Name": schedule_name,
                "GroupName": self._group,
                "ScheduleExpression": schedule.expression,
                "ScheduleExpressionTimezone": schedule.timezone,
                "FlexibleTimeWindow": {"Mode": "OFF"},
                "State": "ENABLED",
                "Description": f"Starts Stepwell workflow {name}",
                "Target": {"Arn": self._function_arn, "RoleArn": self._role_arn, "Input": body},
            }
            try:
                self._scheduler.create_schedule(**request)
            except ClientError as exc:
                if _code(exc) != "ConflictException":
                    raise
                self._scheduler.update_schedule(**request)
        self._remove(
            name, _buses(previous), keep_rules=wanted_rules, keep_schedules=wanted_schedules
        )

    def unwire(self, workflow: Workflow) -> None:
        self._remove(workflow.name, _buses(workflow), keep_rules=set(), keep_schedules=set())

    def _remove(
        self,
        name: str,
        buses: set[str],
        *,
        keep_rules: set[tuple[str, str]],
        keep_schedules: set[str],
    ) -> None:
        """Delete the workflow's rules and schedules not in ``keep_*``: those of triggers it
        no longer has (on the engine's bus and every bus it named before or names now)."""
        buses = {self._bus, *buses, *(bus for bus, _ in keep_rules)}
        prefix = f"{base_name(self._prefix, name)}-e"
        for bus in sorted(buses):
            for rule in self._rules(bus, prefix):
                if (bus, rule) in keep_rules or not _ours(rule, prefix):
                    continue
                try:
                    self._events.remove_targets(Rule=rule, EventBusName=bus, Ids=["trigger"])
                    self._events.delete_rule(Name=rule, EventBusName=bus)
                except ClientError as exc:
                    if _code(exc) != "ResourceNotFoundException":
                        raise
        prefix = f"{base_name(self._prefix, name)}-s"
        for schedule in self._schedules(prefix):
            if schedule in keep_schedules or not _ours(schedule, prefix):
                continue
            try:
                self._scheduler.delete_schedule(Name=schedule, GroupName=self._group)
            except ClientError as exc:
                if _code(exc) != "ResourceNotFoundException":
                    raise

    def _rules(self, bus: str, prefix: str) -> list[str]:
        found: list[str] = []
        request: dict[str, Any] = {"NamePrefix": prefix[:MAX_NAME], "EventBusName": bus}
        while True:
            try:
                page = self._events.list_rules(**request)
            except ClientError as exc:
                if _code(exc) == "ResourceNotFoundException":  # the bus is gone
                    return found
                raise
            found.extend(rule["Name"] for rule in page.get("Rules", []))
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]

    def _schedules(self, prefix: str) -> list[str]:
        found: list[str] = []
        request: dict[str, Any] = {"NamePrefix": prefix[:MAX_NAME], "GroupName": self._group}
        while True:
            page = self._scheduler.list_schedules(**request)
            found.extend(item["Name"] for item in page.get("Schedules", []))
            if not page.get("NextToken"):
                return found
            request["NextToken"] = page["NextToken"]


def _buses(workflow: Workflow | None) -> set[str]:
    if workflow is None:
        return set()
    return {trigger.bus for trigger in workflow.triggers.events if trigger.bus}


def _ours(name: str, prefix: str) -> bool:
    """A rule or schedule named ``<prefix><digits>``: one of this workflow's (another
    workflow's name that starts the same has more after it)."""
    return name.startswith(prefix) and name[len(prefix) :].isdigit()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))
