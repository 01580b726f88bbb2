"""``stepwell dev --virtual-time``: idle waits are skipped, but the clock never jumps over an
open approval on its own; ``/_local/time`` (``stepwell time``) moves it on request."""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import datetime, timedelta

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import ORDER, approval_requested, finished, steps_of

from stepwell.cli import main as cli
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


@pytest.fixture(scope="module")
def held(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    with local_stack(folder, hold_waits=True) as started:
        yield started


def test_an_open_approval_holds_virtual_time_until_it_is_advanced(
    held: LocalStack, capsys: pytest.CaptureFixture[str]
) -> None:
    api = Client(held.url)
    run_id = api.start_run("order-fulfilment", {**ORDER, "order_id": "o-held"}).body["run_id"]
    approval_requested(held, run_id)
    assert held.wait_idle(10)
    time.sleep(0.5)  # idle: without the hold, the clock would jump to the 2-day timeout now
    assert steps_of(api.run(run_id))["approve"]["status"] == "waiting"
    assert cli.main(["time", "--api", held.url]) == 0
    assert "held at open approvals" in capsys.readouterr().out
    assert cli.main(["time", "advance", "49h", "--api", held.url]) == 0  # past its 2-day timeout
    detail = finished(held, api, run_id)
    assert detail["run"]["status"] == "failed"  # on_timeout: reject
    assert detail["run"]["error"]["type"] == "ApprovalRejected"


def test_time_never_jumps_to_just_before_an_open_wait_s_expiry(held: LocalStack) -> None:
    """A jump to a timer a minute before an approval expires (an earlier wait's, decided and
    left behind) would let the clock run into the expiry before anyone could answer."""
    api = Client(held.url)
    run_id = api.start_run("order-fulfilment", {**ORDER, "order_id": "o-margin"}).body["run_id"]
    approval_requested(held, run_id)
    due = datetime.fromisoformat(steps_of(api.run(run_id))["approve"]["due_at"])
    assert held._waits_before(due)
    assert held._waits_before(due - timedelta(minutes=1))
    assert not held._waits_before(due - timedelta(hours=1))
    api.post(f"/runs/{run_id}/cancel")


def test_a_bad_duration_and_an_unknown_local_route_are_4xx(held: LocalStack) -> None:
    api = Client(held.url)
    bad = api.request("POST", "/_local/time/advance", json_body={"by": "soon"})
    assert bad.status == 422 and "2h" in bad.body["message"]
    assert api.request("GET", "/_local/nothing").status == 404


def test_resume_lets_virtual_time_skip_waits_again(held: LocalStack) -> None:
    api = Client(held.url)
    assert cli.main(["time", "resume", "--api", held.url]) == 0
    run_id = api.start_run("order-fulfilment", {**ORDER, "order_id": "o-resumed"}).body["run_id"]
    detail = finished(held, api, run_id)  # the approval times out at once, as stepwell run's
    assert detail["run"]["error"]["type"] == "ApprovalRejected"
    held.hold_waits = True
