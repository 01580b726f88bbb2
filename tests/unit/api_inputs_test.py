"""Form links of input steps through the API's route: the form page, the schema's check (a 422
naming every problem, nothing recorded), the answer as the step's output, a link used once."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

import pytest

from helpers.apigw import ApiWorld, api_workflows
from stepwell.definition.models import Workflow
from stepwell.store.memory import MemoryStore

JSON = {"accept": "application/json"}
BROWSER = {"accept": "text/html,application/xhtml+xml,*/*;q=0.8"}
SHIPPING = Workflow.model_validate(
    {
        "name": "shipping",
        "steps": {
            "details": {
                "type": "input",
                "message": "Shipping details for order ${input.order_id}",
                "assignees": ["ops@example.com", "lead@example.com"],
                "form": {
                    "type": "object",
                    "required": ["carrier", "boxes"],
                    "properties": {
                        "carrier": {"type": "string", "enum": ["ups", "dhl"]},
                        "boxes": {"type": "integer", "minimum": 1},
                        "fragile": {"type": "boolean"},
                        "note": {"type": "string", "maxLength": 20},
                    },
                    "additionalProperties": False,
                },
                "timeout": "2d",
            },
            "ship": {"function": "ShipFunction", "input": "${steps.details.output}"},
        },
    }
)


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), {**api_workflows(), "shipping": SHIPPING})
    yield api
    api.close()


def form_links(world: ApiWorld, run_id: str) -> dict[str, str]:
    requests = [d for d in world.bus("input.requested") if d["run_id"] == run_id]
    assert requests, "no input requested"
    return {
        link["assignee"]: urlsplit(link["form_url"]).path.rsplit("/", 1)[-1]
        for link in requests[-1]["links"]
    }


def waiting(world: ApiWorld) -> tuple[str, dict[str, str]]:
    run_id = world.start("shipping", {"order_id": "O-9"})
    return run_id, form_links(world, run_id)


def still_waiting(world: ApiWorld, run_id: str) -> None:
    step = world.step(run_id, "details")
    assert step.status == "waiting" and step.decisions == [] and step.output is None


def test_the_request_carries_one_form_link_per_assignee_and_the_schema(world: ApiWorld) -> None:
    run_id, links = waiting(world)
    assert set(links) == {"ops@example.com", "lead@example.com"}
    request = world.bus("input.requested")[-1]
    assert request["message"] == "Shipping details for order O-9"
    assert request["form"] == SHIPPING.steps["details"].form  # type: ignore[union-attr]
    assert world.bus("approval.requested") == []
    assert world.step(run_id, "details").waiting_for == "input"


def test_the_form_page_renders_the_schema_and_never_answers(world: ApiWorld) -> None:
    run_id, links = waiting(world)
    for _ in range(2):  # a mail scanner, then the person
        page = world.get(f"/inputs/{links['ops@example.com']}", headers=BROWSER)
        assert page.status == 200 and page.content_type.startswith("text/html")
    text = page.text
    assert "Shipping details for order O-9" in text and "ops@example.com" in text
    assert '<select id="f-carrier" name="carrier">' in text and 'value="&quot;ups&quot;"' in text
    assert 'type="number" step="1" min="1" id="f-boxes"' in text
    assert 'type="checkbox" id="f-fragile"' in text and 'maxlength="20"' in text
    assert "novalidate" in text and "<script" not in text
    assert "default-src 'none'" in page.headers["Content-Security-Policy"]
    assert page.headers["Referrer-Policy"] == "no-referrer"
    still_waiting(world, run_id)
    view = world.get(f"/inputs/{links['ops@example.com']}", headers=JSON).json()
    assert view["form"]["required"] == ["carrier", "boxes"]
    assert view["assignee"] == "ops@example.com" and view["step"] == "details"


def test_an_answer_that_breaks_the_schema_is_422_naming_every_problem(world: ApiWorld) -> None:
    run_id, links = waiting(world)
    token = links["ops@example.com"]
    bad = {"carrier": "fedex", "boxes": 0, "note": "x" * 21, "colour": "red"}
    response = world.post(f"/inputs/{token}", bad, headers=JSON)
    assert response.status == 422, response.text
    problems = {(p["path"], p["rule"]) for p in response.json()["details"]}
    assert problems == {
        ("/", "additionalProperties"),
        ("/boxes", "minimum"),
        ("/carrier", "enum"),
        ("/note", "maxLength"),
    }
    still_waiting(world, run_id)
    missing = world.post(f"/inputs/{token}", {}, headers=JSON)
    assert missing.status == 422
    assert len(missing.json()["details"]) == 2  # carrier and boxes, both named
    json_type = {**JSON, "content-type": "application/json"}
    not_json = world.post(f"/inputs/{token}", "{nope", headers=json_type)
    assert not_json.status == 422
    still_waiting(world, run_id)
    good = {"carrier": "ups", "boxes": 2}
    assert world.post(f"/inputs/{token}", good, headers=JSON).status == 200


def test_a_valid_answer_is_the_steps_output_and_the_link_answers_once(world: ApiWorld) -> None:
    run_id, links = waiting(world)
    token = links["lead@example.com"]
    answer = {"carrier": "dhl", "boxes": 3, "fragile": True}
    response = world.post(f"/inputs/{token}", answer, headers=JSON)
    assert response.status == 200, response.text
    assert response.json()["person"] == "lead@example.com"
    step = world.step(run_id, "details")
    assert step.status == "succeeded" and step.output == answer
    assert world.attempt(run_id, "ship").attempt == 1  # the run went on
    again = world.post(f"/inputs/{token}", answer, headers=JSON)
    assert again.status == 409
    other = world.post(f"/inputs/{links['ops@example.com']}", answer, headers=JSON)
    assert other.status == 409  # the form is answered: the other assignee's link is spent too
    assert world.get(f"/inputs/{token}", headers=JSON).status == 409
    types = [e.type for e in world.timeline(run_id) if e.step == "details"]
    assert "step_answered" in types and "step_completed" in types


def test_the_form_posted_by_a_browser_is_typed_by_the_schema(world: ApiWorld) -> None:
    run_id, links = waiting(world)
    token = links["ops@example.com"]
    page = world.post(
        f"/inputs/{token}", form={"carrier": '"ups"', "boxes": "two"}, headers=BROWSER
    )
    assert page.status == 422 and page.content_type.startswith("text/html")
    assert "/boxes" in page.text
    assert "&#x27;two&#x27; is not of type &#x27;integer&#x27;" in page.text
    assert '<option value="&quot;ups&quot;" selected>' in page.text  # what was sent is kept
    still_waiting(world, run_id)
    done = world.post(
        f"/inputs/{token}",
        form={"carrier": '"ups"', "boxes": "4", "fragile": "true", "note": ""},
        headers=BROWSER,
    )
    assert done.status == 200, done.text
    assert world.step(run_id, "details").output == {"carrier": "ups", "boxes": 4, "fragile": True}


def test_a_form_link_is_no_approval_link_and_an_approval_link_no_form_link(
    world: ApiWorld,
) -> None:
    run_id, links = waiting(world)
    token = links["ops@example.com"]
    assert world.post(f"/approvals/{token}", form={}, headers=JSON).status == 403
    assert world.get(f"/approvals/{token}", headers=JSON).status == 403
    approval_run = world.start("approve-flow", {"order": "T-1"})
    world.succeed(approval_run, "prepare")
    approve = world.approval_tokens(approval_run, "approve")[0]["approve"]
    answer: Any = {"carrier": "ups", "boxes": 1}
    assert world.post(f"/inputs/{approve}", answer, headers=JSON).status == 403
    assert world.get(f"/inputs/{approve}", headers=JSON).status == 403
    still_waiting(world, run_id)
    assert world.step(approval_run, "approve").decisions == []
