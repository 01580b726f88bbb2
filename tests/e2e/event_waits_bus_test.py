"""The stack's EventWaitsBus: event waits listen on the bus it names (here the account's
default bus) and POST /events puts events there; events on the engine's own bus do not reach
them. A module of its own: its stack cannot run beside another in one process."""

from __future__ import annotations

import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import finished, steps_of
from events_from_the_bus_test import settle, waiting

from stepwell.local.client import Client


def test_event_waits_listen_on_the_bus_the_stack_names(
    tmp_path_factory: pytest.TempPathFactory,
) -> None:
    """EventWaitsBus=default: event waits take the account's default bus's events, and POST
    /events puts them there (not on the engine's own bus)."""
    folder = workflows_folder(tmp_path_factory.mktemp("wf"))
    params = {"EventWaitsBus": "default"}
    with local_stack(folder, hold_waits=True, parameters=params) as other:
        api = Client(other.url)
        run_id = api.start_run("await-payment", {"order_id": "o-default"}).body["run_id"]
        waiting(api, run_id)
        settle("o-default")  # on the engine's own bus: not the one waits listen on
        assert other.wait_idle(30)
        assert steps_of(api.run(run_id))["settled"]["status"] == "waiting"
        body = {
            "source": "payments",
            "detail_type": "payment.settled",
            "detail": {"order_id": "o-default", "amount": 5},
        }
        assert api.request("POST", "/events", json_body=body).status == 202
        assert finished(other, api, run_id)["run"]["status"] == "succeeded"
