"""``stepwell publish [PATH...]``: publish workflows into an engine from a terminal or from CI.

Every file is checked first: when one has a problem, each problem is printed and nothing is
published. Then each workflow is sent to the engine's API (``PUT /workflows/{name}``), which says
per workflow whether it is new, changed (with the version it replaces) or unchanged. With
``--dry-run`` nothing is published. New runs take a published version at once; runs in flight
keep theirs.

A workflow published from a stack (``Custom::StepwellWorkflow``) belongs to that stack: publish
it from there. Here the binding of the version in force is kept unless ``--functions`` or
``--runner`` give one. ``--role`` names the IAM role their service calls run with, as
``RoleArn`` does beside a ``Custom::StepwellWorkflow``'s ``Definition``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any
from urllib.parse import quote

from stepwell.api import client
from stepwell.catalog import load_definitions, newest, with_example_input
from stepwell.definition.errors import DefinitionError
from stepwell.definition.loader import discover
from stepwell.definition.models import Workflow, with_role

EXIT_OK, EXIT_PROBLEMS, EXIT_USAGE = 0, 1, 2


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Paths, the engine, and what to bind."""
    parser.add_argument(
        "paths",
        nargs="*",
        type=Path,
        default=[Path("statemachines")],
        metavar="PATH",
        help="workflow files or folders (default: statemachines/)",
    )
    parser.add_argument(
        "--stack",
        metavar="ENGINE_STACK",
        help="the engine's CloudFormation stack: its ApiUrl output is the API to publish to",
    )
    parser.add_argument(
        "--dry-run", action="store_true", help="say what would change; publish nothing"
    )
    parser.add_argument(
        "--functions",
        metavar="JSON|@FILE",
        help='the functions the steps name -> ARNs, e.g. \'{"ChargeCardFunction": "arn:..."}\'',
    )
    parser.add_argument(
        "--runner", metavar="ARN", help="the function that replays the code-first workflows"
    )
    parser.add_argument(
        "--role",
        metavar="ARN",
        help="the IAM role the workflows' service calls run with (Step Functions' RoleArn: a "
        "machine's file names none)",
    )
    parser.add_argument(
        "--owner",
        default="stepwell publish",
        help="who publishes (another owner cannot take the names; default: stepwell publish)",
    )
    parser.add_argument("--json", action="store_true", help="print the answers as JSON")
    client.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Check, then publish (or, dry, compare); exit 1 on a problem or a refusal."""
    try:
        files = discover(args.paths)
    except FileNotFoundError as exc:
        print(f"stepwell publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if not files:
        print(
            f"stepwell publish: no workflow files in {', '.join(map(str, args.paths))}",
            file=sys.stderr,
        )
        return EXIT_USAGE
    workflows: list[Workflow] = []
    problems: list[str] = []
    for path in files:
        try:
            workflows.extend(
                with_example_input(w, path.parent)
                for w in newest(w for w, _ in load_definitions([path]))
            )
        except DefinitionError as exc:
            problems.extend(str(p) for p in exc.problems)
    if problems:
        for problem in problems:
            print(problem)
        print(
            f"stepwell publish: {len(problems)} problem{'s' if len(problems) != 1 else ''}; "
            "nothing was published",
            file=sys.stderr,
        )
        return EXIT_PROBLEMS
    try:
        functions = _functions(args.functions)
        if args.role is not None:
            workflows = [_with_role(w, args.role) for w in workflows]
        api = client.Client(_api(args), auth=args.auth)
    except ValueError as exc:
        print(f"stepwell publish: {exc}", file=sys.stderr)
        return EXIT_USAGE
    answers: list[dict[str, Any]] = []
    failed = 0
    for workflow in workflows:
        body: dict[str, Any] = {
            "definition": workflow.model_dump(mode="json"),
            "owner": args.owner,
            "dry_run": args.dry_run,
        }
        if functions is not None:
            body["functions"] = functions
        if args.runner:
            body["runner"] = args.runner
        try:
            answer = api.request("PUT", f"/workflows/{quote(workflow.name, safe='')}", body=body)
        except client.ApiError as exc:
            if exc.status == 0:
                return client.report("publish", exc)
            failed += 1
            answers.append({"name": workflow.name, "status": "refused", "message": exc.message})
            if not args.json:
                print(f"{workflow.name}: refused: {exc.message}")
            continue
        answers.append(answer)
        if not args.json:
            print(_line(answer, args.dry_run))
    if args.json:
        print(json.dumps(answers, indent=2))
    return EXIT_PROBLEMS if failed else EXIT_OK


def _line(answer: dict[str, Any], dry: bool) -> str:
    status = answer.get("status")
    name = answer.get("name")
    version, previous = answer.get("version"), answer.get("previous")
    would = "would be " if dry and status != "unchanged" else ""
    if status == "changed":
        return f"{name}: {would}changed ({previous} -> {version})"
    if status == "new":
        return f"{name}: {would}new ({version})"
    return f"{name}: {status} ({version})"


def _with_role(workflow: Workflow, role: str) -> Workflow:
    try:
        return with_role(workflow, role)
    except ValueError as exc:
        raise ValueError(f"--role: {exc}") from None


def _functions(raw: str | None) -> dict[str, str] | None:
    if raw is None:
        return None
    text = Path(raw[1:]).read_text() if raw.startswith("@") else raw
    try:
        found = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"--functions is not JSON: {exc}") from None
    if not isinstance(found, dict) or not all(
        isinstance(k, str) and isinstance(v, str) for k, v in found.items()
    ):
        raise ValueError(
            '--functions must be a JSON object of names to ARNs, e.g. {"F": "arn:..."}'
        )
    return found


def _api(args: argparse.Namespace) -> str:
    """``--api``, or the ApiUrl output of ``--stack``."""
    if not args.stack:
        return str(args.api)
    import boto3

    try:
        stacks = boto3.client("cloudformation").describe_stacks(StackName=args.stack)["Stacks"]
    except Exception as exc:
        raise ValueError(f"cannot read stack {args.stack!r}: {exc}") from None
    for output in stacks[0].get("Outputs", []) if stacks else []:
        if output.get("OutputKey") == "ApiUrl":
            return str(output["OutputValue"])
    raise ValueError(f"stack {args.stack!r} has no ApiUrl output: is it a Stepwell engine?")
