"""Groups on AWS: the groups file's text kept as an SSM parameter (the engine's
``GroupsParameter``), read through Powertools Parameters and cached per container."""

from __future__ import annotations

import logging
from typing import Any

from aws_lambda_powertools.utilities.parameters import SSMProvider
from aws_lambda_powertools.utilities.parameters.exceptions import GetParameterError

from stepwell.definition.errors import DefinitionError
from stepwell.definition.groups import parse_groups

log = logging.getLogger(__name__)

DEFAULT_MAX_AGE_S = 300
"""How long the groups are reused before the parameter is read again (a change shows within
this, in the waits that open after it)."""


class ParameterGroups:
    """Implements the Groups port over the SSM parameter ``name``: one GetParameter per
    container every ``max_age`` seconds, whatever number of waits open."""

    def __init__(self, name: str, client: Any = None, max_age: int = DEFAULT_MAX_AGE_S) -> None:
        self._name = name
        self._provider = SSMProvider(boto3_client=client)
        self._max_age = max_age
        self._parsed: tuple[str, dict[str, tuple[str, ...]]] | None = None

    def members(self, names: frozenset[str]) -> dict[str, tuple[str, ...] | None]:
        """The people of each of ``names``; None for a group the parameter does not define (or
        every group, when the parameter does not exist)."""
        try:
            text = self._provider.get(self._name, max_age=self._max_age)
        except GetParameterError as exc:
            if "ParameterNotFound" not in str(exc):
                raise  # a fault: the event is decided again when it is sent again
            log.error("the groups parameter %s does not exist: no group is defined", self._name)
            text = ""
        text = text if isinstance(text, str) else ""
        if self._parsed is None or self._parsed[0] != text:
            try:
                parsed = parse_groups(text, f"SSM parameter {self._name}")
            except DefinitionError as exc:
                # A broken file defines no group: the waits that name one fail, saying which.
                log.error("the groups parameter %s cannot be read: %s", self._name, exc)
                parsed = {}
            self._parsed = (text, parsed)
        groups = self._parsed[1]
        return {name: groups.get(name) for name in names}

    def forget(self) -> None:
        """Read the parameter again at the next wait (the local stack, when groups.yaml changed)."""
        self._provider.clear_cache()  # type: ignore[no-untyped-call]
