"""The Stepwell engine an app's template runs on, locally.

An app's template reaches the engine one of two ways, and the local stack runs the engine of the
installed stepwell package (its ``stack/template.yaml``) for both:

- nested: an ``AWS::Serverless::Application`` whose ``Location`` is the packaged engine (a URL
  or an application of the Serverless Application Repository, which the local stack cannot
  read): that template takes its place; a ``Location`` that is a file of the project is read
  as it is (the repository's own template nests the engine that way);
- an engine stack deployed once (``stepwell init --engine-stack NAME``): the app imports the
  engine's exports, ``!ImportValue NAME-LayerArn`` and the like; the engine joins the template
  as if it were nested under the name ``StepwellEngine``, and each import becomes the output
  it names.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib import resources
from pathlib import Path
from typing import Any

from stepwell.local.nested import read
from stepwell.local.template import STACK, Template

ENGINE_TEMPLATE = Path(str(resources.files("stepwell") / "stack" / "template.yaml"))
"""The engine's template, as the installed package ships it."""
IMPORTED = "StepwellEngine"
"""The logical id an imported engine joins an app's template under."""


def load(path: Path, parameters: Mapping[str, str] | None = None) -> Template:
    """An app's (or the repository's) template with its engine flattened into it."""
    document = read(path)
    stack = imported_stack(document)
    if stack is not None:
        document = with_engine(document, stack)
    return Template.load(
        path, stack=STACK, parameters=parameters, remote=_engine, document=document
    )


def outputs() -> frozenset[str]:
    """The engine's outputs (the names an app imports)."""
    return frozenset(read(ENGINE_TEMPLATE).get("Outputs") or {})


def imported_stack(document: Any) -> str | None:
    """The engine stack an app imports from (``NAME`` of ``!ImportValue NAME-LayerArn``), or
    None when it imports none of the engine's outputs."""
    names = outputs()
    for value in _imports(document):
        stack, _, output = value.rpartition("-")
        if stack and output in names:
            return stack
    return None


def _engine(_logical_id: str, _resource: Mapping[str, Any]) -> Path:
    return ENGINE_TEMPLATE


def _imports(node: Any) -> list[str]:
    if isinstance(node, dict):
        if set(node) == {"Fn::ImportValue"} and isinstance(node["Fn::ImportValue"], str):
            return [node["Fn::ImportValue"]]
        return [name for value in node.values() for name in _imports(value)]
    if isinstance(node, list):
        return [name for value in node for name in _imports(value)]
    return []


def with_engine(document: dict[str, Any], stack: str) -> dict[str, Any]:
    """``document`` (an app that imports engine stack ``stack``'s exports) with the installed
    engine nested in it as :data:`IMPORTED`, each import of ``stack``'s exports replaced by that
    output."""
    prefix = f"{stack}-"

    def swap(node: Any) -> Any:
        if isinstance(node, dict):
            value = node.get("Fn::ImportValue")
            if len(node) == 1 and isinstance(value, str) and value.startswith(prefix):
                return {"Fn::GetAtt": [IMPORTED, f"Outputs.{value[len(prefix) :]}"]}
            return {k: swap(v) for k, v in node.items()}
        if isinstance(node, list):
            return [swap(v) for v in node]
        return node

    changed: dict[str, Any] = swap(document)
    changed["Resources"] = {
        IMPORTED: {
            "Type": "AWS::Serverless::Application",
            "Properties": {"Location": str(ENGINE_TEMPLATE)},
        },
        **changed.get("Resources", {}),
    }
    return changed
