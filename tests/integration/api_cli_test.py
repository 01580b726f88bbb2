"""The CLI commands over the API: the API's handler served on 127.0.0.1 (WSGI), the commands run
in-process as ``stepwell ...`` would."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from helpers.apigw import ApiWorld, api_workflows, serve
from stepwell.api import client
from stepwell.catalog import Catalog
from stepwell.cli import approve
from stepwell.cli.main import main
from stepwell.store.memory import MemoryStore

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture
def world() -> Iterator[ApiWorld]:
    api = ApiWorld(MemoryStore(), api_workflows())
    yield api
    api.close()


@pytest.fixture
def api(world: ApiWorld) -> Iterator[str]:
    with serve(world.handler) as url:
        yield url


def stepwell(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_runs_lists_the_newest_runs(world: ApiWorld, api: str, capsys: Any) -> None:
    first = world.start("simple", {"n": 1})
    second = world.start("fan", {"items": []})
    code, out, _ = stepwell(capsys, "runs", "--api", api, "--workflow", "simple")
    assert code == 0 and first in out and second not in out
    assert out.splitlines()[0].split() == ["RUN", "WORKFLOW", "STATUS", "CREATED", "ENDED"]
    code, out, _ = stepwell(capsys, "runs", "--api", api)
    assert code == 0 and first in out and second in out
    code, out, _ = stepwell(capsys, "runs", "--api", api, "--status", "succeeded", "--json")
    assert code == 0 and second in out and first not in out
    (listed,) = json.loads(out)
    assert listed["run_id"] == second and "id" not in listed  # as `start` and the API say it


def test_show_prints_the_run_steps_and_timeline(world: ApiWorld, api: str, capsys: Any) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work")
    code, out, _ = stepwell(capsys, "show", run_id, "--api", api)
    assert code == 0
    assert f"run       {run_id}" in out and "status    running" in out
    assert "work  succeeded" in out
    assert "run_started" in out and "step_completed" in out


def test_show_follow_prints_new_entries_until_the_run_ends(
    world: ApiWorld, api: str, capsys: Any
) -> None:
    run_id = world.start("simple", {"n": 1})
    timer = threading.Timer(0.3, lambda: world.succeed(run_id, "work"))
    later = threading.Timer(0.6, lambda: world.succeed(run_id, "next"))
    timer.start()
    later.start()
    try:
        code, out, _ = stepwell(
            capsys, "show", run_id, "--follow", "--interval", "0.1", "--timeout", "20", "--api", api
        )
    finally:
        timer.cancel()
        later.cancel()
    assert code == 0 and out.rstrip().endswith("run succeeded")
    assert out.count("run_started") == 1 and out.count("step_completed") == 2
    assert "run_status" in out


def test_show_follow_exits_1_when_the_run_fails(world: ApiWorld, api: str, capsys: Any) -> None:
    run_id = world.start("simple", {"n": 1})
    world.fail(run_id, "work")
    code, out, _ = stepwell(capsys, "show", run_id, "-f", "--api", api)
    assert code == 1 and "run failed" in out


def test_show_of_an_unknown_run(api: str, capsys: Any) -> None:
    code, _, err = stepwell(capsys, "show", "nope", "--api", api)
    assert code == 1 and "no run 'nope' (404)" in err


def waiting_for_approval(world: ApiWorld) -> tuple[str, dict[str, str]]:
    run_id = world.start("approve-flow", {"order": "C-1"})
    world.succeed(run_id, "prepare")
    by = {link["approver"]: link for link in world.approval_tokens(run_id, "approve")}
    return run_id, by["alice@example.com"]


def test_approve_with_a_url_and_a_comment(world: ApiWorld, api: str, capsys: Any) -> None:
    run_id, alice = waiting_for_approval(world)
    url = f"{api}/approvals/{alice['approve']}"
    code, out, _ = stepwell(capsys, "approve", url, "--comment", "fine by me")
    assert code == 0
    assert out.startswith(f"approved {run_id} / approve as alice@example.com: Ship order C-1?")
    assert world.step(run_id, "approve").decisions[0]["comment"] == "fine by me"
    code, _, err = stepwell(capsys, "approve", url)
    assert code == 1 and "already" in err


def test_approve_a_token_with_reject(world: ApiWorld, api: str, capsys: Any) -> None:
    run_id, alice = waiting_for_approval(world)
    code, out, _ = stepwell(capsys, "approve", alice["approve"], "--reject", "--api", api)
    assert code == 0 and out.startswith("rejected")
    assert world.step(run_id, "approve").status == "failed"


def test_approve_a_changed_link_is_refused(world: ApiWorld, api: str, capsys: Any) -> None:
    _, alice = waiting_for_approval(world)
    code, _, err = stepwell(capsys, "approve", alice["approve"][:-3] + "AAA", "--api", api)
    assert code == 1 and "(403)" in err


def test_cancel_and_rerun(world: ApiWorld, api: str, capsys: Any) -> None:
    run_id = world.start("simple", {"n": 1})
    world.succeed(run_id, "work")
    code, out, _ = stepwell(capsys, "cancel", run_id, "--reason", "enough", "--api", api)
    assert code == 0 and out.strip() == f"{run_id}: cancelled"
    code, _, err = stepwell(capsys, "cancel", run_id, "--api", api)
    assert code == 1 and "already ended" in err
    code, out, _ = stepwell(capsys, "rerun", run_id, "--from", "next", "--dry-run", "--api", api)
    assert code == 0 and f"rerun of {run_id} from next (dry run)" in out
    new_id = out.split(":")[0]
    assert world.store.get_run(new_id).rerun_of == run_id  # type: ignore[union-attr]
    assert f"see what it would run: stepwell show {new_id} --api {api}\n" in out
    code, _, err = stepwell(
        capsys, "rerun", run_id, "--from", "work", "--input", '{"n": "x"}', "--api", api
    )
    assert code == 1 and "input_schema" in err
    code, _, err = stepwell(capsys, "rerun", run_id, "--from", "work", "--input", "{", "--api", api)
    assert code == 2


def test_an_unreachable_api_is_exit_2(capsys: Any) -> None:
    code, _, err = stepwell(capsys, "runs", "--api", "http://127.0.0.1:9", "--workflow", "x")
    assert code == 2 and "cannot reach the Stepwell API" in err


def test_approve_splits_links_and_tokens() -> None:
    assert approve.split("https://h.example/prod/approvals/abc.def?x=1", "http://a") == (
        "https://h.example/prod",
        "abc.def",
    )
    assert approve.split("abc.def", "http://a") == ("http://a", "abc.def")


def test_requests_to_a_deployed_api_are_signed_with_sigv4(monkeypatch: Any) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDEXAMPLE")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "secret")
    monkeypatch.delenv("AWS_SESSION_TOKEN", raising=False)
    monkeypatch.delenv("STEPWELL_API_TOKEN", raising=False)
    remote = client.Client("https://a1b2c3d4e5.execute-api.eu-west-1.amazonaws.com")
    headers = remote._auth_headers("GET", remote.base_url + "/runs", None, {})
    assert headers["Authorization"].startswith("AWS4-HMAC-SHA256 Credential=AKIDEXAMPLE/")
    assert "/eu-west-1/execute-api/" in headers["Authorization"]
    local = client.Client(client.DEFAULT_API)
    assert local._auth_headers("GET", local.base_url + "/runs", None, {}) == {}
    monkeypatch.setenv("STEPWELL_API_TOKEN", "jwt-123")
    assert remote._auth_headers("GET", "x", None, {}) == {"Authorization": "Bearer jwt-123"}


def test_validate_prints_the_version_a_run_pins(
    capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(ROOT)
    assert main(["validate", "statemachines"]) == 0
    printed = dict(
        re.findall(
            r"^\S+: ([a-z0-9-]+) ok \(.*version ([0-9a-f]+)\)$", capsys.readouterr().out, re.M
        )
    )
    world = ApiWorld(MemoryStore(), Catalog(ROOT / "statemachines"))
    try:
        # A YAML workflow, a code-first one and a Step Functions machine.
        for name in ("order-fulfilment", "release", "order-machine"):
            example = json.loads((ROOT / "statemachines" / "examples" / f"{name}.json").read_text())
            run_id = world.start(name, example)
            # The run pins the file's hash and, after it, the hash of the functions its
            # publication bound.
            pinned = world.get(f"/runs/{run_id}").json()["run"]["version"]
            assert pinned.split("-")[0] == printed[name], (pinned, printed[name])
    finally:
        world.close()


def test_output_cut_short_by_a_pipe_ends_quietly(world: ApiWorld, api: str) -> None:
    run_id = world.start("simple", {"n": 1})
    # `stepwell show RUN | head -0`: the reader is gone before the command writes a line.
    process = subprocess.Popen(
        [sys.executable, "-m", "stepwell.cli.main", "show", run_id, "--api", api],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    assert process.stdout is not None and process.stderr is not None
    process.stdout.close()
    err = process.stderr.read()
    assert process.wait(timeout=60) == 141  # as a shell reports a command ended by SIGPIPE
    assert err == ""


def _not_stepwell(event: dict[str, Any], context: Any) -> dict[str, Any]:
    """Another server on the port: a web page for every path, or JSON of another shape."""
    if event["rawPath"].startswith("/json/"):
        return {"statusCode": 200, "headers": {"content-type": "application/json"}, "body": "{}"}
    page = "<html><body>It works!</body></html>"
    return {"statusCode": 200, "headers": {"content-type": "text/html"}, "body": page}


@pytest.fixture
def not_stepwell() -> Iterator[str]:
    with serve(_not_stepwell) as url:
        yield url


@pytest.mark.parametrize(
    ("argv", "what"),
    [
        (["show", "r-1"], "not JSON"),
        (["runs"], "not JSON"),
        (["runs", "--workflow", "w"], "not JSON"),
        (["cancel", "r-1"], "not JSON"),
        (["start", "w", "--input", "{}"], "not JSON"),
        (["time"], "not JSON"),
    ],
)
def test_an_answer_no_stepwell_api_gives_is_a_message_not_a_traceback(
    not_stepwell: str, capsys: Any, argv: list[str], what: str
) -> None:
    code, out, err = stepwell(capsys, *argv, "--api", not_stepwell)
    assert code == 2 and out == ""
    assert err.startswith(f"stepwell {argv[0]}: unexpected answer to ")
    assert f"{what} ('<html><body>It works!" in err
    assert "is --api the URL of a Stepwell API?" in err


def test_json_of_another_shape_is_named_too(not_stepwell: str, capsys: Any) -> None:
    code, _, err = stepwell(capsys, "show", "r-1", "--api", f"{not_stepwell}/json")
    assert code == 2
    assert "JSON without run, steps" in err


def test_skip_says_what_else_it_skips_and_asks_first(
    world: ApiWorld, api: str, capsys: Any, monkeypatch: pytest.MonkeyPatch
) -> None:
    run_id = world.start("simple", {"n": 1})
    code, out, err = stepwell(capsys, "skip", run_id, "work", "--api", api)
    assert out.strip() == "Skipping work also skips next (give an output to run what follows)"
    assert code == 1 and "pass --yes" in err and world.step(run_id, "work").status == "running"

    monkeypatch.setattr("sys.stdin.isatty", lambda: True)
    monkeypatch.setattr("builtins.input", lambda prompt: "n")
    assert stepwell(capsys, "skip", run_id, "work", "--api", api)[0] == 1
    monkeypatch.setattr("builtins.input", lambda prompt: "y")
    code, out, _ = stepwell(capsys, "skip", run_id, "work", "--output", '{"w": 1}', "--api", api)
    assert code == 0
    assert out.splitlines() == [
        "Skipping work with this output: it succeeds with it, and what follows runs",
        f"{run_id}: step work skipped (run running)",
    ]
    assert world.step(run_id, "next").status == "running"
    code, _, err = stepwell(capsys, "skip", run_id, "work", "--yes", "--api", api)
    assert code == 1 and "(409)" in err
