"""``stepwell publish --role ARN``: each workflow is published with the IAM role its service
calls run with (Step Functions' ``RoleArn``, which a machine's file cannot hold), as
``RoleArn`` does beside a ``Custom::StepwellWorkflow``'s ``Definition``; a role that is not an
IAM role's ARN publishes nothing. The API is a loopback listener that records each request."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from stepwell.cli import main as cli
from stepwell.definition.models import Workflow

ROLE = "arn:aws:iam::123456789012:role/shop-orders"
MACHINE = {
    "StartAt": "Get",
    "States": {
        "Get": {
            "Type": "Task",
            "Resource": "arn:aws:states:::dynamodb:getItem",
            "Parameters": {"TableName": "orders", "Key": {"id": {"S": "1"}}},
            "End": True,
        }
    },
}


class Api(BaseHTTPRequestHandler):
    published: list[dict[str, Any]] = []

    def do_PUT(self) -> None:
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        Api.published.append(body)
        answer = json.dumps({"name": body["definition"]["name"], "status": "new", "version": 1})
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer.encode())

    def log_message(self, format: str, *args: Any) -> None:
        pass


@pytest.fixture
def api() -> Iterator[str]:
    Api.published.clear()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()
    httpd.server_close()


def test_each_workflow_is_published_with_the_role(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "orders.asl.json").write_text(json.dumps(MACHINE))
    assert cli.main(["publish", "--api", api, "--role", ROLE, str(tmp_path)]) == 0
    (body,) = Api.published
    published = Workflow.model_validate(body["definition"])  # as the API reads it
    assert (published.name, published.role) == ("orders", ROLE)
    assert "orders: new (1)" in capsys.readouterr().out


def test_without_role_the_definition_names_none(api: str, tmp_path: Path) -> None:
    (tmp_path / "orders.asl.json").write_text(json.dumps(MACHINE))
    assert cli.main(["publish", "--api", api, str(tmp_path)]) == 0
    assert "role" not in Api.published[0]["definition"]


def test_a_role_that_is_no_iam_role_publishes_nothing(
    api: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (tmp_path / "orders.asl.json").write_text(json.dumps(MACHINE))
    assert cli.main(["publish", "--api", api, "--role", "shop-orders", str(tmp_path)]) == 2
    said = capsys.readouterr().err
    assert "stepwell publish: --role: role 'shop-orders' is not an IAM role's ARN" in said
    assert Api.published == []
