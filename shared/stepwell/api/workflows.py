"""Routes of workflows: the list, and one workflow's definition and versions."""

from __future__ import annotations

from typing import Annotated

from aws_lambda_powertools.event_handler.openapi.params import Path, Query
from aws_lambda_powertools.event_handler.router import APIGatewayHttpRouter
from pydantic import ValidationError

from stepwell.api import errors
from stepwell.api.deps import current
from stepwell.api.models import (
    BrokenWorkflow,
    Graph,
    GraphEdge,
    GraphNode,
    PublishRequest,
    PublishResult,
    WorkflowDetail,
    WorkflowList,
    triggers_view,
    workflow_summary,
)
from stepwell.api.openapi import MANAGEMENT, responses
from stepwell.definition.models import Workflow
from stepwell.engine import compensation
from stepwell.runtime.publishing import PublishRefused, bind
from stepwell.store.port import Store

router = APIGatewayHttpRouter()  # type: ignore[no-untyped-call]

WorkflowName = Annotated[str, Path(max_length=64, description="The workflow's name.")]


@router.get(
    "/workflows",
    summary="List workflows",
    description="Every published workflow, with the version new runs take.",
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "The workflows"),
)
def list_workflows() -> WorkflowList:
    workflows = current().runtime.workflows
    found = sorted(workflows.all().values(), key=lambda w: w.name)
    broken = [
        BrokenWorkflow(name=name, problems=[str(p) for p in problems])
        for name, problems in sorted(workflows.broken().items())
    ]
    return WorkflowList(workflows=[workflow_summary(w) for w in found], broken=broken)


@router.get(
    "/workflows/<name>",
    summary="Show a workflow",
    description=(
        "The current definition (or, with ?version=, one a run pinned), its input schema, "
        "the edges of its graph and the versions runs have pinned."
    ),
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "The workflow", 404),
)
def get_workflow(
    name: WorkflowName,
    version: Annotated[str | None, Query(min_length=1, max_length=80)] = None,
) -> WorkflowDetail:
    deps = current()
    deployed = deps.runtime.workflows.get(name)
    if deployed is None:
        raise errors.not_found(f"no workflow named {name!r}")
    workflow = deployed
    if version is not None and version != deployed.version:
        found = deps.store.get_definition(name, version)
        if found is None:
            raise errors.not_found(f"{name} has no saved version {version!r}")
        workflow = found
    summary = workflow_summary(workflow)
    return WorkflowDetail(
        **summary.model_dump(exclude={"triggers"}),
        triggers=triggers_view(workflow),
        input_schema=workflow.input_schema,
        example_input=workflow.example_input,
        definition=workflow.model_dump(mode="json", exclude_none=True),
        versions=versions(deps.store, deployed),
        upstream={key: list(before) for key, before in workflow.upstream.items()},
        graph=graph_of(workflow),
    )


@router.put(
    "/workflows/<name>",
    summary="Publish a workflow",
    description=(
        "Publish a definition (what `stepwell publish` sends): new runs take it, runs in flight "
        "keep their versions, its triggers are wired. `dry_run` says new, changed or unchanged "
        "and publishes nothing."
    ),
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "What the publication did", 409),
)
def publish_workflow(name: WorkflowName, request: PublishRequest) -> PublishResult:
    deps = current()
    workflows = deps.runtime.workflows
    try:
        definition = Workflow.model_validate(request.definition)
    except ValidationError as exc:
        raise errors.invalid(
            "definition is not a workflow: "
            + "; ".join(
                f"{'.'.join(str(p) for p in e['loc']) or 'definition'}: {e['msg']}"
                for e in exc.errors()[:5]
            ),
            [
                {"loc": ["body", "definition", *e["loc"]], "message": e["msg"], "type": e["type"]}
                for e in exc.errors()
            ],
        ) from None
    if definition.name != name:
        raise errors.invalid(
            f"the definition is workflow {definition.name!r}, not {name!r}: PUT it to "
            f"/workflows/{definition.name}"
        )
    current_version = workflows.get(name)
    functions = request.functions
    runner = request.runner
    if current_version is not None:
        functions = current_version.functions if functions is None else functions
        runner = current_version.runner if runner is None else runner
    try:
        bound = bind(definition, functions, runner if definition.code is not None else None)
        published = workflows.publish(bound, request.owner, "api", dry_run=request.dry_run)
    except PublishRefused as exc:
        raise errors.conflict(str(exc)) from None
    return PublishResult(
        name=published.name,
        status="unchanged" if published.status == "refused" else published.status,
        version=published.version,
        previous=published.previous,
    )


@router.delete(
    "/workflows/<name>",
    summary="Retire a workflow",
    description=(
        "Retire a workflow published through the API by `owner`: it takes no new runs and its "
        "triggers are removed; its runs in flight finish on their versions."
    ),
    tags=["workflows"],
    security=MANAGEMENT,
    responses=responses(200, "It is retired", 404),
)
def retire_workflow(
    name: WorkflowName,
    owner: Annotated[str, Query(min_length=1, max_length=200)] = "stepwell publish",
) -> PublishResult:
    workflows = current().runtime.workflows
    found = workflows.get(name)
    if found is None or not workflows.retire(name, owner, "api"):
        raise errors.not_found(f"{owner} has no published workflow named {name!r} to retire")
    return PublishResult(name=name, status="retired", version=None, previous=found.version)


def graph_of(workflow: Workflow) -> Graph:
    """The whole definition as a graph: a YAML workflow's steps (with their compensations), a
    machine's states (as published with it); a code-first workflow's steps are known only as
    its runs reach them."""
    if workflow.code is not None:
        return Graph.model_validate(workflow.machine_graph or {})
    graph = Graph()
    for key, step in workflow.steps.items():
        kind = "for_each" if getattr(step, "for_each", None) is not None else step.type
        graph.nodes.append(GraphNode(id=key, label=key, kind=kind, names=[key]))
        graph.edges += [GraphEdge(source=d, target=key, kind="depends_on") for d in step.depends_on]
        for rule in step.catch:
            graph.edges += [GraphEdge(source=key, target=t, kind="catch") for t in rule.then]
        if step.undo is not None:
            undo = compensation.key_of(key)
            graph.nodes.append(GraphNode(id=undo, label=undo, kind="compensate", names=[undo]))
            graph.edges.append(GraphEdge(source=key, target=undo, kind="compensate"))
    return graph


def versions(store: Store, workflow: Workflow) -> list[str]:
    """The saved versions of a workflow, the current one first."""
    rest = sorted(v for v in set(store.definition_versions(workflow.name)) if v != workflow.version)
    return [workflow.version, *rest]
