"""`stepwell engine package` against AWS that refuses it: no credentials (found before the
layer is built, which takes a while), a bucket that is not there. One line each, with the fix,
never botocore's traceback."""

from __future__ import annotations

import zipfile
from pathlib import Path

import boto3
import pytest
from moto import mock_aws

from stepwell.cli import engine
from stepwell.cli.main import main


@pytest.fixture
def built(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """The layer's build, made small: the list of layers built."""
    made: list[Path] = []

    def build_layer(target: Path) -> Path:
        with zipfile.ZipFile(target, "w") as archive:
            archive.writestr("python/stepwell/__init__.py", "")
        made.append(target)
        return target

    monkeypatch.setattr(engine, "build_layer", build_layer)
    return made


def test_no_credentials_is_said_before_the_layer_is_built(
    built: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent/credentials")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent/config")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_FULL_URI", raising=False)
    monkeypatch.delenv("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI", raising=False)
    assert main(["engine", "package", "--bucket", "artifacts", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith(
        "stepwell engine package: no AWS credentials to upload to s3://artifacts with: "
    )
    assert built == []


@mock_aws
def test_a_bucket_that_is_not_there_is_one_line(
    built: list[Path], monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    boto3.client("s3", region_name="us-east-1").create_bucket(Bucket="other")
    assert main(["engine", "package", "--bucket", "artifacts", "--region", "us-east-1"]) == 1
    err = capsys.readouterr().err
    assert "Traceback" not in err
    assert err.startswith("stepwell engine package: cannot upload to s3://artifacts: ")
    assert "NoSuchBucket" in err
