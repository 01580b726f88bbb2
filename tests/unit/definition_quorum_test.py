"""A quorum counts named people: without approvers it cannot be more than 1."""

from __future__ import annotations

import pytest

from stepwell.definition.errors import DefinitionError
from stepwell.definition.loader import load_text

BASE = """
name: q
steps:
  ask:
    type: approval
    quorum: 2
"""


def test_a_quorum_without_approvers_is_refused_with_the_fix() -> None:
    with pytest.raises(DefinitionError) as caught:
        load_text(BASE, "q.yaml")
    (problem,) = caught.value.problems
    assert "needs named approvers" in str(problem)
    assert str(problem).startswith("q.yaml:")


def test_a_quorum_with_enough_approvers_loads() -> None:
    workflow = load_text(BASE + "    approvers: [a@example.com, b@example.com]\n", "q.yaml")
    assert workflow.steps["ask"].quorum == 2
