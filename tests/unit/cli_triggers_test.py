"""``stepwell triggers``: the SAM Events of the workflows' triggers, and template.yaml has them."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from stepwell.cli import triggers
from stepwell.cli.main import main
from stepwell.definition.catalog import load_definitions
from stepwell.definition.models import Workflow
from stepwell.store.tables import load_template

ROOT = Path(__file__).resolve().parents[2]
TEMPLATE = ROOT / "template.yaml"
STATEMACHINES = ROOT / "statemachines"


def workflows() -> list[Workflow]:
    return [workflow for workflow, _ in load_definitions([STATEMACHINES])]


def test_template_has_every_trigger_the_workflows_declare() -> None:
    wanted = triggers.triggers_of(workflows())
    assert wanted, "the examples declare triggers"
    missing = triggers.missing_from(load_template(TEMPLATE), wanted)
    assert not missing, (
        "template.yaml's TriggerFunction lacks triggers; add under its Events:\n"
        + triggers.events_yaml(missing)
    )


def test_a_missing_trigger_is_found() -> None:
    template = load_template(TEMPLATE)
    events = template["Resources"]["TriggerFunction"]["Properties"]["Events"]
    for name in list(events):
        less = copy.deepcopy(template)
        del less["Resources"]["TriggerFunction"]["Properties"]["Events"][name]
        missing = triggers.missing_from(less, triggers.triggers_of(workflows()))
        assert len(missing) == 1, name


@pytest.mark.parametrize(
    "change",
    [
        lambda e: e["Properties"]["Pattern"].update({"source": ["elsewhere"]}),
        lambda e: e["Properties"].update({"EventBusName": "default"}),
        lambda e: e["Properties"]["InputTransformer"].update({"InputTemplate": '{"event": 1}'}),
    ],
)
def test_a_rule_that_differs_does_not_count(change: Any) -> None:
    template = load_template(TEMPLATE)
    events = template["Resources"]["TriggerFunction"]["Properties"]["Events"]
    rule = next(e for e in events.values() if e["Type"] == "EventBridgeRule")
    change(rule)
    missing = triggers.missing_from(template, triggers.triggers_of(workflows()))
    assert [t.kind for t in missing] == ["EventBridgeRule"]


def test_a_schedule_with_other_input_does_not_count() -> None:
    template = load_template(TEMPLATE)
    events = template["Resources"]["TriggerFunction"]["Properties"]["Events"]
    schedule = next(e for e in events.values() if e["Type"] == "ScheduleV2")
    payload = json.loads(schedule["Properties"]["Input"])
    payload["input"] = {"source": "elsewhere"}
    schedule["Properties"]["Input"] = json.dumps(payload)
    missing = triggers.missing_from(template, triggers.triggers_of(workflows()))
    assert [t.kind for t in missing] == ["ScheduleV2"]


def test_the_printed_block_is_the_sam_events_of_the_triggers(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["triggers", str(STATEMACHINES)]) == 0
    printed = capsys.readouterr().out
    assert "EventBusName: !Ref EventBus" in printed
    pasted = tmp_path / "template.yaml"
    pasted.write_text(
        "Resources:\n  TriggerFunction:\n    Properties:\n      Events:\n"
        + "".join(f"        {line}\n" for line in printed.splitlines())
    )
    parsed = load_template(pasted)
    # What is printed is exactly what the check looks for.
    assert triggers.missing_from(parsed, triggers.triggers_of(workflows())) == []
    events = parsed["Resources"]["TriggerFunction"]["Properties"]["Events"]
    order = events["OrderFulfilmentEvent"]["Properties"]
    assert order["EventBusName"] == {"Ref": "EventBus"}
    assert order["InputTransformer"]["InputTemplate"] == (
        '{"workflow": "order-fulfilment", "event": <aws.events.event>}'
    )
    daily = events["DataPipelineSchedule"]["Properties"]
    assert json.loads(daily["Input"])["workflow"] == "data-pipeline"


def test_check_exits_1_and_prints_what_to_add(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["triggers", str(STATEMACHINES), "--check", str(TEMPLATE)]) == 0
    capsys.readouterr()
    extra = tmp_path / "nightly.yaml"
    extra.write_text(
        "name: nightly\n"
        "triggers:\n"
        "  schedules:\n"
        "    - {expression: rate(1 day), timezone: Europe/Paris, input: {full: true}}\n"
        "  events:\n"
        "    - {pattern: {source: [billing]}, bus: partners}\n"
        "steps:\n"
        "  work: {function: WorkFunction}\n"
    )
    code = main(["triggers", str(extra), "--check", str(TEMPLATE)])
    out = capsys.readouterr().out
    assert code == 1
    assert "NightlySchedule:" in out and "ScheduleExpressionTimezone: Europe/Paris" in out
    assert "NightlyEvent:" in out and "EventBusName: partners" in out


def test_a_folder_without_workflows_prints_a_note(tmp_path: Path, capsys: Any) -> None:
    (tmp_path / "plain.yaml").write_text("name: plain\nsteps:\n  work: {function: F}\n")
    assert main(["triggers", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("# no workflow declares a trigger")
