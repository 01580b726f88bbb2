"""``stepwell asl import FILE``: the YAML it writes loads and validates, what stays ASL is named
per state, and an existing file is kept unless --force."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stepwell.cli.main import main
from stepwell.definition.loader import load_workflow
from stepwell.definition.models import DelayStep, TaskStep

ROOT = Path(__file__).resolve().parents[2]

SHOP: dict[str, Any] = {
    "Comment": "Validate, reserve every line, cool off, charge.",
    "StartAt": "Validate",
    "States": {
        "Validate": {
            "Type": "Task",
            "Resource": "ValidateOrderFunction",
            "ResultPath": "$.summary",
            "Next": "Reserve",
        },
        "Reserve": {
            "Type": "Map",
            "ItemsPath": "$.items",
            "ItemSelector": {"order_id.$": "$.order_id", "sku.$": "$$.Map.Item.Value.sku"},
            "MaxConcurrency": 5,
            "ItemProcessor": {
                "StartAt": "ReserveItem",
                "States": {
                    "ReserveItem": {"Type": "Task", "Resource": "ReserveItemFunction", "End": True}
                },
            },
            "ResultPath": "$.reservations",
            "Next": "Cool off",
        },
        "Cool off": {"Type": "Wait", "Seconds": 3600, "Next": "Charge"},
        "Charge": {
            "Type": "Task",
            "Resource": "ChargeCardFunction",
            "Parameters": {"order_id.$": "$.order_id", "amount.$": "$.summary.total"},
            "Retry": [{"ErrorEquals": ["PaymentDeclinedTemporarily"], "MaxAttempts": 3}],
            "TimeoutSeconds": 30,
            "ResultPath": "$.charge",
            "Next": "Done",
        },
        "Done": {"Type": "Succeed", "OutputPath": "$.charge"},
    },
}


def shop(folder: Path) -> Path:
    path = folder / "shop.asl.json"
    path.write_text(json.dumps(SHOP, indent=2), encoding="utf-8")
    return path


def stepwell(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["asl", "import", *argv])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_the_order_machine_says_which_states_stay_asl_and_writes_nothing(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    code, out, err = stepwell(capsys, "statemachines/order-machine.asl.json")
    assert code == 1
    file = "statemachines/order-machine.asl.json"
    lines = out.splitlines()
    assert [re.sub(r": (a|the) .*", "", line) for line in lines[:6]] == [
        f"{file}:33:5: state 'Large order?'",
        f"{file}:46:7: state 'Ask finance'",
        f"{file}:73:5: state 'Approved?'",
        f"{file}:119:5: state 'Payment failed'",
        f"{file}:124:5: state 'Not approved'",
        f"{file}:147:5: state 'Delivered?'",
    ]
    assert "a Choice: Stepwell YAML skips steps" in lines[0]
    assert "a task token (.waitForTaskToken)" in lines[1]
    assert "a Fail state" in lines[3]
    assert "a Choice loop: Stepwell YAML is a DAG" in lines[5]
    assert lines[6] == (
        f"{file}: the other states have YAML equivalents: Validate, Reserve, ReserveItem, "
        "Cool off, Charge, Ship, Track parcel, Wait for carrier, Done"
    )
    assert lines[7] == (
        f"{file}: nothing was written; the machine runs as it is on Stepwell without "
        "converting (stepwell run order-machine)"
    )
    assert err == ""
    assert not (ROOT / "statemachines" / "order-machine.yaml").exists()


def test_a_convertible_machine_is_written_beside_it_and_validates(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = shop(tmp_path)
    code, out, err = stepwell(capsys, str(machine))
    assert code == 0, out + err
    written = tmp_path / "shop.yaml"
    lines = out.splitlines()
    assert lines[0] == f"wrote {written}: workflow 'shop'"
    assert re.fullmatch(
        rf"6 states of {re.escape(str(machine))} as 4 steps, validated \(version [0-9a-f]{{16}}\)",
        lines[1],
    )
    assert "names the same workflow: remove it" in lines[2]
    workflow = load_workflow(written)  # Stepwell's own loader and validation
    assert list(workflow.steps) == ["validate", "reserve", "cool_off", "charge"]
    reserve, cool_off, charge = (workflow.steps[k] for k in ("reserve", "cool_off", "charge"))
    assert isinstance(reserve, TaskStep) and reserve.for_each == "${input.items}"
    assert reserve.max_parallel == 5
    assert isinstance(cool_off, DelayStep) and cool_off.duration is not None
    assert cool_off.duration.total_seconds() == 3600
    assert isinstance(charge, TaskStep) and charge.retry is not None
    assert charge.retry.max_attempts == 4
    assert charge.input == {
        "order_id": "${input.order_id}",
        "amount": "${steps.validate.output.total}",
    }
    assert workflow.output == "${steps.charge.output}"
    # The functions it names are the project's: `stepwell validate` finds them in template.yaml.
    assert main(["validate", str(written), "--template", str(ROOT / "template.yaml")]) == 0
    assert capsys.readouterr().out.startswith(f"{written}: shop ok (4 steps")


def test_an_existing_file_is_kept_unless_force(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    machine = shop(tmp_path)
    written = tmp_path / "shop.yaml"
    written.write_text("name: mine\n", encoding="utf-8")
    code, out, err = stepwell(capsys, str(machine))
    assert code == 1
    assert out == ""
    assert err == (
        f"stepwell asl import: {written} exists; pass --force to overwrite it, or --output "
        "another file\n"
    )
    assert written.read_text(encoding="utf-8") == "name: mine\n"
    code, _, _ = stepwell(capsys, str(machine), "--force")
    assert code == 0
    assert load_workflow(written).name == "shop"


def test_output_dash_prints_the_yaml_alone_on_standard_output(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code, out, err = stepwell(capsys, str(shop(tmp_path)), "--output", "-")
    assert code == 0
    assert out.startswith("# Converted from shop.asl.json by `stepwell asl import`.\nname: shop\n")
    assert "  cool_off:\n    type: delay\n    depends_on: reserve\n    duration: 1h\n" in out
    assert "validated" in err
    assert not (tmp_path / "shop.yaml").exists()
    other = tmp_path / "other.yaml"
    assert stepwell(capsys, str(shop(tmp_path)), "-o", str(other))[0] == 0
    assert load_workflow(other).name == "shop"


def test_a_broken_machine_gets_the_located_problems_of_validate(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.asl.json"
    broken.write_text(
        '{"StartAt": "A", "States": {"A": {"Type": "Task", "Resource": "F", "Nxt": "B"}}}\n',
        encoding="utf-8",
    )
    code, out, err = stepwell(capsys, str(broken))
    assert code == 1
    assert f"{broken}:1:" in out and "unknown field 'Nxt'" in out
    assert "fix the machine first" in err
    assert "Traceback" not in out + err
    plain = tmp_path / "flow.yaml"
    plain.write_text("name: flow\nsteps: {a: {function: F}}\n", encoding="utf-8")
    code, _, err = stepwell(capsys, str(plain))
    assert code == 2
    assert "is not a Step Functions machine" in err
    code, _, err = stepwell(capsys, str(tmp_path / "missing.asl.json"))
    assert (code, err) == (
        2,
        f"stepwell asl import: no such file: {tmp_path / 'missing.asl.json'}\n",
    )
