"""The engine's table of step kinds: every step type a definition or a code-first run may hold
has a kind, and which kinds wait is asked of the kind alone."""

from __future__ import annotations

import typing

from stepwell.code.protocol import ISSUED_KINDS, POLL, step_type
from stepwell.definition.models import CodeStep, Step
from stepwell.engine.core import KINDS


def _types() -> set[str]:
    members = typing.get_args(typing.get_args(Step)[0])
    return {typing.get_args(member.model_fields["type"].annotation)[0] for member in members}


def test_every_step_type_has_a_kind() -> None:
    types = _types() | {step_type(kind) for kind in ISSUED_KINDS} | {POLL, "code"}
    assert types - set(KINDS) == set()
    assert CodeStep().type in KINDS


def test_the_kinds_that_wait() -> None:
    waiting = {name for name, kind in KINDS.items() if kind.waits}
    assert waiting == {"approval", "input", "delay", "callback", "workflow", "event"}


def test_only_a_condition_is_decided_as_it_starts() -> None:
    assert {name for name, kind in KINDS.items() if kind.inline} == {"condition"}
