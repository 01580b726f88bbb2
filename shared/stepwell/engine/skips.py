"""What skipping a step skips besides it: the steps after it whose trigger rules a skipped
dependency rules out, and theirs in turn (a preview for the person about to skip).

A step skipped without an output ends ``skipped``; each step after it is then skipped as its
trigger rule says (``all_success``, the default: any skipped dependency skips it), and a step
that handles its failure (``catch ... then``) is skipped too, since no failure happened. Skipped
*with* an output, the step counts as succeeded and what follows runs.
"""

from __future__ import annotations

from collections.abc import Mapping

from stepwell.definition.models import Workflow
from stepwell.engine.core import driver_of
from stepwell.engine.state import StepState, parse_key


def skipped_with(definition: Workflow, key: str, records: Mapping[str, StepState]) -> list[str]:
    """The steps (definition order) that skipping ``key`` without an output skips too, given
    the run's ``records`` of its steps (a step with no record has not started). A for_each
    child's skip is counted on its fan-out and skips nothing else; a code-first run's code
    decides what follows, so nothing is known to be skipped ahead."""
    step_id, index = parse_key(key)
    driver = driver_of(definition)
    if index is not None or not driver.skips_ahead or not driver.knows(definition, step_id):
        return []
    skipped = {step_id}
    changed = True
    while changed:
        changed = False
        for candidate in definition.steps:
            if candidate in skipped or not _open(records.get(candidate)):
                continue
            if _skipped_by(definition, candidate, skipped, records):
                skipped.add(candidate)
                changed = True
    return [s for s in definition.steps if s in skipped and s != step_id]


def _open(record: StepState | None) -> bool:
    """A step that has not begun: its dependencies' ends still decide whether it runs."""
    return record is None or record.status == "pending"


def _skipped_by(
    definition: Workflow, step_id: str, skipped: set[str], records: Mapping[str, StepState]
) -> bool:
    upstream = definition.upstream[step_id]
    if not skipped & set(upstream):
        return False
    if any(step_id in definition.handlers.get(dep, {}) for dep in skipped & set(upstream)):
        return True  # it handles a failure that will not happen
    rule = definition.steps[step_id].trigger_rule
    if rule == "all_success":
        return True
    if rule == "one_failed":
        return not any(
            (found := records.get(dep)) is not None and found.status == "failed" for dep in upstream
        )
    return False  # none_failed and all_done run after a skipped dependency
