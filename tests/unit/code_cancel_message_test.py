"""How a cancelled code-first run says its code ended: letting `RunCancelled` through is the
ordinary way to be cancelled, not a failure of the code."""

from __future__ import annotations

from typing import Any

import pytest

from stepwell.code.errors import RunCancelled
from stepwell.code.workflow import workflow
from stepwell.definition.models import Workflow
from stepwell.engine.events import CancelRequested
from stepwell.local.inprocess import InProcessWorld


def _let_through(ctx: Any) -> Any:
    ctx.sleep("wait", "1d")


def _return(ctx: Any) -> Any:
    try:
        ctx.sleep("wait", "1d")
    except RunCancelled:
        return {"stopped": True}


def _fail(ctx: Any) -> Any:
    try:
        ctx.sleep("wait", "1d")
    except RunCancelled as exc:
        raise ValueError("could not tidy up") from exc


@pytest.mark.parametrize(
    ("code", "how"),
    [
        (_let_through, "stop; its code stopped at the cancel"),
        (_return, "stop; its code ended after the cancel"),
        (_fail, "stop; its code failed after the cancel (ValueError: could not tidy up)"),
    ],
)
def test_a_cancelled_run_says_how_its_code_took_the_cancel(code: Any, how: str) -> None:
    job = workflow(name="job")(lambda ctx, _: code(ctx))
    definition = Workflow(name="job", steps={}, code="j.py:job", code_version="1")
    play = InProcessWorld({"job": definition}, {}, code={"job": job})
    run_id = play.start("job", None)
    play.run_until_idle(virtual_time=False)
    play.send(run_id, CancelRequested("stop"))
    play.run_until_idle()
    run = play.store.get_run(run_id)
    assert run is not None and run.status == "cancelled", run
    assert run.error == {"type": "Cancelled", "message": how}
