"""Property tests of the API from its own /openapi.json (schemathesis): whatever a client sends,
no answer is a 5xx, and every answer is one the document describes (status, content type,
body schema, headers). Requests go in-process: a WSGI adapter turns each into an API Gateway
v2 event for the Lambda handler. Every generated case is sent twice: as generated, and with its
path pointing at things that exist (a run, a workflow, live tokens), to get past the 404s."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import schemathesis
from hypothesis import HealthCheck, settings
from schemathesis import checks

from helpers.apigw import ApiWorld, WsgiAdapter, api_workflows, load_handler
from stepwell.api.callbacks import callback_token
from stepwell.store.memory import MemoryStore

# Serving /openapi.json needs no runtime, so the schema loads at collection without a world.
schema = schemathesis.openapi.from_wsgi("/openapi.json", WsgiAdapter(load_handler()))
MAX_EXAMPLES = 20
CHECKS = [
    checks.not_a_server_error,
    checks.status_code_conformance,
    checks.content_type_conformance,
    checks.response_schema_conformance,
    checks.response_headers_conformance,
    checks.unsupported_method,
]


@pytest.fixture(scope="module")
def live() -> Iterator[dict[str, Any]]:
    """A world with a run waiting for approval, one waiting for a callback, and a failed one."""
    world = ApiWorld(MemoryStore(), api_workflows())
    approval = world.start("approve-flow", {"order": "S-1"})
    world.succeed(approval, "prepare")
    waiting = world.start("callback-flow")
    world.succeed(waiting, "prepare")
    failed = world.start("simple", {"n": 1})
    world.fail(failed, "work")
    expires = world.clock.now() + timedelta(days=1)
    tokens = [t["approve"] for t in world.approval_tokens(approval, "approve")]
    tokens.append(callback_token(world.keys, waiting, "wait", 1, expires))
    yield {
        "world": world,
        "run_ids": [approval, waiting, failed],
        "tokens": tokens,
        "steps": ["work", "approve", "wait", "prepare"],
    }
    world.close()


def pointed_at_live(case: Any, live: dict[str, Any], seed: int) -> dict[str, Any]:
    """The case's path parameters, replaced by things that exist."""
    found = dict(case.path_parameters or {})
    pick = lambda options: options[seed % len(options)]  # noqa: E731
    replacements = {
        "run_id": pick(live["run_ids"]),
        "name": pick(["simple", "approve-flow", "no-http"]),
        "token": pick(live["tokens"]),
        "step": pick(live["steps"]),
    }
    for key in found:
        if key in replacements:
            found[key] = replacements[key]
    return found


@schema.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_no_request_gets_a_server_error(case: Any, live: dict[str, Any]) -> None:
    live["world"].install()
    case.call_and_validate(checks=CHECKS)
    if case.path_parameters:
        case.path_parameters = pointed_at_live(case, live, len(str(case.body)))
        case.call_and_validate(checks=CHECKS)


negative = schemathesis.openapi.from_wsgi("/openapi.json", WsgiAdapter(load_handler()))
negative.config.generation.update(modes=[schemathesis.GenerationMode.NEGATIVE])


@negative.parametrize()
@settings(
    max_examples=MAX_EXAMPLES,
    deadline=None,
    suppress_health_check=list(HealthCheck),
    database=None,
)
def test_what_the_document_forbids_is_refused(case: Any, live: dict[str, Any]) -> None:
    """A request the document says is invalid gets a 4xx: the document is as strict as the
    API, so a client that checks its requests against it is never surprised."""
    live["world"].install()
    case.call_and_validate(checks=[checks.not_a_server_error, checks.negative_data_rejection])
