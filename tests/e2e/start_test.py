"""``stepwell start`` against a running local stack, as against a deployed one: over HTTP,
from a process of its own (as from another terminal)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from stepwell.cli.main import main
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "statemachines" / "examples"


def stepwell(*argv: str) -> tuple[int, str, str]:
    env = {k: v for k, v in os.environ.items() if k != "STEPWELL_API"}
    done = subprocess.run(
        [sys.executable, "-m", "stepwell.cli.main", *argv],
        capture_output=True,
        check=False,
        text=True,
        env=env,
        timeout=120,
    )
    return done.returncode, done.stdout, done.stderr


def test_start_and_wait_prints_the_ended_run(
    stack: LocalStack,
) -> None:
    code, out, err = stepwell(
        *("start", "publish-report", "--input", f"@{EXAMPLES / 'publish-report.json'}"),
        *("--api", stack.url, "--wait", "--interval", "0.1", "--json"),
    )
    assert code == 0, err
    detail = json.loads(out)  # stdout holds the JSON alone
    assert detail["run"]["status"] == "succeeded"
    assert detail["run"]["output"]["report_id"].startswith("rep-")
    assert [step["key"] for step in detail["steps"]] == ["render"]


def test_a_started_run_is_listed_like_any_other(stack: LocalStack, api: Client) -> None:
    code, out, err = stepwell(
        *("start", "order-fulfilment", "--input", f"@{EXAMPLES / 'order-fulfilment.json'}"),
        *("--label", "team=shop", "--api", stack.url),
    )
    assert code == 0, err
    first, hint = out.splitlines()
    run_id = first.removeprefix("started order-fulfilment run ")
    assert hint == f"follow it: stepwell show {run_id} --follow --api {stack.url}"
    detail = api.run(run_id)
    assert detail["run"]["labels"] == {"team": "shop"}
    # The dashboard and `stepwell runs` read the same listing.
    code, out, _ = stepwell("runs", "--workflow", "order-fulfilment", "--api", stack.url)
    assert code == 0 and run_id in out


def test_the_same_idempotency_key_finds_the_same_run(
    stack: LocalStack,
) -> None:
    argv = (
        *("start", "publish-report", "--input", '{"rows": 1}', "--api", stack.url),
        *("--idempotency-key", "report-2024-06-01", "--json"),
    )
    code, out, err = stepwell(*argv)
    assert code == 0, err
    first = json.loads(out)["run_id"]
    code, out, err = stepwell(*argv)
    assert code == 0, err
    assert json.loads(out)["run_id"] == first


@pytest.mark.parametrize(
    ("argv", "messages"),
    [
        (["no-such-workflow"], ["stepwell start: no workflow named 'no-such-workflow' (404)"]),
        (
            ["publish-report", "--input", '{"rows": -1}'],
            ["input_schema", "  /rows: -1 is less than the minimum of 0"],
        ),
    ],
)
def test_a_start_the_api_refuses_says_why_and_exits_2(
    stack: LocalStack, argv: list[str], messages: list[str]
) -> None:
    code, out, err = stepwell("start", *argv, "--api", stack.url)
    assert code == 2
    assert out == ""
    for message in messages:
        assert message in err
    assert "Traceback" not in err


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["--input", "{nope"], "stepwell start: --input is not JSON"),
        (["--input", "@/no/such.json"], "cannot read /no/such.json"),
        (["--label", "team"], "--label 'team': write KEY=VALUE"),
    ],
)
def test_bad_arguments_exit_2_before_any_request(
    capsys: pytest.CaptureFixture[str], argv: list[str], message: str
) -> None:
    # Port 9 (discard) answers nothing: the command must not get that far.
    assert main(["start", "publish-report", *argv, "--api", "http://127.0.0.1:9"]) == 2
    captured = capsys.readouterr()
    assert captured.out == "" and message in captured.err


def test_show_lists_a_code_first_runs_steps_in_the_order_it_reached_them(
    stack: LocalStack,
) -> None:
    code, out, err = stepwell(
        *("start", "checkout-code", "--input", f"@{EXAMPLES / 'checkout-code.json'}"),
        *("--api", stack.url, "--wait", "--interval", "0.1", "--json"),
    )
    assert code == 0, err
    detail = json.loads(out)
    reached = ["$workflow", *(f"reserve.{i}.reserve" for i in range(3)), "charge", "confirm"]
    assert [step["key"] for step in detail["steps"]] == reached  # not alphabetical
    code, out, err = stepwell("show", detail["run"]["id"], "--api", stack.url)
    assert code == 0, err
    rows = out.split("\nSTEP ", 1)[1].split("\n\n", 1)[0].splitlines()[1:]
    # The replay ($workflow) is Stepwell's machinery: no row of the summary.
    assert [row.split()[0] for row in rows] == reached[1:]


def test_a_workflow_is_described_with_its_example_input(api: Client) -> None:
    reply = api.get("/workflows/checkout")
    assert reply.status == 200
    example = json.loads((EXAMPLES / "checkout.json").read_text())
    assert reply.body["example_input"] == example
