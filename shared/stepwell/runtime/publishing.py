"""Published workflows: the definition version new runs of each name take.

A workflow reaches the engine by being *published* (a ``Custom::StepwellWorkflow`` resource in a
team's stack, ``stepwell publish`` from CI, or the local stack publishing a project's files): its
definition is kept as an immutable version, bound to the functions it runs (``functions``, and a
code-first workflow's ``runner``), and its record (``WORKFLOWS`` / ``W#<name>``) points new runs
at that version. Runs pin the version they started with, so a new publication or a retirement
never touches a run in flight, and the engine itself is never redeployed for a workflow.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from stepwell.definition.models import TaskStep, Workflow
from stepwell.runtime.clock import Clock
from stepwell.runtime.ports import TriggerWiring
from stepwell.store.port import OwnedElsewhere, Registration, Store

Status = Literal["new", "changed", "unchanged", "refused"]


class PublishRefused(ValueError):
    """A publication the engine does not take (the message says why and how to fix it)."""


class RetiredWorkflow(LookupError):
    """The workflow was retired: it takes no new runs."""


@dataclass(frozen=True)
class Published:
    """What a publication did (or, dry, would do)."""

    name: str
    status: Status
    version: str | None
    previous: str | None = None
    problems: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """The JSON shape the API and the custom resource answer with."""
        return {
            "name": self.name,
            "status": self.status,
            "version": self.version,
            "previous": self.previous,
            **({"problems": list(self.problems)} if self.problems else {}),
        }


def bind(workflow: Workflow, functions: Mapping[str, str] | None, runner: str | None) -> Workflow:
    """``workflow`` bound to the functions it runs (its version changes with them: runs pin what
    they invoke). ``None`` keeps what the definition already holds."""
    body = workflow.model_dump(mode="json")
    if functions is not None:
        body["functions"] = dict(functions)
    if runner is not None:
        body["runner"] = runner
    # Validated again rather than copied: a copy would keep the cached version.
    return Workflow.model_validate(body)


def named_functions(workflow: Workflow) -> list[tuple[str, str]]:
    """``(what names it, function)`` for every function a YAML workflow runs: its task steps'
    and their compensations' (``step 'charge' names``, ``step 'charge' is undone by``)."""
    named: list[tuple[str, str]] = []
    for key, step in workflow.steps.items():
        if isinstance(step, TaskStep) and step.function:
            named.append((f"step '{key}' names", step.function))
        if step.undo is not None:
            named.append((f"step '{key}' is undone by", step.undo.function))
    return named


def unbound_functions(workflow: Workflow) -> list[str]:
    """Functions of a YAML workflow's steps and compensations that its ``functions`` map does
    not give (an ARN needs no entry: it names a plain Lambda), as "step 'x' names 'F'" lines."""
    if workflow.code is not None:
        return []  # a code-first workflow names its functions as it runs
    return [
        f"{where} {function!r}"
        for where, function in named_functions(workflow)
        if not function.startswith("arn:") and function not in workflow.functions
    ]


class Workflows:
    """The published workflows of one deployment (read by every function of the engine)."""

    def __init__(self, store: Store, clock: Clock, triggers: TriggerWiring | None = None) -> None:
        self.store = store
        self.clock = clock
        self.triggers = triggers

    # -- reading -------------------------------------------------------------------------
    def get(self, name: str) -> Workflow | None:
        """The version new runs of ``name`` take, or None (never published, or retired)."""
        found = self.store.registration(name)
        if found is None or found.version is None or found.retired:
            return None
        return self.store.get_definition(name, found.version)

    def current(self, name: str) -> Workflow:
        """As :meth:`get`, but says why there is none (LookupError)."""
        found = self.store.registration(name)
        if found is not None and found.retired:
            raise RetiredWorkflow(
                f"workflow {name!r} was retired at {found.published_at.isoformat()} (its "
                "publication was removed): it takes no new runs; publish it again to start some"
            )
        workflow = self.get(name)
        if workflow is None:
            raise LookupError(f"no workflow named {name!r}")
        return workflow

    def all(self) -> dict[str, Workflow]:
        """Every workflow that takes new runs, by name."""
        found: dict[str, Workflow] = {}
        for registration in self.store.registrations():
            if registration.retired or registration.version is None:
                continue
            workflow = self.store.get_definition(registration.name, registration.version)
            if workflow is not None:
                found[registration.name] = workflow
        return found

    def broken(self) -> dict[str, list[str]]:
        """Workflows whose last publication was refused, with why (their last accepted version,
        if any, still takes new runs)."""
        return {
            registration.name: list(registration.problems)
            for registration in self.store.registrations()
            if registration.problems and not registration.retired
        }

    def problems(self, name: str) -> list[str] | None:
        """Why the last publication of ``name`` was refused, or None."""
        found = self.store.registration(name)
        return list(found.problems) if found is not None and found.problems else None

    # -- publishing ----------------------------------------------------------------------
    def publish(
        self, workflow: Workflow, owner: str, resource: str, *, dry_run: bool = False
    ) -> Published:
        """Make ``workflow`` (bound already) the version new runs of its name take."""
        name = workflow.name
        current = self.store.registration(name)
        if current is not None and not current.retired and current.owner != owner and not dry_run:
            raise PublishRefused(_owned(name, current))
        if workflow.code is not None and workflow.runner is None:
            raise PublishRefused(
                f"workflow {name!r} is code-first: publish it with its runner, the function "
                "whose package holds its code (a Custom::StepwellWorkflow's Code, or "
                "`stepwell publish --runner ARN`)"
            )
        unbound = unbound_functions(workflow)
        if unbound:
            raise PublishRefused(
                f"workflow {name!r}: {'; '.join(unbound)}: no function of the app's stack has "
                "that logical id or name; define it in the stack, or map it in the "
                "publication's Functions (`Name: !GetAtt SomeFunction.Arn`)"
            )
        previous = None if current is None or current.retired else current.version
        status: Status
        if previous is None:
            status = "new"
        elif previous == workflow.version:
            status = "unchanged"
        else:
            status = "changed"
        if dry_run:
            return Published(name, status, workflow.version, previous)
        self.store.save_definition(workflow)
        try:
            self.store.register(
                Registration(
                    name=name,
                    version=workflow.version,
                    owner=owner,
                    resource=resource,
                    published_at=self.clock.now(),
                )
            )
        except OwnedElsewhere as exc:
            raise PublishRefused(_owned(name, exc.current)) from None
        if self.triggers is not None and status != "unchanged":
            before = None if previous is None else self.store.get_definition(name, previous)
            self.triggers.wire(workflow, before)
        return Published(name, status, workflow.version, previous)

    def refuse(self, name: str, owner: str, resource: str, problems: list[str]) -> Published:
        """Record why a publication of ``name`` was refused; the version in force stays."""
        current = self.store.registration(name)
        if current is not None and not current.retired and current.owner != owner:
            raise PublishRefused(_owned(name, current))
        keep = None if current is None or current.retired else current.version
        try:
            self.store.register(
                Registration(
                    name=name,
                    version=keep,
                    owner=owner,
                    resource=resource if keep is None or current is None else current.resource,
                    published_at=self.clock.now(),
                    problems=tuple(problems),
                )
            )
        except OwnedElsewhere as exc:
            raise PublishRefused(_owned(name, exc.current)) from None
        return Published(name, "refused", keep, keep, tuple(problems))

    def retire(self, name: str, owner: str, resource: str) -> bool:
        """Retire ``name`` if ``owner``'s publication ``resource`` still holds it: it takes no
        new runs, its triggers are removed, its runs in flight finish."""
        workflow = self.get(name)
        retired = self.store.retire(name, owner, resource, self.clock.now())
        if retired and self.triggers is not None and workflow is not None:
            self.triggers.unwire(workflow)
        return retired


def _owned(name: str, current: Registration) -> str:
    return (
        f"workflow {name!r} is published by {current.owner}: retire it there (remove its "
        "publication) before another stack publishes that name, or give this one another name"
    )
