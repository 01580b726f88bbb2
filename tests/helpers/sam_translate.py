"""template.yaml as CloudFormation receives it after the SAM transform, printed as JSON.

Usage: ``.venv-sam/bin/python tests/helpers/sam_translate.py template.yaml [NAME=VALUE ...]``.

It runs with the Python of the SAM CLI's own virtualenv (made by ``make template``): the SAM
translator pins a pydantic the project does not use. Local folders in CodeUri and ContentUri
become S3 URIs first, as ``sam validate`` does (the translator takes nothing else). SAM's policy
templates (``SQSSendMessagePolicy: ...``) come out as the statements they stand for, so the
tests can read every function role's permissions.
"""

from __future__ import annotations

import json
import os
import sys
from pathlib import Path
from typing import Any

from samtranslator.public.exceptions import InvalidDocumentException
from samtranslator.translator.transform import transform
from samtranslator.yaml_helper import yaml_parse

FAKE_S3 = "s3://stepwell-build/{}"
FAKE_URL = "https://stepwell-build.s3.amazonaws.com/{}"


class _NoManagedPolicies:
    """Stands in for the IAM look-up of AWS managed policy names (this template names none by
    name: SAM adds the ones it needs by ARN)."""

    def load(self) -> dict[str, str]:
        return {}


def _to_s3(properties: dict[str, Any], key: str) -> None:
    value = properties.get(key)
    if isinstance(value, str) and not value.startswith("s3://"):
        properties[key] = FAKE_S3.format(value.strip("./") or "root")


def translate(path: Path, parameters: dict[str, str]) -> dict[str, Any]:
    document = yaml_parse(path.read_text())
    _to_s3((document.get("Globals") or {}).get("Function") or {}, "CodeUri")
    for resource in (document.get("Resources") or {}).values():
        props = resource.get("Properties") or {}
        if resource.get("Type") == "AWS::Serverless::Function":
            _to_s3(props, "CodeUri")
        elif resource.get("Type") == "AWS::Serverless::LayerVersion":
            _to_s3(props, "ContentUri")
        elif resource.get("Type") == "AWS::Serverless::Application":
            # A nested template in a folder becomes a URL, as `sam package` uploads it.
            location = props.get("Location")
            if isinstance(location, str) and "://" not in location:
                props["Location"] = FAKE_URL.format(location.strip("./"))
    translated: dict[str, Any] = transform(document, parameters, _NoManagedPolicies())
    return translated


def main(argv: list[str]) -> int:
    # The translator fills AWS::Region in from the environment; any region will do.
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    if not argv:
        print(__doc__, file=sys.stderr)
        return 2
    parameters = dict(arg.split("=", 1) for arg in argv[1:])
    try:
        translated = translate(Path(argv[0]), parameters)
    except InvalidDocumentException as exc:
        for cause in exc.causes:
            print(f"{argv[0]}: {cause.message}", file=sys.stderr)
        return 1
    json.dump(translated, sys.stdout, indent=1, sort_keys=True)
    print()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
