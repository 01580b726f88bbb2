"""``stepwell callback URL``: answer a callback wait from the command line, with the URL the
``callback.requested`` event carries (``stepwell dev`` prints it)."""

from __future__ import annotations

import pytest
from e2e_helpers import callback_url, finished

from stepwell.cli import main as cli
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def test_a_success_completes_the_wait_with_its_output(
    stack: LocalStack, api: Client, capsys: pytest.CaptureFixture[str]
) -> None:
    with stack.hold():
        run_id = api.start_run("await-callback", {}).body["run_id"]
        url = callback_url(stack, run_id)
        assert cli.main(["callback", url, "--success", '{"ok": 1}']) == 0
    assert "delivered" in capsys.readouterr().out
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "succeeded"
    assert detail["run"]["output"] == {"wait": {"ok": 1}}
    assert cli.main(["callback", url, "--success", "{}"]) == 1  # a token answers once


def test_a_failure_fails_the_step_with_its_error_name(stack: LocalStack, api: Client) -> None:
    with stack.hold():
        run_id = api.start_run("await-callback", {}).body["run_id"]
        url = callback_url(stack, run_id)
        assert cli.main(["callback", url, "--failure", "ExportFailed: disk full"]) == 0
    detail = finished(stack, api, run_id)
    assert detail["run"]["status"] == "failed"
    assert detail["run"]["error"]["type"] == "ExportFailed"


def test_success_that_is_not_json_is_refused_before_sending(stack: LocalStack) -> None:
    assert cli.main(["callback", f"{stack.url}/callbacks/x", "--success", "{oops"]) == 2
