"""An EventBridge rule's target: where it sends what matched, and how it makes the target's
input from the event: ``Input`` (fixed text), ``InputPath`` (a part of the event) or
``InputTransformer`` (a template, ``<name>`` filled from JSONPaths and EventBridge's own
variables such as ``<aws.events.event.json>``)."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any


@dataclass
class Target:
    """Where a rule sends what matched, and how it makes the target's input."""

    id: str
    arn: str
    input: str | None = None
    input_path: str | None = None
    input_transformer: dict[str, Any] | None = None
    rest: dict[str, Any] = field(default_factory=dict)
    """The rest of what PutTargets gave (RoleArn, RetryPolicy, DeadLetterConfig ...), shown
    back as given."""

    @classmethod
    def from_api(cls, entry: Mapping[str, Any]) -> Target:
        """A target as PutTargets gives it (ListTargetsByRule's shape)."""
        known = ("Id", "Arn", "Input", "InputPath", "InputTransformer")
        transformer = entry.get("InputTransformer")
        return cls(
            id=str(entry["Id"]),
            arn=str(entry["Arn"]),
            input=entry.get("Input"),
            input_path=entry.get("InputPath"),
            input_transformer=dict(transformer) if transformer is not None else None,
            rest={k: v for k, v in entry.items() if k not in known},
        )

    def to_api(self) -> dict[str, Any]:
        """As ListTargetsByRule shows it."""
        shown: dict[str, Any] = {"Id": self.id, "Arn": self.arn}
        if self.input is not None:
            shown["Input"] = self.input
        if self.input_path is not None:
            shown["InputPath"] = self.input_path
        if self.input_transformer is not None:
            shown["InputTransformer"] = self.input_transformer
        return {**shown, **self.rest}

    def payload(self, event: dict[str, Any], rule_arn: str, rule_name: str) -> bytes:
        """What the target receives for ``event`` from the rule ``rule_name`` (ValueError: a
        transformer that cannot apply)."""
        if self.input is not None:
            return self.input.encode()
        if self.input_path:
            return json.dumps(json_path(event, self.input_path)).encode()
        if self.input_transformer:
            return transform(self.input_transformer, event, rule_arn, rule_name).encode()
        return json.dumps(event).encode()


_PATH_PART = re.compile(r"\.([A-Za-z0-9_\-$@]+)|\[(\d+)\]|\['([^']*)'\]|\[\"([^\"]*)\"\]")
_PLACEHOLDER = re.compile(r"<([A-Za-z0-9_.\-]+)>")


def json_path(document: Any, path: str) -> Any:
    """The value at a simple JSONPath (``$``, ``$.detail.items[0]``, ``$['detail-type']``);
    a path that leads nowhere gives None."""
    path = path.strip()
    if not path.startswith("$"):
        raise ValueError(f"{path!r} is not a JSONPath (it starts with $)")
    value = document
    position = 1
    while position < len(path):
        match = _PATH_PART.match(path, position)
        if not match:
            raise ValueError(f"{path!r}: only $.name, $['name'] and [index] paths are supported")
        name = match.group(1) or match.group(3) or match.group(4)
        if match.group(2) is not None:
            index = int(match.group(2))
            value = value[index] if isinstance(value, list) and index < len(value) else None
        else:
            value = value.get(name) if isinstance(value, dict) else None
        position = match.end()
    return value


def transform(
    transformer: Mapping[str, Any], event: dict[str, Any], rule_arn: str, rule_name: str
) -> str:
    """An InputTransformer applied to ``event``.

    Each ``<name>`` of the template is replaced by its value: inside a JSON string the text of
    the value, elsewhere the value as JSON (``<aws.events.event>`` is the whole event).
    """
    paths = transformer.get("InputPathsMap") or {}
    template = transformer.get("InputTemplate")
    if not isinstance(template, str):
        raise ValueError("InputTransformer needs an InputTemplate")
    values: dict[str, Any] = {
        name: json_path(event, str(path)) for name, path in dict(paths).items()
    }
    values.setdefault("aws.events.rule-arn", rule_arn)
    values.setdefault("aws.events.rule-name", rule_name)
    values.setdefault("aws.events.event.ingestion-time", event.get("time"))
    values.setdefault("aws.events.event", event)
    values.setdefault("aws.events.event.json", event)
    out: list[str] = []
    in_string = False
    escaped = False
    position = 0
    while position < len(template):
        char = template[position]
        if char == "<":
            match = _PLACEHOLDER.match(template, position)
            if match and match.group(1) in values:
                value = values[match.group(1)]
                if in_string:
                    text = value if isinstance(value, str) else json.dumps(value)
                    out.append(json.dumps(text)[1:-1] if value is not None else "")
                else:
                    out.append(json.dumps(value))
                position = match.end()
                continue
        if in_string and char == "\\" and not escaped:
            escaped = True
        else:
            if char == '"' and not escaped:
                in_string = not in_string
            escaped = False
        out.append(char)
        position += 1
    return "".join(out)
