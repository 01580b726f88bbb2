"""The data-pipeline example (parallel steps, a sub-workflow, an http step) by HTTP only."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


@pytest.fixture(scope="module")
def stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LocalStack]:
    """The stack lets http steps reach loopback (its own API), as a team allows an internal
    service with the HttpAllowHosts parameter."""
    folder = workflows_folder(tmp_path_factory.mktemp("workflows"))
    with local_stack(folder, parameters={"HttpAllowHosts": "127.0.0.1"}) as started:
        yield started


def test_the_pipeline_hands_its_rows_to_a_child_run(stack: LocalStack, api: Client) -> None:
    started = api.start_run("data-pipeline", {"source": "s3://example-data/daily/"})
    assert started.status == 201, started.text
    detail = finished(stack, api, started.body["run_id"])
    assert detail["run"]["status"] == "succeeded", detail["run"]
    steps = steps_of(detail)
    assert {
        k: steps[k]["status"] for k in ("extract", "clean", "enrich", "has_rows")
    } == dict.fromkeys(("extract", "clean", "enrich", "has_rows"), "succeeded")
    assert steps["tell_webhook"]["status"] == "skipped"  # no webhook in the input
    child_id = steps["publish"]["child_run_id"]
    child = api.run(child_id)
    assert child["run"]["workflow"] == "publish-report"
    assert child["run"]["status"] == "succeeded"
    assert child["run"]["parent_run_id"] == detail["run"]["id"]
    assert child["run"]["input"]["rows"] == steps["clean"]["output"]["count"]
    assert steps["publish"]["output"]["report_id"] == child["run"]["output"]["report_id"]


def test_the_http_step_reaches_the_local_api(stack: LocalStack, api: Client) -> None:
    # The webhook is the local API itself: the runner's http step sends its POST over HTTP.
    # The start-run route takes {"input": ...}, so it answers 422 to the pipeline's body; a 4xx
    # is an answer, and the workflow decides what it means (here: nothing), so the run succeeds.
    webhook = f"{stack.url}/workflows/publish-report/runs"
    started = api.start_run(
        "data-pipeline", {"source": "s3://example-data/hourly/", "webhook": webhook}
    )
    detail = finished(stack, api, started.body["run_id"])
    assert detail["run"]["status"] == "succeeded", detail["run"]
    told = steps_of(detail)["tell_webhook"]
    assert told["status"] == "succeeded"
    assert told["output"]["status"] == 422
    assert "input" in told["output"]["body"]["message"] or told["output"]["body"]["error"]


def test_an_http_step_is_refused_the_instance_metadata_address(
    stack: LocalStack, api: Client
) -> None:
    # Whoever starts a run chooses the webhook: the runner does not go where it may not.
    webhook = "http://169.254.169.254/latest/meta-data/iam/security-credentials/"
    started = api.start_run("data-pipeline", {"source": "s3://example/", "webhook": webhook})
    detail = finished(stack, api, started.body["run_id"])
    told = steps_of(detail)["tell_webhook"]
    assert told["status"] == "failed"
    assert told["error"]["type"] == "HttpAddressRefused"
    assert told["attempt"] == 1  # not retried: retrying cannot make the address public
    assert "169.254.169.254 is a link-local address" in told["error"]["message"]
    assert "allow_hosts" in told["error"]["message"]
