"""The project's groups file in the local stack: put into SSM (moto) as the parameter the engine
reads on AWS (``GroupsParameter``), so the local functions read it through the same adapter."""

from __future__ import annotations

from pathlib import Path

import boto3

from stepwell.definition.errors import DefinitionError
from stepwell.definition.groups import GROUPS_FILE, load_groups

PARAMETER = "/stepwell/groups"
"""The parameter's name in the local stack."""


def publish(project: Path, region: str, warnings: list[str]) -> dict[str, str]:
    """Put ``groups.yaml`` of ``project`` into SSM and return the variable that names it (none
    without the file). A broken file is a warning: its problems are listed, and the waits that
    name a group fail, saying which."""
    path = project / GROUPS_FILE
    if not path.exists():
        return {}
    try:
        load_groups(path)
    except DefinitionError as exc:
        warnings.append(f"{GROUPS_FILE} is not used:\n{exc}")
        return {}
    text = path.read_text(encoding="utf-8")
    ssm = boto3.client("ssm", region_name=region)
    ssm.put_parameter(Name=PARAMETER, Value=text, Type="String", Overwrite=True, Tier="Advanced")
    return {"STEPWELL_GROUPS_PARAMETER": PARAMETER}
