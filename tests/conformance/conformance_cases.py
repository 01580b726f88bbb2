"""The conformance cases: state machines from the Amazon States Language specification and the
Step Functions developer guide, each with the output or the error the documentation gives.

``cases/*.yaml`` holds them, a list per topic. A case has:

* ``name`` (its machine is the workflow ``c-<name>``) and ``source`` (where the documentation
  gives it);
* ``machine``: the machine's definition; ``machines``: other machines it starts, by name;
* ``input`` (``${STACK_URL}`` in it is the local stack's API, on loopback, and
  ``${STACK_API_HOST}`` that API's ``execute-api`` host); then what it must
  end with: ``output``, or ``error`` (``type`` and ``message``,
  the run's error: a Fail state's Error and Cause, or an uncaught error's), and ``status`` when
  it is not ``succeeded`` / ``failed``;
* ``answers``: how its task tokens are answered, in order (``success: OUTPUT``, ``failure:
  {error, cause}``, ``heartbeat: N`` beats then nothing);
* ``steps``: some of its step records by key, with the fields they must have; ``elapsed``: the
  least virtual time (seconds) from its start to its end; ``ended_after``: a time its end is
  not before; ``within``: the most virtual time (seconds) it may take (a machine that must
  not wait).

A Choice rule's case may give only ``rule`` (and ``input``) and ``holds``: its machine is a
Choice with that rule, going to a Pass whose result is ``true``, and a Default whose is
``false``; its output must be ``holds``.

An expected value may be ``{$json: V}`` (JSON text that parses to V), ``{$regex: R}`` (a string
R matches), ``{$between: [LO, HI]}`` (a number in the range) or ``{$any: true}``.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML

HERE = Path(__file__).resolve().parent
ACCOUNT = "arn:aws:states:us-east-1:123456789012:stateMachine:"


@dataclass
class Case:
    name: str
    source: str
    machine: dict[str, Any]
    input: Any = field(default_factory=dict)
    output: Any = ...
    error: dict[str, Any] | None = None
    status: str | None = None
    answers: list[dict[str, Any]] = field(default_factory=list)
    steps: dict[str, dict[str, Any]] = field(default_factory=dict)
    elapsed: float | None = None
    ended_after: str | None = None
    within: float | None = None
    machines: dict[str, Any] = field(default_factory=dict)
    topic: str = ""

    @property
    def workflow(self) -> str:
        return f"c-{self.name}"

    @property
    def expected_status(self) -> str:
        return self.status or ("failed" if self.error is not None else "succeeded")

    def files(self) -> dict[str, Any]:
        return {self.workflow: self.machine, **self.machines}


def _plain(value: Any) -> Any:
    """ruamel's mappings and sequences as dicts and lists."""
    return json.loads(json.dumps(value))


def load(folder: Path = HERE / "cases") -> list[Case]:
    cases: list[Case] = []
    yaml = YAML(typ="safe")
    for path in sorted(folder.glob("*.yaml")):
        for entry in _plain(yaml.load(path.read_text())):
            whole = _rule_case(entry) if "rule" in entry else entry
            cases.append(Case(topic=path.stem, **whole))
    names = [c.name for c in cases]
    duplicated = {n for n in names if names.count(n) > 1}
    assert not duplicated, f"case names used twice: {sorted(duplicated)}"
    return cases


def _rule_case(entry: dict[str, Any]) -> dict[str, Any]:
    """A Choice rule's case as a whole case (see the module's doc)."""
    rule, holds = entry.pop("rule"), entry.pop("holds")
    entry["machine"] = {
        "StartAt": "Choose",
        "States": {
            "Choose": {"Type": "Choice", "Choices": [{**rule, "Next": "Yes"}], "Default": "No"},
            "Yes": {"Type": "Pass", "Result": True, "End": True},
            "No": {"Type": "Pass", "Result": False, "End": True},
        },
    }
    entry["output"] = holds
    return entry


CASES = load()


def differences(expected: Any, actual: Any, where: str = "$") -> list[str]:
    """Where ``actual`` is not what ``expected`` describes (empty: it is)."""
    if isinstance(expected, dict) and len(expected) == 1:
        ((key, value),) = expected.items()
        if key == "$json":
            try:
                parsed = json.loads(actual) if isinstance(actual, str) else None
            except ValueError:
                parsed = None
            if parsed is None:
                return [f"{where}: {actual!r} is not JSON text"]
            return differences(value, parsed, where + "(json)")
        if key == "$regex":
            ok = isinstance(actual, str) and re.search(value, actual) is not None
            return [] if ok else [f"{where}: {actual!r} does not match {value!r}"]
        if key == "$any":
            return []
        if key == "$between":
            low, high = value
            ok = isinstance(actual, int | float) and low <= actual <= high
            return [] if ok else [f"{where}: {actual!r} is not in [{low}, {high}]"]
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return [f"{where}: expected an object, got {actual!r}"]
        found = [f"{where}: unexpected key {k!r}" for k in actual if k not in expected]
        for key, value in expected.items():
            if key not in actual:
                found.append(f"{where}: missing key {key!r}")
            else:
                found += differences(value, actual[key], f"{where}.{key}")
        return found
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            return [f"{where}: expected {expected!r}, got {actual!r}"]
        pairs = enumerate(zip(expected, actual, strict=True))
        return [d for i, (e, a) in pairs for d in differences(e, a, f"{where}[{i}]")]
    if type(expected) is not type(actual) and not (
        isinstance(expected, int | float)
        and isinstance(actual, int | float)
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    ):
        return [f"{where}: expected {expected!r}, got {actual!r}"]
    return [] if expected == actual else [f"{where}: expected {expected!r}, got {actual!r}"]
