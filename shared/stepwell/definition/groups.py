"""The groups file: the people each group names (``approvers: {group: finance}``), kept by the
team, not by the workflows.

A YAML (or JSON) mapping of group names to lists of e-mails::

    finance: [ann@example.com, bob@example.com]
    warehouse:
      - carl@example.com

Locally it is ``groups.yaml`` beside the template; on AWS the same text is an SSM parameter
(the engine's ``GroupsParameter``). A wait resolves its groups when it opens and records them on
its step, so a change to the file reaches the waits that open after it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Iterator, Mapping
from pathlib import Path

from stepwell.definition.errors import DefinitionError, PathPart, Problem, SourceMap
from stepwell.definition.loader import read_document
from stepwell.definition.models import ApprovalStep, Group, InputStep, Person, Workflow

GROUPS_FILE = "groups.yaml"
"""The groups file's name in a project (beside its template)."""
GROUP_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")


def parse_groups(text: str, filename: str) -> dict[str, tuple[str, ...]]:
    """The groups ``text`` defines; a DefinitionError lists every problem, located."""
    document, problems = read_document(text, filename)
    source = SourceMap(filename, document)
    if document is None:
        return {}
    if not isinstance(document, Mapping):
        raise DefinitionError(
            [
                source.problem(
                    (),
                    "a groups file maps group names to lists of e-mails, e.g. "
                    "finance: [ann@example.com, bob@example.com]",
                )
            ]
        )
    found: dict[str, tuple[str, ...]] = {}
    for name, people in document.items():
        if not isinstance(name, str) or not GROUP_NAME.match(name):
            message = f"group name {name!r}: use letters, digits, '-', '_' and '.' (at most 64)"
            problems.append(source.problem((name,), message))
        elif not isinstance(people, list) or not all(isinstance(p, str) and p for p in people):
            message = f"group '{name}' is a list of e-mails, e.g. {name}: [ann@example.com]"
            problems.append(source.problem((name,), message))
        else:
            found[name] = tuple(person.strip() for person in people)
    if problems:
        raise DefinitionError(problems)
    return found


def load_groups(path: Path) -> dict[str, tuple[str, ...]]:
    """The groups of the file at ``path``."""
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise DefinitionError(
            [Problem(str(path), 1, 1, None, None, f"cannot read the groups file: {exc}")]
        ) from None
    return parse_groups(text, str(path))


def unknown_groups(
    workflow: Workflow, source: SourceMap, groups: Mapping[str, tuple[str, ...]], groups_file: str
) -> Iterator[Problem]:
    """Where ``workflow`` names a group ``groups`` does not define, and an approval whose
    quorum its groups cannot reach."""
    for key, step in workflow.steps.items():
        if isinstance(step, ApprovalStep):
            fields: list[tuple[tuple[PathPart, ...], list[Person]]] = [
                (("approvers",), step.approvers)
            ]
            fields += [(("escalate", i, "to"), e.to) for i, e in enumerate(step.escalate)]
        elif isinstance(step, InputStep):
            fields = [(("assignees",), step.assignees)]
        else:
            continue
        for path, people in fields:
            for index, person in enumerate(people):
                if isinstance(person, Group) and person.group not in groups:
                    close = difflib.get_close_matches(person.group, list(groups), n=1)
                    hint = f"did you mean '{close[0]}'?" if close else f"define it in {groups_file}"
                    yield source.at_step(
                        ("steps", key, *path, index),
                        f"no group named '{person.group}' in {groups_file}: {hint}",
                    )
        if isinstance(step, ApprovalStep) and all(
            not isinstance(p, Group) or p.group in groups for p in step.approvers
        ):
            distinct = {
                person.lower()
                for entry in step.approvers
                for person in ([entry] if isinstance(entry, str) else groups[entry.group])
            }
            if step.approvers and step.quorum > len(distinct):
                yield source.at_step(
                    ("steps", key, "quorum"),
                    f"quorum {step.quorum} is more than the {len(distinct)} people approvers "
                    f"names with the groups of {groups_file}: lower the quorum or add people",
                )
