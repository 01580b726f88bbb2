"""How the engine learns an app's workflow from the function that holds it.

An app's workflows function (``stepwell.handlers.workflows``) holds the app's workflow files in
its package and replays its code-first workflows. To publish one, the engine asks it to
*describe* a file: the function loads it with the same loader ``stepwell validate`` uses (a
code-first file is imported there, with the app's own modules and dependencies) and answers with
the definitions, or with every problem found, located. The engine never imports an app's code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from stepwell.catalog import load_definitions, newest, with_example_input
from stepwell.definition.errors import DefinitionError
from stepwell.definition.models import Workflow

DESCRIBE = "describe/1"
"""The ``stepwell`` field of a describe request (a step envelope says ``step/1``)."""


class DescribeFailed(ValueError):
    """The file could not be described: its problems, one per line, located."""


def request(definition: str) -> dict[str, Any]:
    """The event that asks a workflows function to describe ``definition`` (a path in its
    package)."""
    return {"stepwell": DESCRIBE, "definition": definition}


def is_request(event: Any) -> bool:
    """Whether ``event`` asks for a description."""
    return isinstance(event, Mapping) and event.get("stepwell") == DESCRIBE


def answer(event: Mapping[str, Any], folder: Path) -> dict[str, Any]:
    """Describe the file a request names, relative to ``folder`` (the function's package)."""
    name = event.get("definition")
    if not isinstance(name, str) or not name.strip():
        return {"problems": ["the describe request names no definition file"]}
    root = folder.resolve()
    path = (root / name).resolve()
    if not path.is_relative_to(root):
        return {"problems": [f"{name}: not a file of this function's package"]}
    if not path.is_file():
        files = sorted(
            str(p.relative_to(root))
            for p in root.rglob("*")
            if p.suffix in {".yaml", ".yml", ".py", ".json"} and "__pycache__" not in p.parts
        )
        return {
            "problems": [
                f"{name}: no such file in the workflows function's package (it has: "
                f"{', '.join(files[:20]) or 'no workflow files'}); Definition is a path relative "
                "to the function's CodeUri"
            ]
        }
    try:
        found = load_definitions([path])
    except DefinitionError as exc:
        return {"problems": [str(problem) for problem in exc.problems]}
    workflows = [with_example_input(w, path.parent) for w in newest(w for w, _ in found)]
    return {"workflows": [workflow.model_dump(mode="json") for workflow in workflows]}


def read(response: Any) -> list[Workflow]:
    """The workflows of a describe answer; DescribeFailed with its problems otherwise."""
    if isinstance(response, (bytes, str)):
        try:
            response = json.loads(response)
        except ValueError:
            raise DescribeFailed("the workflows function answered with no JSON") from None
    if not isinstance(response, Mapping):
        raise DescribeFailed("the workflows function answered with no description")
    if "errorMessage" in response:  # the function raised (Lambda's error shape)
        raise DescribeFailed(
            f"the workflows function failed: {response.get('errorType', 'Error')}: "
            f"{response.get('errorMessage')}"
        )
    problems = response.get("problems")
    if problems:
        raise DescribeFailed("\n".join(str(p) for p in problems))
    bodies = response.get("workflows")
    if not isinstance(bodies, list) or not bodies:
        raise DescribeFailed("the workflows function described no workflow")
    return [Workflow.model_validate(body) for body in bodies]
