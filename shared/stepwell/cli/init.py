"""``stepwell init DIR``: start an app of one's own on Stepwell.

It writes a project that uses Stepwell as a package and an engine, never as a fork: a
``template.yaml`` whose stack nests the engine (or, with ``--engine-stack NAME``, uses an engine
stack deployed once for several apps), a step function in ``functions/``, a YAML workflow and a
code-first workflow in ``statemachines/`` published by ``Custom::StepwellWorkflow`` resources,
a test that runs both through the local stack on moto, a ``pyproject.toml``, a ``Makefile`` and a
README whose first lines are the app's two commands.
"""

from __future__ import annotations

import argparse
import re
import shutil
import sys
from importlib import resources
from pathlib import Path

from stepwell import __version__

EXIT_OK, EXIT_USAGE = 0, 2
ENGINE_URL = "https://YOUR-ARTIFACT-BUCKET.s3.amazonaws.com/stepwell/engine/{version}/template.yaml"
"""Where the nested engine's packaged template is, until ``--engine-url`` says (see README)."""


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The folder, and how the app reaches its engine."""
    parser.add_argument("folder", type=Path, metavar="DIR", help="the new app's folder")
    how = parser.add_mutually_exclusive_group()
    how.add_argument(
        "--engine-stack",
        metavar="NAME",
        help="use an engine stack already deployed (its exports) instead of nesting one",
    )
    how.add_argument(
        "--engine-url",
        metavar="URL",
        help="the packaged engine template the app nests (`stepwell engine package` prints it)",
    )
    parser.add_argument("--name", help="the app's name (default: the folder's name)")
    parser.add_argument("--force", action="store_true", help="write into a folder that has files")


def run(args: argparse.Namespace) -> int:
    """Write the project; exit 2 when the folder has files (without --force) or the name is bad."""
    folder: Path = args.folder
    name = args.name or folder.resolve().name
    if not re.fullmatch(r"[a-z][a-z0-9-]{0,62}", name):
        slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-") or "my-app"
        print(
            f"stepwell init: {name!r} is not an app name: use lower-case letters, digits and '-' "
            f"(e.g. --name {slug})",
            file=sys.stderr,
        )
        return EXIT_USAGE
    if folder.exists() and any(folder.iterdir()) and not args.force:
        print(
            f"stepwell init: {folder} is not empty; choose a new folder, or --force to write "
            "into it (files of the same name are replaced)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    folder.mkdir(parents=True, exist_ok=True)
    source = resources.files("stepwell") / "scaffold"
    for part in ("functions", "statemachines", "tests"):
        with resources.as_file(source / part) as files:
            shutil.copytree(files, folder / part, dirs_exist_ok=True, ignore=_caches)
    with resources.as_file(source / "Makefile") as makefile:
        shutil.copyfile(makefile, folder / "Makefile")
    with resources.as_file(source / "gitignore") as ignore:
        shutil.copyfile(ignore, folder / ".gitignore")
    engine_url = args.engine_url or ENGINE_URL.format(version=__version__)
    (folder / "template.yaml").write_text(template(name, args.engine_stack, engine_url))
    (folder / "pyproject.toml").write_text(pyproject(name))
    (folder / "README.md").write_text(readme(name, args.engine_stack, args.engine_url))
    print(f"Wrote {folder}/: template.yaml, functions/, statemachines/, tests/, README.md")
    go = "" if folder.resolve() == Path.cwd().resolve() else f"cd {folder} && "
    print(f"Next: {go}make test   (then make dev for the API and dashboard)")
    return EXIT_OK


def _caches(_folder: str, names: list[str]) -> set[str]:
    return {n for n in names if n == "__pycache__" or n.endswith(".pyc")}


def template(name: str, engine_stack: str | None, engine_url: str) -> str:
    """The app's template.yaml: the engine nested (or imported), the workflows function, the
    step function and one Custom::StepwellWorkflow per workflow file."""

    def engine(output: str) -> str:
        if engine_stack:
            return f"!ImportValue {engine_stack}-{output}"
        return f"!GetAtt Stepwell.Outputs.{output}"

    nested = (
        ""
        if engine_stack
        else f"""  # The Stepwell engine (table, bucket, bus, timers, API, layer), nested in this
  # stack. Locally `stepwell dev` runs the engine of the installed package in its place.
  Stepwell:
    Type: AWS::Serverless::Application
    Properties:
      Location: {engine_url}
      # The engine's settings are the Parameters of its template, all optional; for example:
      # Parameters:
      #   GroupsParameter: /{name}/stepwell-groups   # an SSM parameter holding groups.yaml
      #   EventWaitsBus: default   # event waits hear the account's default bus

"""
    )
    where = (
        f"the engine stack {engine_stack} (its exports)"
        if engine_stack
        else "the Stepwell engine it nests"
    )
    # An engine stack exports its API URL already (an output may not re-export an import).
    outputs = (
        ""
        if engine_stack
        else """
Outputs:
  ApiUrl:
    Description: The Stepwell API (STEPWELL_API for the CLI; IAM-authorised).
    Value: !GetAtt Stepwell.Outputs.ApiUrl
"""
    )
    return f"""AWSTemplateFormatVersion: "2010-09-09"
Transform: AWS::Serverless-2016-10-31
Description: {name}, workflows on {where}.

# `make dev` runs this stack and its engine on one machine (no Docker, no AWS account);
# `sam build && sam deploy --guided` deploys it. A workflow is a file in statemachines/ and a
# Custom::StepwellWorkflow below; a step function is a function here that names it by logical id.

Globals:
  Function:
    Runtime: python3.12
    Architectures: [arm64]
    Timeout: 30
    MemorySize: 512
    CodeUri: functions/
    Layers: [{engine("LayerArn")}]
    Environment:
      Variables:
        STEPWELL_ENGINE: {engine("Settings")}
    Tags:
      stepwell:engine: {engine("EngineId")}
    # Lambda never runs a step's code twice for one attempt: a failure outside the step's code
    # is reported to the engine, and the step's retry policy decides.
    EventInvokeConfig:
      MaximumRetryAttempts: 0
      DestinationConfig:
        OnFailure:
          Type: EventBridge
          Destination: {engine("FailureDestination")}

Resources:
{nested}  # Holds the workflow files: describes them to the engine, replays the code-first ones.
  Workflows:
    Type: AWS::Serverless::Function
    Properties:
      CodeUri: statemachines/
      Handler: stepwell.handlers.workflows.handler
      Timeout: 300
      AutoPublishAlias: live
      Policies: [{engine("StepFunctionPolicyArn")}]

  CheckExpenseFunction:
    Type: AWS::Serverless::Function
    Properties:
      Handler: expenses.check_expense
      Policies: [{engine("StepFunctionPolicyArn")}]

  ExpenseWorkflow:
    Type: Custom::StepwellWorkflow
    Properties:
      ServiceToken: {engine("WorkflowServiceToken")}
      Definition: expense.yaml
      Code: !Ref Workflows.Version

  ExpenseReportWorkflow:
    Type: Custom::StepwellWorkflow
    Properties:
      ServiceToken: {engine("WorkflowServiceToken")}
      Definition: expense_report.py
      Code: !Ref Workflows.Version
{outputs}"""


def pyproject(name: str) -> str:
    """The app's pyproject.toml: stepwell of this version, pytest for its tests."""
    return f"""[project]
name = "{name}"
version = "0.1.0"
requires-python = ">=3.11"
dependencies = ["stepwell=={__version__}"]

[project.optional-dependencies]
dev = ["pytest>=8"]

[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"

[tool.setuptools]
py-modules = []

[tool.pytest.ini_options]
testpaths = ["tests"]
pythonpath = ["functions", "statemachines"]
"""


def readme(name: str, engine_stack: str | None, engine_url: str | None) -> str:
    """The app's README: its two commands first."""
    if engine_stack:
        deploy = f"""It uses the Stepwell engine deployed as the stack `{engine_stack}` (its
exports: `{engine_stack}-LayerArn`, `{engine_stack}-Settings` ...), shared with other apps."""
    elif engine_url:
        deploy = f"It nests the Stepwell engine packaged at `{engine_url}`."
    else:
        deploy = """It nests the Stepwell engine. Before the first deploy, package the engine into
a bucket of yours once per Stepwell version, and put the URL it prints in template.yaml's
`Stepwell` Location:

```sh
stepwell engine package --bucket YOUR-ARTIFACT-BUCKET --update template.yaml
```"""
    return f"""# {name}

```sh
make test   # validates the workflows and runs them end to end through the local stack
make dev    # the app and its engine on http://127.0.0.1:3000 (API and dashboard), no AWS
```

Both create `.venv` and install what they need (stepwell {__version__} and pytest; pip finds a
wheel of stepwell you built or downloaded through `PIP_FIND_LINKS=<its folder>`).

## What is here

- `statemachines/expense.yaml` — a workflow as a DAG of steps, with an approval.
- `statemachines/expense_report.py` — a code-first workflow: Python over a durable Context.
- `functions/expenses.py` — the step function both use (`CheckExpenseFunction`).
- `template.yaml` — the app's stack: the step function, the workflows function that holds
  `statemachines/`, and one `Custom::StepwellWorkflow` per workflow, which publishes it into
  the engine at deploy time (new runs take the new version; runs in flight keep theirs).
- `tests/test_workflows.py` — runs both workflows through the local stack (moto, virtual time).

A new step function is a function in `template.yaml` (with the `Policies` line the others have);
a workflow names it by its logical id. A new workflow is a file in `statemachines/` and a
`Custom::StepwellWorkflow` resource naming it.

## Deploy

{deploy}

```sh
sam build && sam deploy --guided --capabilities CAPABILITY_IAM CAPABILITY_AUTO_EXPAND
```

From CI, `stepwell publish statemachines/ --stack ENGINE_STACK --dry-run` says what would change.
"""
