"""``stepwell schema``: print the JSON Schema of the workflow definition format.

Point an editor's YAML language server at it for completion and inline errors, e.g. with a first
line ``# yaml-language-server: $schema=stepwell.schema.json``.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from stepwell.definition.models import Workflow

SCHEMA_DIALECT = "https://json-schema.org/draft/2020-12/schema"


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The command takes no arguments."""


def workflow_schema() -> dict[str, Any]:
    """The JSON Schema of a workflow definition, with its dialect and a title."""
    schema = Workflow.model_json_schema()
    schema.pop("title", None)
    return {
        "$schema": SCHEMA_DIALECT,
        "title": "Stepwell workflow",
        **schema,
    }


def run(args: argparse.Namespace) -> int:
    """Print the schema as indented JSON."""
    print(json.dumps(workflow_schema(), indent=2))
    return 0
