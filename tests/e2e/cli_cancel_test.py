"""`stepwell cancel` of a run that winds down first (a code-first run's code is told and may
clean up; a saga's compensations run) says the cancel was asked and how to follow it, not
only the status the run still has."""

from __future__ import annotations

import pytest
from e2e_helpers import approval_requested, finished

from stepwell.cli.main import main
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack

RELEASE = {"service": "checkout", "ref": "v9.9", "approver": "lead@example.com"}


def test_a_cancel_that_winds_down_says_how_to_follow_it(
    stack: LocalStack, api: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with stack.hold():
        run_id = api.start_run("release", RELEASE).body["run_id"]
        approval_requested(stack, run_id)
        assert main(["cancel", run_id, "--api", stack.url]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if line.startswith(run_id)]
    assert said == [
        f"{run_id}: cancel requested; the run is running while it winds down (its code is "
        "told, its compensations run), then ends cancelled: follow it with "
        f"stepwell show {run_id} --follow"
    ]
    assert finished(stack, api, run_id)["run"]["status"] == "cancelled"
