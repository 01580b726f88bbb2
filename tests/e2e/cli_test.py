"""``stepwell run`` and ``stepwell dev``: the commands a person types, with their exit codes."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from stepwell.cli.main import main
from stepwell.local.client import Client

ROOT = Path(__file__).resolve().parents[2]
ORDER = ROOT / "statemachines" / "examples" / "order-fulfilment.json"


def stepwell(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(["run", *argv, "--project", str(ROOT)])
    captured = capsys.readouterr()
    return code, captured.out, captured.err


def test_run_approves_through_the_link_and_prints_the_run_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = stepwell(
        capsys,
        "order-fulfilment",
        "--input",
        f"@{ORDER}",
        "--virtual-time",
        "--auto-approve",
        "--json",
        "--timeline",
    )
    assert code == 0, err
    run = json.loads(out)  # stdout holds the JSON and nothing else
    assert run["status"] == "succeeded"
    assert run["output"]["total"] == 1255.0
    steps = run["steps"]
    assert steps["approve"]["status"] == "succeeded"
    assert steps["charge"] == {**steps["charge"], "status": "succeeded", "attempts": 2}
    assert steps["reserve"]["items"] == {"total": 3, "succeeded": 3, "failed": 0}
    assert steps["cool_off"]["status"] == "succeeded"
    assert "step_approved" in [entry["type"] for entry in run["timeline"]]
    assert re.search(r"approved approve as finance@example.com: POST http://127\.0\.0\.1", err)


def test_run_rejects_and_exits_1(capsys: pytest.CaptureFixture[str]) -> None:
    code, out, _ = stepwell(
        capsys,
        "order-fulfilment",
        "--input",
        f"@{ORDER}",
        "--virtual-time",
        "--reject",
        "approve",
        "--timeline",
    )
    assert code == 1
    assert "order-fulfilment: failed" in out
    assert "ApprovalRejected" in out
    assert "step_rejected" in out  # the timeline


def test_run_answers_a_step_functions_task_token_and_prints_the_run_as_json(
    capsys: pytest.CaptureFixture[str],
) -> None:
    # The Done-when command of the Step Functions machines: the token finance gets is answered.
    code, out, err = stepwell(
        capsys,
        "order-machine",
        "--input",
        f"@{ORDER}",
        "--virtual-time",
        "--answer",
        'Ask finance={"approved": true}',
        "--json",
    )
    assert code == 0, err
    run = json.loads(out)
    assert run["status"] == "succeeded", run["error"]
    assert run["output"]["amount"] == 1255.0
    assert run["steps"]["Ask finance token"]["status"] == "succeeded"
    assert run["steps"]["Cool off"]["status"] == "succeeded"  # approved: the Wait ran
    assert re.search(r"answered Ask finance token: POST http://127\.0\.0\.1", err)


def test_run_leaves_an_unanswered_task_token_to_its_timeout(
    capsys: pytest.CaptureFixture[str],
) -> None:
    code, out, err = stepwell(
        capsys, "order-machine", "--input", f"@{ORDER}", "--virtual-time", "--json"
    )
    assert code == 1
    run = json.loads(out)
    assert run["error"]["type"] == "OrderNotApproved"  # its Catch of States.Timeout
    assert "callback requested Ask finance token: POST http://" in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["order-fulfilment", "--input", "{not json"], "is not JSON"),
        (["order-fulfilment", "--input", "@/no/such/file.json"], "cannot read"),
        (["order-fulfilment", "--approve", "approve", "--reject", "approve"], "both"),
        (["no-such-workflow", "--input", "{}"], "no workflow named 'no-such-workflow'"),
        (["order-fulfilment", "--input", '{"order_id": "o-1"}'], "input_schema"),
        (["order-fulfilment", "--approve", "nope", "--input", "{}"], "has no step nope"),
        (["order-machine", "--answer", "Ask finance"], "give STEP=JSON"),
        (
            ["order-machine", "--answer", "Ask finance={nope"],
            "--answer Ask finance is not JSON",
        ),
    ],
)
def test_usage_and_input_errors_exit_2(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    code, _, err = stepwell(capsys, *argv)
    assert code == 2
    assert message in err


def test_dev_serves_until_interrupted(tmp_path: Path) -> None:
    kept = tmp_path / "state"
    process = subprocess.Popen(
        [
            *(sys.executable, "-m", "stepwell.cli.main", "dev", "--port", "0", "--no-schedules"),
            *("--state", str(kept)),
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env={**os.environ, "COLUMNS": "200"},
    )
    assert process.stdout is not None
    try:
        lines: list[str] = []
        for line in process.stdout:
            lines.append(line)
            if "Ctrl-C to stop" in line:
                break
        text = "".join(lines)
        url = re.search(r"API: (http://127\.0\.0\.1:\d+)", text)
        assert url, text
        # --port 0 took a free port: the banner tells the other commands which.
        assert f"CLI: export STEPWELL_API={url.group(1)}\n" in text
        assert not url.group(1).endswith(":0")
        assert "order-fulfilment" in text and "POST /workflows/{name}/runs" in text
        assert "order-machine (Step Functions machine, order-machine.asl.json)" in text
        assert "ARN of any account or partition runs the template's function" in text
        reply = Client(url.group(1)).get("/workflows")
        assert reply.status == 200
        assert "order-fulfilment" in {w["name"] for w in reply.body["workflows"]}
        process.send_signal(signal.SIGINT)
        rest, _ = process.communicate(timeout=30)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0
    assert f"state: {kept} (new" in text
    assert "stopping the local stack (saving its state" in rest
    assert (kept / "state.json").is_file()


RECEIPT_STEP = """
  receipt:
    type: input
    depends_on: approved
    message: Receipt details for ${input.employee}
    assignees: [clerk@example.com]
    form:
      type: object
      required: [number]
      properties:
        number: {type: string, minLength: 3}
    timeout: 1d
"""


@pytest.mark.parametrize(
    ("answer", "code", "said"),
    [
        ('{"number": "R-100"}', 0, r"answered receipt: POST http://127\.0\.0\.1"),
        ('{"number": "R1"}', 1, r"could not answer receipt: .* 422 .*/number: 'R1' is too short"),
    ],
)
def test_run_answers_an_input_form_through_its_link_which_checks_the_schema(
    capsys: pytest.CaptureFixture[str], tmp_path: Path, answer: str, code: int, said: str
) -> None:
    assert main(["init", str(tmp_path / "shop")]) == 0
    project = tmp_path / "shop"
    with (project / "statemachines" / "expense.yaml").open("a") as definition:
        definition.write(RECEIPT_STEP)
    capsys.readouterr()
    argv = ["expense", "--input", '{"employee": "ann", "amount": 5000}', "--auto-approve"]
    answered = [*argv, "--answer", f"receipt={answer}", "--virtual-time", "--json"]
    got = main(["run", *answered, "--project", str(project)])
    out, err = capsys.readouterr()
    assert got == code, err
    run = json.loads(out)
    assert re.search(said, err), err
    if code == 0:
        assert run["steps"]["receipt"]["output"] == {"number": "R-100"}
    else:  # a refused answer records nothing: the form waits on to its timeout
        assert run["error"]["type"] == "InputTimedOut"
