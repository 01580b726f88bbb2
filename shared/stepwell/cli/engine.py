"""``stepwell engine``: the Stepwell engine this package ships.

- ``stepwell engine path`` prints where its template is (``sam build -t "$(stepwell engine
  path)"`` deploys the engine as a stack of its own from an installed package);
- ``stepwell engine package --bucket B`` builds its layer (this package and its dependencies,
  for Lambda's Python on arm64), uploads the layer and the template to S3, and prints the
  template's URL: what an app's nested ``Stepwell`` application names as its ``Location``
  (``--update template.yaml`` writes it there).
"""

from __future__ import annotations

import argparse
import hashlib
import re
import shutil
import subprocess
import sys
import tempfile
import zipfile
from importlib import resources
from pathlib import Path

from boto3.exceptions import S3UploadFailedError
from botocore.exceptions import BotoCoreError, ClientError

from stepwell import __version__

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2
LAYER_PYTHON = "3.12"
LAYER_PLATFORM = "manylinux2014_aarch64"


def engine_folder() -> Path:
    """The folder of the engine's template in the installed package."""
    return Path(str(resources.files("stepwell") / "stack"))


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """``path`` or ``package``."""
    sub = parser.add_subparsers(dest="action", metavar="ACTION", required=True)
    sub.add_parser("path", help="print the engine template's path")
    package = sub.add_parser("package", help="build and upload the engine; print its URL")
    package.add_argument("--bucket", required=True, help="an S3 bucket of yours")
    package.add_argument("--prefix", default="stepwell/engine", help="key prefix in the bucket")
    package.add_argument("--region", help="the bucket's region (default: your AWS config's)")
    package.add_argument(
        "--update",
        type=Path,
        metavar="TEMPLATE",
        help="write the URL as the Location of the nested Stepwell application in TEMPLATE",
    )


def run(args: argparse.Namespace) -> int:
    """Print the path, or package and upload."""
    if args.action == "path":
        print(engine_folder() / "template.yaml")
        return EXIT_OK
    try:
        url = package(args.bucket, args.prefix.strip("/"), args.region)
    except (subprocess.CalledProcessError, OSError, RuntimeError) as exc:
        print(f"stepwell engine package: {exc}", file=sys.stderr)
        return EXIT_FAILED
    except (BotoCoreError, ClientError, S3UploadFailedError) as exc:
        print(
            f"stepwell engine package: cannot upload to s3://{args.bucket}: {exc}", file=sys.stderr
        )
        return EXIT_FAILED
    print(url)
    if args.update is not None:
        try:
            update_location(args.update, url)
        except ValueError as exc:
            print(f"stepwell engine package: {exc}", file=sys.stderr)
            return EXIT_FAILED
        print(f"{args.update}: the Stepwell application's Location is {url}")
    return EXIT_OK


def build_layer(target: Path) -> Path:
    """The layer's zip: ``python/stepwell`` and the dependencies of ``stack/requirements.txt``
    for Lambda's Python on arm64 (pip downloads them), as the engine's Makefile builds it."""
    root = Path(str(resources.files("stepwell")))
    with tempfile.TemporaryDirectory() as scratch:
        python = Path(scratch) / "python"
        shutil.copytree(
            root,
            python / "stepwell",
            ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "stack", "Makefile"),
        )
        subprocess.run(
            [
                sys.executable,
                "-m",
                "pip",
                "install",
                "-q",
                "--disable-pip-version-check",
                "--target",
                str(python),
                "--platform",
                LAYER_PLATFORM,
                "--implementation",
                "cp",
                "--python-version",
                LAYER_PYTHON,
                "--only-binary=:all:",
                "--no-warn-conflicts",
                "--no-compile",
                "-r",
                str(root / "stack" / "requirements.txt"),
            ],
            check=True,
        )
        shutil.rmtree(python / "bin", ignore_errors=True)
        with zipfile.ZipFile(target, "w", zipfile.ZIP_DEFLATED) as archive:
            for path in sorted(python.rglob("*")):
                if path.is_file():
                    archive.write(path, path.relative_to(scratch))
    return target


def packaged_template(layer_uri: str) -> str:
    """The engine's template with its layer at ``layer_uri`` (``s3://...``) instead of a build."""
    text = (engine_folder() / "template.yaml").read_text()
    text, count = re.subn(
        r"(\n  StepwellLayer:\n    Type: AWS::Serverless::LayerVersion\n"
        r"    Properties:\n(?:      .*\n)*?)      ContentUri: \.\.\n",
        lambda m: f"{m.group(1)}      ContentUri: {layer_uri}\n",
        text,
    )
    if count != 1:
        raise RuntimeError("the engine template's StepwellLayer has no ContentUri to replace")
    return text


def package(bucket: str, prefix: str, region: str | None) -> str:
    """Build, upload, and return the template's HTTPS URL."""
    import boto3

    session = boto3.Session(region_name=region)
    if session.get_credentials() is None:
        # Building the layer takes a while: say so before it, not after.
        raise RuntimeError(
            f"no AWS credentials to upload to s3://{bucket} with: configure some (aws "
            "configure, AWS_PROFILE, or the AWS_ACCESS_KEY_ID variables) and run it again"
        )
    s3 = session.client("s3")
    with tempfile.TemporaryDirectory() as scratch:
        layer = build_layer(Path(scratch) / "layer.zip")
        digest = hashlib.sha256(layer.read_bytes()).hexdigest()[:12]
        base = f"{prefix}/{__version__}"
        layer_key = f"{base}/layer-{digest}.zip"
        s3.upload_file(str(layer), bucket, layer_key)
        template_key = f"{base}/template.yaml"
        s3.put_object(
            Bucket=bucket,
            Key=template_key,
            Body=packaged_template(f"s3://{bucket}/{layer_key}").encode(),
            ContentType="application/x-yaml",
        )
    where = s3.meta.region_name
    return f"https://{bucket}.s3.{where}.amazonaws.com/{template_key}"


def update_location(template: Path, url: str) -> None:
    """Make ``url`` the ``Location`` of the ``Stepwell`` nested application in ``template``."""
    text = template.read_text()
    pattern = re.compile(
        r"(\n  Stepwell:\n    Type: AWS::Serverless::Application\n    Properties:\n"
        r"      Location: )\S+"
    )
    changed, count = pattern.subn(lambda m: m.group(1) + url, text)
    if count != 1:
        raise ValueError(
            f"{template} has no `Stepwell` application with a Location on one line (as "
            "`stepwell init` writes it): set its Location to the URL yourself"
        )
    template.write_text(changed)
