"""``stepwell dev`` keeps its state under ``.stepwell/``: a stack stopped in the middle of runs
and started again goes on with them. A waiting approval is decided with the link printed before
the restart, a timer that was due fires, and the rules and schedules made while it ran (a
published workflow's triggers) still deliver."""

from __future__ import annotations

import json
import socket
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from conftest import local_stack, workflows_folder
from e2e_helpers import (
    ECHO,
    ORDER,
    SMALL_ORDER,
    approval_requested,
    echo_template,
    echoes,
    finished,
    steps_of,
    wait_for_echoes,
)

from stepwell.local import state
from stepwell.local.client import Client
from stepwell.local.stack import LocalStack


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
    return port


def wait_for_status(stack: LocalStack, api: Client, run_id: str, step: str, status: str) -> None:
    assert stack.run_until(
        lambda: steps_of(api.run(run_id)).get(step, {}).get("status") == status, 30
    )


def test_runs_in_flight_go_on_after_a_restart(tmp_path: Path) -> None:
    folder = workflows_folder(tmp_path)
    kept, port = tmp_path / ".stepwell", free_port()

    with local_stack(folder, state_folder=kept, port=port, hold_waits=True) as first:
        api = Client(first.url)
        hold = first.hold()  # time stands still: the small order stops at its hour's cool-off
        small = api.start_run("order-fulfilment", SMALL_ORDER).body["run_id"]
        wait_for_status(first, api, small, "cool_off", "waiting")
        large = api.start_run("order-fulfilment", ORDER).body["run_id"]
        link = approval_requested(first, large)["links"][0]
        stopped_at = first.clock.now()
        # Stopped with the hold still on: the timer is due only after the restart.
    hold.release()
    saved = state.read(kept)
    assert saved is not None and saved.counts()["items"] > 0
    assert saved.invocations == []  # everything accepted had begun and ended before saving

    with local_stack(folder, state_folder=kept, port=port) as second:
        assert second.restored is not None
        assert second.clock.now() >= stopped_at  # virtual time goes on from where it stopped
        api = Client(second.url)
        assert steps_of(api.run(large))["approve"]["status"] == "waiting"
        decided = api.decide(link["approve_url"], "approve", "after the restart")
        assert decided.status == 200, decided.text
        assert finished(second, api, large)["run"]["status"] == "succeeded"
        detail = finished(second, api, small)  # its cool-off timer fired after the restart
        assert detail["run"]["status"] == "succeeded"
        assert steps_of(detail)["cool_off"]["status"] == "succeeded"


def test_invocations_accepted_and_not_begun_run_after_the_restart(tmp_path: Path) -> None:
    folder = workflows_folder(tmp_path)
    kept = tmp_path / ".stepwell"
    with local_stack(folder, state_folder=kept) as first:
        assert first.emulator is not None
        hold = first.hold()  # no timer fires before the stop
        first.emulator.freeze()  # as when the stack stops: nothing more begins
        run_id = Client(first.url).start_run("order-fulfilment", SMALL_ORDER).body["run_id"]
    hold.release()
    saved = state.read(kept)
    assert saved is not None and len(saved.invocations) == 1  # the dispatch of `validate`
    assert json.loads(saved.invocations[0]["payload"])["run_id"] == run_id

    with local_stack(folder, state_folder=kept) as second:
        api = Client(second.url)
        assert finished(second, api, run_id)["run"]["status"] == "succeeded"


def test_rules_and_schedules_made_at_run_time_outlive_a_restart(tmp_path: Path) -> None:
    folder, kept = workflows_folder(tmp_path), tmp_path / ".stepwell"
    template = echo_template(tmp_path / "template")
    bus = "stepwell-local-Stepwell-bus"
    trigger = '{"workflow": "order-fulfilment", "event": <aws.events.event.json>}'
    start = datetime(2026, 3, 2, tzinfo=UTC)  # Paris is UTC+1
    with local_stack(folder, template=template, start_time=start, state_folder=kept) as first:
        events = boto3.client("events")
        events.put_rule(Name="wf-orders", EventBusName=bus, EventPattern='{"source": ["shop"]}')
        events.put_targets(
            Rule="wf-orders",
            EventBusName=bus,
            Targets=[{"Id": "echo", "Arn": ECHO, "InputTransformer": {"InputTemplate": trigger}}],
        )
        boto3.client("scheduler").create_schedule(
            Name="wf-nightly",
            ScheduleExpression="cron(30 2 * * ? *)",
            ScheduleExpressionTimezone="Europe/Paris",
            FlexibleTimeWindow={"Mode": "OFF"},
            Target={
                "Arn": ECHO,
                "RoleArn": "arn:aws:iam::123456789012:role/scheduler",
                "Input": '{"time": "<aws.scheduler.scheduled-time>"}',
            },
        )
        assert echoes(first) == []
    saved = state.read(kept)
    assert saved is not None
    assert "wf-orders" in [r["name"] for r in saved.rules]
    assert "wf-nightly" in [s["name"] for s in saved.schedules]

    with local_stack(folder, template=template, start_time=start, state_folder=kept) as second:
        events = boto3.client("events")
        assert events.list_targets_by_rule(Rule="wf-orders", EventBusName=bus)["Targets"] == [
            {"Id": "echo", "Arn": ECHO, "InputTransformer": {"InputTemplate": trigger}}
        ]
        events.put_events(
            Entries=[{"EventBusName": bus, "Source": "shop", "DetailType": "x", "Detail": "{}"}]
        )
        (got,) = wait_for_echoes(second, 1)
        assert got["workflow"] == "order-fulfilment" and got["event"]["source"] == "shop"
        second.advance(to=datetime(2026, 3, 2, 1, 30, tzinfo=UTC))  # 02:30 in Paris
        assert wait_for_echoes(second, 2)[1] == {"time": "2026-03-02T01:30:00Z"}


def test_a_state_file_of_another_kind_is_refused_with_the_fix(tmp_path: Path) -> None:
    kept = tmp_path / ".stepwell"
    kept.mkdir()
    (kept / state.FILE).write_text('{"format": 99}')
    with pytest.raises(state.StateError, match="--fresh"):
        state.read(kept)
    (kept / state.FILE).write_text("{not json")
    with pytest.raises(state.StateError, match="cannot read"):
        state.read(kept)
    state.clear(kept)
    assert state.read(kept) is None


def test_a_running_stack_saves_as_it_goes(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A process killed without a stop loses at most the last seconds."""
    monkeypatch.setattr(LocalStack, "SAVE_EVERY_S", 0.2)
    folder = workflows_folder(tmp_path)
    kept = tmp_path / ".stepwell"
    with local_stack(folder, state_folder=kept) as running:
        run_id = Client(running.url).start_run("order-fulfilment", SMALL_ORDER).body["run_id"]

        def saved_with_the_run() -> bool:
            saved = state.read(kept)
            return saved is not None and any(
                item["pk"]["S"].endswith(run_id)
                for items in saved.tables.values()
                for item in items
            )

        assert running.run_until(saved_with_the_run, 10)


def test_a_state_file_of_the_first_format_is_read(tmp_path: Path) -> None:
    """Written before rules were kept: no ``rules``, schedules without dates."""
    (tmp_path / state.FILE).write_text(
        json.dumps(
            {
                "format": 1,
                "saved_at": "2026-01-01T00:00:00+00:00",
                "virtual": True,
                "schedules": [{"name": "t", "group": "g", "expression": "at(2026-01-02T00:00:00)"}],
            }
        )
    )
    saved = state.read(tmp_path)
    assert saved is not None and saved.rules == [] and len(saved.schedules) == 1
