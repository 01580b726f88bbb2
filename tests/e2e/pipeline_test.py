"""The data-pipeline example (parallel steps, a sub-workflow, an http step) by HTTP only."""

from __future__ import annotations

from e2e_helpers import finished, steps_of

from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


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
