"""A machine's transition that names no state suggests the closest state, as a YAML
workflow's `depends_on` does: a typo'd state name is the usual cause."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from stepwell.asl.loader import load_asl_file
from stepwell.definition.errors import DefinitionError

MACHINE = {
    "StartAt": "Charge",
    "States": {
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "Catch": [{"ErrorEquals": ["States.ALL"], "Next": "Declind"}],
            "Next": "Shipp",
        },
        "Ship": {"Type": "Succeed"},
        "Declined": {"Type": "Fail", "Error": "Declined"},
    },
}


@pytest.mark.parametrize("language", ["JSONPath", "JSONata"])
def test_a_transition_to_a_typo_suggests_the_state_meant(tmp_path: Path, language: str) -> None:
    path = tmp_path / "charge.asl.json"
    path.write_text(json.dumps({**MACHINE, "QueryLanguage": language, "StartAt": "Chrage"}))
    with pytest.raises(DefinitionError) as caught:
        load_asl_file(path)
    messages = [p.message for p in caught.value.problems]
    assert "StartAt 'Chrage' names no state; did you mean 'Charge'?" in messages
    assert any(m.endswith("'Shipp' names no state; did you mean 'Ship'?") for m in messages)
    assert any(m.endswith("'Declind' names no state; did you mean 'Declined'?") for m in messages)
